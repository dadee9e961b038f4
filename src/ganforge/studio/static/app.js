// ganforge studio: the five pages over the studio's JSON / PNG endpoints. Plain JS, no libraries.
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const studio = { runs: [], info: {}, lastRoundTripMs: null };
window.studio = studio;

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(url, options = {}) {
  const r = await fetch(url, options);
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try { message = (await r.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}
const getJSON = async (url) => (await api(url)).json();
const postJSON = async (url, body) => (await api(url, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();

// An image endpoint into an <img>; returns the X-Info JSON. Old object URLs are released.
async function loadImage(img, url, options) {
  const t0 = performance.now();
  const r = await api(url, options);
  const blob = await r.blob();
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = URL.createObjectURL(blob);
  await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = img.dataset.url; });
  if (img.dataset.zoom) {  // small grids shown larger, by a whole factor (pixelated)
    const k = Math.max(1, Math.floor(Number(img.dataset.zoom) / img.naturalWidth));
    img.style.width = `${img.naturalWidth * k}px`;
  }
  const info = JSON.parse(r.headers.get("X-Info") || "{}");
  info.roundTripMs = Math.round(performance.now() - t0);
  img.dataset.ms = info.roundTripMs;
  return info;
}

// Only one request of a kind in flight; the newest wish waits and replaces older ones.
function latest(fn) {
  let running = false, pending = null;
  return async function run(...args) {
    if (running) { pending = args; return; }
    running = true;
    try { await fn(...args); showError(""); } catch (e) { showError(e.message); }
    running = false;
    if (pending) { const a = pending; pending = null; run(...a); }
  };
}

const params = (obj) => new URLSearchParams(Object.entries(obj).filter(([, v]) => v !== "" && v != null)).toString();
const formValues = (form) => Object.fromEntries(new FormData(form).entries());

// ---------------------------------------------------------------- pages and runs
function showPage() {
  const name = (location.hash || "#generate").slice(1);
  $$(".page").forEach((p) => { p.hidden = p.id !== `page-${name}`; });
  $$("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === name));
  if (name === "lab") lab.start();
  if (name === "monitor") monitor.refresh();
}

async function loadRuns() {
  const data = await getJSON("/api/runs");
  studio.runs = data.runs;
  for (const sel of $$("select.runs")) {
    const kind = sel.dataset.kind, old = sel.value;
    const fits = data.runs.filter((r) => r.checkpoints.length && (kind === "noise"
      ? r.pipeline === "noise" : r.pipeline === "translation" || r.pipeline === "cyclegan"));
    sel.innerHTML = fits.map((r) => `<option>${r.id}</option>`).join("");
    if (fits.some((r) => r.id === old)) sel.value = old;
    await runChosen(sel.form);
  }
  $("#mon-presets").innerHTML = data.presets.map((p) => `<option>${p}</option>`).join("");
}

async function runChosen(form) {
  const run = form.run.value;
  if (!run) return;
  const data = await getJSON(`/api/run?${params({ run })}`);
  const info = data.info || {};
  studio.info[run] = info;
  const ckpt = form.ckpt, old = ckpt.value;
  ckpt.innerHTML = ["latest"].concat(data.has_best ? ["best"] : [], data.checkpoints.map(String))
    .map((c) => `<option>${c}</option>`).join("");
  if ($$("option", ckpt).some((o) => o.value === old)) ckpt.value = old;
  const classes = info.class_names || [];
  $$(".cond", form).forEach((el) => { el.hidden = !info.num_classes; });
  $$("select.classes", form).forEach((sel) => {
    const first = sel.name === "cls" ? '<option value="">one row per class</option>' : "";
    sel.innerHTML = first + classes.map((c, i) => `<option value="${i}">${c}</option>`).join("");
  });
  $$(".cyc", form).forEach((el) => { el.hidden = !info.cyclegan; });
  if (form.id === "lat-form") latentPage.setup(info);
}

// ---------------------------------------------------------------- Generate
const generatePage = {
  url(format) {
    const v = formValues($("#gen-form"));
    const q = { run: v.run, ckpt: v.ckpt, cls: v.cls, ema: v.ema, format };
    if (v.by === "seeds") Object.assign(q, { seeds: v.seeds, truncation: v.truncation });
    else Object.assign(q, { seed: v.seed, n: v.n });
    return `/api/generate?${params(q)}`;
  },
  async go() {
    const img = $("#gen-img");
    const info = await loadImage(img, generatePage.url("png"));
    $("#gen-png").href = img.src;
    $("#gen-npz").href = generatePage.url("npz");
    $("#gen-info").textContent = `${info.n} images, step ${info.step}, ${info.ema ? "EMA" : "raw"} weights, ` +
      `${info.columns} per row, ${info.roundTripMs} ms` + (info.command ? ` | ${info.command}` : "");
  },
};

// ---------------------------------------------------------------- Latent explorer
const latentPage = {
  dims: {}, pcs: {}, last: "walk",
  setup(info) {
    $("#lat-dim").max = Math.max(0, (info.nz || 1) - 1);
    const box = $("#lat-pcs");
    if (!box.children.length) {
      box.innerHTML = [0, 1, 2, 3, 4].map((i) => `<label class="wide">PC${i + 1} <input type="range" ` +
        `class="lat-pc" data-pc="${i}" min="-3" max="3" step="0.1" value="0"></label>`).join("");
      $$(".lat-pc").forEach((s) => s.addEventListener("input", () => {
        latentPage.pcs[s.dataset.pc] = s.value; latentPage.last = "pc"; latentPage.draw();
      }));
    }
    latentPage.resize();
  },
  resize() {
    const v = formValues($("#lat-form"));
    const keys = v.seeds.split(",").filter((s) => s.trim() !== "").length;
    const pos = $("#lat-pos");
    pos.max = Math.max(1, (keys - 1) * Number(v.steps || 1));
    if (Number(pos.value) > Number(pos.max)) pos.value = pos.max;
  },
  query() {
    const v = formValues($("#lat-form"));
    const pairs = (o) => Object.entries(o).filter(([, x]) => Number(x) !== 0).map(([k, x]) => `${k}:${x}`).join(",");
    const q = { run: v.run, ckpt: v.ckpt, seeds: v.seeds, steps: v.steps, mode: v.mode, ema: v.ema,
                position: $("#lat-pos").value, dims: pairs(latentPage.dims), pcs: pairs(latentPage.pcs),
                last: latentPage.last };
    if ($("#lat-blend-on").checked) {
      Object.assign(q, { blend: `${$("#lat-blend-a").value},${$("#lat-blend-b").value}`, blend_t: $("#lat-blend").value });
    }
    return q;
  },
  draw: latest(async () => {
    const q = latentPage.query();
    if (!q.run) return;
    const info = await loadImage($("#lat-img"), `/api/latent/frame?${params(q)}`);
    studio.lastRoundTripMs = info.roundTripMs;
    $("#lat-pos-text").textContent = `${info.position} / ${info.total}`;
    $("#lat-cmd").textContent = info.command;
    $("#lat-info").textContent = `${info.where}; step ${info.step}; round trip ${info.roundTripMs} ms`;
    $("#lat-dims-text").textContent = Object.keys(latentPage.dims).length
      ? "set: " + Object.entries(latentPage.dims).map(([k, x]) => `z[${k}] = ${x}`).join(", ") : "";
  }),
};

// ---------------------------------------------------------------- Translate
const translatePage = {
  async show(info) {
    const parts = [`input ${info.input.join("x")} -> output ${info.output.join("x")}`, `step ${info.step}`,
      `direction ${info.direction}`, `${info.roundTripMs} ms`];
    $("#tr-info").textContent = (info.panels === 3 ? "input | output | target: " : "input | output: ") + parts.join(", ");
  },
  upload: latest(async () => {
    const form = $("#tr-form"), file = $("#tr-file").files[0];
    if (!file) return;
    const body = new FormData();
    body.append("run", form.run.value); body.append("ckpt", form.ckpt.value);
    body.append("direction", studio.info[form.run.value]?.cyclegan ? form.direction.value : "");
    body.append("file", file);
    translatePage.show(await loadImage($("#tr-img"), "/api/translate", { method: "POST", body }));
  }),
  heldOut: latest(async () => {
    const v = formValues($("#tr-form"));
    const q = { run: v.run, ckpt: v.ckpt, index: v.index, direction: studio.info[v.run]?.cyclegan ? v.direction : "" };
    translatePage.show(await loadImage($("#tr-img"), `/api/translate/heldout?${params(q)}`));
  }),
};

const stylizePage = {
  run: latest(async () => {
    const form = $("#st-form"), content = $("#st-content").files[0], style = $("#st-style").files[0];
    if (!content || !style) { showError("Choose a photo and a style image first."); return; }
    const body = new FormData();
    body.append("content", content); body.append("style", style);
    body.append("size", form.size.value); body.append("iterations", form.iterations.value);
    $("#st-info").textContent = "stylizing ...";
    const info = await loadImage($("#st-img"), "/api/stylize", { method: "POST", body });
    $("#st-info").textContent = `photo | style | result ${info.size.join("x")}: ${info.iterations} iterations, ` +
      `loss ${info.loss_start.toPrecision(4)} -> ${info.loss_end.toPrecision(4)}, ${info.seconds} s ` +
      `(${info.network} network) | ${info.command}`;
  }),
};

// ---------------------------------------------------------------- Training monitor
function drawChart(canvas, rows, series) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, pad = 34;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  const pts = series.map(([key]) => rows.filter((r) => typeof r[key] === "number").map((r) => [r.step, r[key]]));
  const all = pts.flat();
  ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
  if (!all.length) { ctx.fillText("no rows yet", pad, H / 2); return; }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-6);
  const X = (x) => pad + (W - 2 * pad) * (x - x0) / (x1 - x0), Y = (y) => H - pad + (2 * pad - H) * (y - y0) / (y1 - y0);
  ctx.strokeStyle = "#999"; ctx.strokeRect(pad, pad / 2, W - 2 * pad, H - 1.5 * pad);
  ctx.fillText(y1.toPrecision(3), 2, pad / 2 + 8); ctx.fillText(y0.toPrecision(3), 2, H - pad);
  ctx.fillText(`step ${x0}`, pad, H - 8); ctx.fillText(`${x1}`, W - pad - 20, H - 8);
  series.forEach(([key, color], i) => {
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    pts[i].forEach(([x, y], j) => (j ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    ctx.fillStyle = color; ctx.fillText(key, pad + 8 + 80 * i, pad / 2 + 12);
  });
}

const monitor = {
  current: null, rows: [], source: null,
  async refresh() {
    const data = await getJSON("/api/runs");
    studio.runs = data.runs;
    $("#mon-presets").innerHTML = data.presets.map((p) => `<option>${p}</option>`).join("");
    $("#mon-runs tbody").innerHTML = data.runs.map((r) => {
      const ev = Object.entries(r.eval || {}).map(([k, v]) => `${k.slice(5)} ${Number(v).toPrecision(4)}`).join(", ");
      const best = r.best ? `${r.best.name} ${Number(r.best.value).toPrecision(4)} @ ${r.best.step}` : "";
      const eta = r.eta_s == null ? "" : `${Math.round(r.eta_s)} s`;
      const act = r.status === "running" ? `<button data-stop="${r.id}">Stop</button>`
        : (r.checkpoints.length ? `<button data-resume="${r.id}">Resume</button>` : "");
      return `<tr data-run="${r.id}" class="${r.id === monitor.current ? "chosen" : ""}"><td>${r.id}</td>` +
        `<td>${r.model || ""}</td><td class="status">${r.status}</td><td>${r.step}/${r.total_steps || "?"}</td>` +
        `<td>${r.img_per_s ?? ""}</td><td>${eta}</td><td>${ev}</td><td>${best}</td><td>${act}</td></tr>`;
    }).join("");
  },
  open(run) {
    if (monitor.source) monitor.source.close();
    monitor.current = run; monitor.rows = [];
    $("#mon-title").textContent = run;
    const src = new EventSource(`/api/run/events?${params({ run })}`);
    monitor.source = src;
    src.addEventListener("row", (e) => { monitor.rows.push(JSON.parse(e.data)); monitor.draw(); });
    src.addEventListener("sample", () => { $("#mon-sample").src = `/api/run/sample.png?${params({ run, t: Date.now() })}`; });
    src.addEventListener("status", (e) => {
      const s = JSON.parse(e.data);
      $("#mon-info").textContent = `${s.status}: step ${s.step}/${s.total_steps || "?"}` +
        (s.img_per_s ? `, ${s.img_per_s} img/s` : "") + (s.eta_s != null ? `, ETA ${Math.round(s.eta_s)} s` : "");
      monitor.refresh();
      getJSON(`/api/run?${params({ run })}`).then((d) => { $("#mon-log").textContent = d.log; }).catch(() => {});
    });
    src.addEventListener("end", () => { src.close(); monitor.refresh(); });
    monitor.refresh();
  },
  draw() {
    const keys = new Set(monitor.rows.flatMap((r) => Object.keys(r)));  // evaluation rows have no losses
    const losses = [...keys].filter((k) => k.startsWith("loss_")).sort();
    const colors = ["#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214"];
    drawChart($("#mon-loss"), monitor.rows, losses.map((k, i) => [k, colors[i % colors.length]]));
    drawChart($("#mon-d"), monitor.rows, [["D_real", "#1b7837"], ["D_fake", "#762a83"]]);
  },
};

// ---------------------------------------------------------------- GAN Lab
const lab = {
  playing: false, started: false, points: [],
  async start() {
    if (lab.started) return;
    lab.started = true;
    const s = await getJSON("/api/lab/state");
    $("#lab-data").innerHTML = Object.entries(s.datasets).map(([n, d]) => `<option value="${n}">${n} (${d}-D)</option>`)
      .join("") + '<option value="points">your points</option>';
    $("#lab-loss").innerHTML = s.losses.map((l) => `<option>${l}</option>`).join("");
    const f = $("#lab-form");
    f.data.value = s.data; f.loss.value = s.loss; f.k.value = s.k; f.lr_g.value = s.lr_g; f.lr_d.value = s.lr_d;
    await lab.frame();
  },
  settings() {
    const v = formValues($("#lab-form"));
    const out = { data: v.data, loss: v.loss, k: Number(v.k), lr_g: Number(v.lr_g), lr_d: Number(v.lr_d) };
    if (v.data === "points") out.points = lab.points.map((p) => ($("#lab-1d").checked ? [p[0]] : p));
    return out;
  },
  async configure() { await postJSON("/api/lab/config", lab.settings()); await lab.frame(); },
  async frame() {
    const s = await loadImage($("#lab-img"), `/api/lab/frame.png?t=${Date.now()}`);
    const logs = Object.entries(s.logs).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(", ");
    const fr = s.frame || {};
    $("#lab-info").textContent = `step ${s.step} (D updates ${s.updates.D}, G updates ${s.updates.G}); ${logs}` +
      (fr.js != null ? `; JS ${fr.js}` : "") + `; frame drawn in ${s.render_ms} ms, round trip ${s.roundTripMs} ms`;
  },
  async step(what, n) { await postJSON("/api/lab/step", { what, n }); await lab.frame(); },
  async loop() {
    while (lab.playing) {
      try { await lab.step("both", Number($("#lab-spf").value) || 10); showError(""); } catch (e) { showError(e.message); lab.toggle(); }
    }
  },
  toggle() {
    lab.playing = !lab.playing;
    $("#lab-play").textContent = lab.playing ? "Pause" : "Play";
    if (lab.playing) lab.loop();
  },
  drawPoints() {
    const c = $("#lab-points"), ctx = c.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
    ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(c.width / 2, 0); ctx.lineTo(c.width / 2, c.height);
    ctx.moveTo(0, c.height / 2); ctx.lineTo(c.width, c.height / 2); ctx.stroke();
    ctx.fillStyle = "#00441b";
    for (const [x, y] of lab.points) {
      ctx.beginPath(); ctx.arc((x + 2) / 4 * c.width, (2 - y) / 4 * c.height, 3, 0, 2 * Math.PI); ctx.fill();
    }
    $("#lab-npoints").textContent = `${lab.points.length} points`;
  },
  click(e) {
    const c = $("#lab-points"), r = c.getBoundingClientRect();
    const x = 4 * (e.clientX - r.left) / r.width - 2, y = 2 - 4 * (e.clientY - r.top) / r.height;
    lab.points.push([+x.toFixed(3), $("#lab-1d").checked ? 0 : +y.toFixed(3)]);
    lab.drawPoints();
  },
};

// ---------------------------------------------------------------- wiring
function wire() {
  window.addEventListener("hashchange", showPage);
  const guard = (fn) => async (...a) => { try { await fn(...a); showError(""); } catch (e) { showError(e.message); } };
  for (const sel of $$("select.runs")) sel.addEventListener("change", guard(() => runChosen(sel.form)));
  $("#gen-form").addEventListener("submit", guard(async (e) => { e.preventDefault(); await generatePage.go(); }));
  const lat = $("#lat-form");
  lat.addEventListener("change", (e) => {
    if (e.target.classList.contains("runs") || e.target.type === "range") return;
    latentPage.resize(); latentPage.draw();
  });
  $("#lat-pos").addEventListener("input", () => { latentPage.last = "walk"; latentPage.draw(); });
  $("#lat-dim-value").addEventListener("input", (e) => {
    latentPage.dims[$("#lat-dim").value] = e.target.value; latentPage.last = "dim"; latentPage.draw();
  });
  $("#lat-dim-reset").addEventListener("click", () => { latentPage.dims = {}; $("#lat-dim-value").value = 0; latentPage.draw(); });
  $("#lat-blend").addEventListener("input", () => { latentPage.last = "blend"; latentPage.draw(); });
  $("#lat-copy").addEventListener("click", guard(async () => {
    const text = $("#lat-cmd").textContent;
    try { await navigator.clipboard.writeText(text); } catch (e) {
      const r = document.createRange(); r.selectNodeContents($("#lat-cmd"));
      getSelection().removeAllRanges(); getSelection().addRange(r); document.execCommand("copy");
    }
    $("#lat-copy").textContent = "Copied";
  }));
  $("#tr-file").addEventListener("change", () => translatePage.upload());
  $("#tr-held").addEventListener("click", () => translatePage.heldOut());
  $("#st-go").addEventListener("click", () => stylizePage.run());
  $("#mon-runs").addEventListener("click", guard(async (e) => {
    const b = e.target.closest("button"), row = e.target.closest("tr[data-run]");
    if (b && b.dataset.stop) { await postJSON("/api/run/stop", { run: b.dataset.stop }); }
    else if (b && b.dataset.resume) { await postJSON("/api/run/resume", { run: b.dataset.resume }); monitor.open(b.dataset.resume); }
    else if (row) monitor.open(row.dataset.run);
    await monitor.refresh();
  }));
  $("#mon-start").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    const settings = Object.fromEntries(["steps", "batch_size", "lr_g", "lr_d"].filter((k) => v[k]).map((k) => [k, v[k]]));
    const r = await postJSON("/api/train", { preset: v.preset, name: v.name, settings });
    monitor.open(r.id);
  }));
  $("#lab-play").addEventListener("click", () => lab.toggle());
  $("#lab-step").addEventListener("click", guard(() => lab.step("both", 1)));
  $("#lab-step-d").addEventListener("click", guard(() => lab.step("D", 1)));
  $("#lab-step-g").addEventListener("click", guard(() => lab.step("G", 1)));
  $("#lab-reset").addEventListener("click", guard(async () => {
    const s = lab.settings(); s.seed = Math.floor(Math.random() * 1000);
    await postJSON("/api/lab/config", s); await lab.frame();
  }));
  $("#lab-form").addEventListener("change", guard(async (e) => {
    if (e.target.id === "lab-spf" || e.target.id === "lab-1d") return;
    if (e.target.name === "data" && e.target.value === "points" && lab.points.length < 2) {
      throw new Error("Click at least 2 points onto the small canvas first.");
    }
    await lab.configure();
  }));
  $("#lab-points").addEventListener("click", (e) => lab.click(e));
  $("#lab-clear").addEventListener("click", () => { lab.points = []; lab.drawPoints(); });
  $("#lab-use-points").addEventListener("click", guard(async () => { $("#lab-data").value = "points"; await lab.configure(); }));
  lab.drawPoints();
}

wire();
showPage();
loadRuns().then(() => { document.body.dataset.ready = "1"; }).catch((e) => { showError(e.message); document.body.dataset.ready = "1"; });
