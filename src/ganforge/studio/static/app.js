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

// Every string from the server enters the page as text: elements are built here, never from HTML strings.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

// <option>s from [value, label] pairs (or plain values); the old choice is kept when it is still offered.
function fillSelect(sel, items) {
  const old = sel.value;
  sel.replaceChildren(...items.map((it) => {
    const [value, label] = Array.isArray(it) ? it : [it, it];
    return el("option", { value }, label);
  }));
  if (items.some((it) => String(Array.isArray(it) ? it[0] : it) === old)) sel.value = old;
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
const getJSON = async (url, options) => (await api(url, options)).json();
const postJSON = async (url, body, options = {}) => (await api(url, {
  ...options, method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();

// An image endpoint's answer: the picture (a Blob) and its X-Info JSON, with the round trip in ms.
async function fetchImage(url, options = {}) {
  const t0 = performance.now();
  const r = await api(url, options);
  const blob = await r.blob();
  const info = JSON.parse(r.headers.get("X-Info") || "{}");
  info.roundTripMs = Math.round(performance.now() - t0);
  return { blob, info };
}

// Draws a fetched picture into an <img>; the old object URL is released.
async function showImage(img, { blob, info }) {
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = URL.createObjectURL(blob);
  await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = img.dataset.url; });
  if (img.dataset.zoom) {  // small grids shown larger, by a whole factor (pixelated)
    const k = Math.max(1, Math.floor(Number(img.dataset.zoom) / img.naturalWidth));
    img.style.width = `${img.naturalWidth * k}px`;
  }
  img.dataset.ms = info.roundTripMs;
  return info;
}

// A panel of the page (a picture and its caption, the runs table ...): it shows that it is busy while a
// request of its own is out, and only the answer to its latest request is drawn. A new request aborts the
// one before it; with `coalesce` (sliders), one request is out at a time and the newest wish waits for it.
class Panel {
  constructor(root, { coalesce = false } = {}) {
    this.root = root; this.coalesce = coalesce;
    this.seq = 0; this.controller = null; this.running = false; this.pending = null;
  }
  // work(signal) fetches and returns a function that draws the answer (or nothing to draw).
  run(work) {
    if (this.coalesce && this.running) { this.pending = work; return Promise.resolve(); }
    return this.send(work);
  }
  async send(work) {
    const n = ++this.seq;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller; this.running = true;
    this.root.setAttribute("aria-busy", "true");
    try {
      const draw = await work(controller.signal);
      if (n === this.seq && draw) await draw();
      if (n === this.seq) showError("");
    } catch (e) {
      if (n === this.seq && e.name !== "AbortError") showError(e.message);
    } finally {
      if (n === this.seq) { this.running = false; this.controller = null; this.root.setAttribute("aria-busy", "false"); }
    }
    if (n === this.seq && this.pending) { const next = this.pending; this.pending = null; await this.send(next); }
  }
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
    const kind = sel.dataset.kind;
    const verb = kind === "noise" ? "sample" : "translate";  // what the page asks of a run's family
    const fits = data.runs.filter((r) => r.checkpoints.length && r.offers.includes(verb));
    fillSelect(sel, fits.map((r) => r.id));
    await runChosen(sel.form);
  }
  fillSelect($("#mon-presets"), data.presets);
}

// A run chosen in a form: its checkpoints, classes and directions. Only the latest choice's answer is used.
const chosen = new WeakMap();
async function runChosen(form) {
  const run = form.run.value;
  if (!run) return;
  const n = (chosen.get(form) || 0) + 1;
  chosen.set(form, n);
  const data = await getJSON(`/api/run?${params({ run })}`);
  if (chosen.get(form) !== n) return;  // another run was chosen meanwhile
  const info = data.info || {};
  studio.info[run] = info;
  fillSelect(form.ckpt, ["latest"].concat(data.has_best ? ["best"] : [], data.checkpoints.map(String)));
  // an unconditional run may still name its data's classes: it gets no class choice (a hidden one would be sent)
  const classes = info.num_classes ? (info.class_names || []).map((c, i) => [String(i), c]) : [];
  $$(".cond", form).forEach((node) => { node.hidden = !info.num_classes; });
  $$("select.classes", form).forEach((sel) => {
    // a self-conditioned model's classes are clusters it found: by default each image draws one by its share
    const all = info.clustered ? "any cluster" : "one row per class";
    fillSelect(sel, (sel.name === "cls" ? [["", all]] : []).concat(classes));
  });
  $$(".cyc", form).forEach((node) => { node.hidden = !info.offers.includes("cycle"); });
  if (form.id === "lat-form") latentPage.setup(info);
  showError("");
}

// ---------------------------------------------------------------- Generate
const generatePage = {
  panel: null,
  url(format) {
    const v = formValues($("#gen-form"));
    const q = { run: v.run, ckpt: v.ckpt, cls: v.cls, ema: v.ema, format };
    if (v.by === "seeds") Object.assign(q, { seeds: v.seeds, truncation: v.truncation });
    else Object.assign(q, { seed: v.seed, n: v.n });
    return `/api/generate?${params(q)}`;
  },
  go() {
    const png = generatePage.url("png"), npz = generatePage.url("npz");
    return generatePage.panel.run(async (signal) => {
      const got = await fetchImage(png, { signal });
      return async () => {
        const img = $("#gen-img"), info = await showImage(img, got);
        $("#gen-png").href = img.src;
        $("#gen-npz").href = npz;
        $("#gen-info").textContent = `${info.n} images, step ${info.step}, ${info.ema ? "EMA" : "raw"} weights, ` +
          `${info.columns} per row, ${info.roundTripMs} ms` + (info.command ? ` | ${info.command}` : "");
      };
    });
  },
};

// ---------------------------------------------------------------- Latent explorer
const latentPage = {
  dims: {}, pcs: {}, last: "walk", panel: null,
  setup(info) {
    $("#lat-dim").max = Math.max(0, (info.nz || 1) - 1);
    const box = $("#lat-pcs");
    if (!box.children.length) {
      for (let i = 0; i < 5; i++) {
        const slider = el("input", { type: "range", className: "lat-pc", dataset: { pc: String(i) }, min: -3, max: 3,
                                     step: 0.1, value: 0 });
        slider.addEventListener("input", () => {
          latentPage.pcs[slider.dataset.pc] = slider.value; latentPage.last = "pc"; latentPage.draw();
        });
        box.append(el("label", { className: "wide" }, `PC${i + 1} `, slider));
      }
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
  draw() {  // the query is read when the request is sent: a wish made meanwhile waits and is sent next
    return latentPage.panel.run(async (signal) => {
      const q = latentPage.query();
      if (!q.run) return null;
      const got = await fetchImage(`/api/latent/frame?${params(q)}`, { signal });
      return async () => {
        const info = await showImage($("#lat-img"), got);
        studio.lastRoundTripMs = info.roundTripMs;
        $("#lat-pos-text").textContent = `${info.position} / ${info.total}`;
        $("#lat-cmd").textContent = info.command;
        $("#lat-info").textContent = `${info.where}; step ${info.step}; round trip ${info.roundTripMs} ms`;
        $("#lat-dims-text").textContent = Object.keys(latentPage.dims).length
          ? "set: " + Object.entries(latentPage.dims).map(([k, x]) => `z[${k}] = ${x}`).join(", ") : "";
      };
    });
  },
};

// ---------------------------------------------------------------- Translate
const translatePage = {
  panel: null,
  show(got) {  // an upload and a held-out image draw into the same panel: only the latest request's answer
    return async () => {
      const info = await showImage($("#tr-img"), got);
      const parts = [`input ${info.input.join("x")} -> output ${info.output.join("x")}`, `step ${info.step}`,
        `direction ${info.direction}`, `${info.roundTripMs} ms`];
      $("#tr-info").textContent = (info.panels === 3 ? "input | output | target: " : "input | output: ") +
        parts.join(", ");
    };
  },
  upload() {
    const form = $("#tr-form"), file = $("#tr-file").files[0];
    if (!file) return Promise.resolve();
    const body = new FormData();
    body.append("run", form.run.value); body.append("ckpt", form.ckpt.value);
    body.append("direction", studio.info[form.run.value]?.offers.includes("cycle") ? form.direction.value : "");
    body.append("file", file);
    return translatePage.panel.run(async (signal) => translatePage.show(
      await fetchImage("/api/translate", { method: "POST", body, signal })));
  },
  heldOut() {
    const v = formValues($("#tr-form"));
    const q = { run: v.run, ckpt: v.ckpt, index: v.index, direction: studio.info[v.run]?.offers.includes("cycle") ? v.direction : "" };
    return translatePage.panel.run(async (signal) => translatePage.show(
      await fetchImage(`/api/translate/heldout?${params(q)}`, { signal })));
  },
};

const stylizePage = {
  panel: null,
  run() {
    const form = $("#st-form"), content = $("#st-content").files[0], style = $("#st-style").files[0];
    if (!content || !style) { showError("Choose a photo and a style image first."); return Promise.resolve(); }
    const body = new FormData();
    body.append("content", content); body.append("style", style);
    body.append("size", form.size.value); body.append("iterations", form.iterations.value);
    $("#st-info").textContent = "stylizing ...";
    return stylizePage.panel.run(async (signal) => {
      const got = await fetchImage("/api/stylize", { method: "POST", body, signal });
      return async () => {
        const info = await showImage($("#st-img"), got);
        $("#st-info").textContent = `photo | style | result ${info.size.join("x")}: ${info.iterations} iterations, ` +
          `loss ${info.loss_start.toPrecision(4)} -> ${info.loss_end.toPrecision(4)}, ${info.seconds} s ` +
          `(${info.network} network) | ${info.command}`;
      };
    });
  },
};

// ---------------------------------------------------------------- Training monitor
// An axis number in at most 5 characters, so it stays in the chart's left margin ("1.3e4", "0.500", "-2e-3").
function axisNumber(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-2)) return v.toExponential(a >= 1e4 ? 1 : 0).replace("e+", "e");
  return a >= 1000 ? v.toFixed(0) : v.toPrecision(3);
}

// ``marks``: steps to mark with a dashed vertical line (a finding's onset), each [step, label].
function drawChart(canvas, rows, series, marks = []) {
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
  ctx.fillText(axisNumber(y1), 2, pad / 2 + 8); ctx.fillText(axisNumber(y0), 2, H - pad);
  ctx.fillText(`step ${x0}`, pad, H - 8); ctx.fillText(`${x1}`, W - pad - 20, H - 8);
  series.forEach(([key, color], i) => {
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    pts[i].forEach(([x, y], j) => (j ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    ctx.fillStyle = color; ctx.fillText(key, pad + 8 + 110 * i, pad / 2 + 12);
  });
  for (const [step, label] of marks) {
    if (typeof step !== "number" || step < x0 || step > x1) continue;
    ctx.strokeStyle = "#e65100"; ctx.fillStyle = "#e65100"; ctx.lineWidth = 2; ctx.setLineDash([4, 3]); ctx.beginPath();
    ctx.moveTo(X(step), pad / 2); ctx.lineTo(X(step), H - pad); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillText(label, Math.min(X(step) + 3, W - pad - 60), H - pad - 4);
  }
}

// The doctor's findings on the run shown, as banners: severity, the sentence, the fix, the evidence in numbers
// and its plot with the onset marked. Everything from the server goes in as text (el), never as HTML.
function evidenceText(evidence) {
  return Object.entries(evidence || {})
    .filter(([, v]) => v != null && typeof v !== "object")
    .map(([k, v]) => `${k}=${typeof v === "number" ? Number(v.toPrecision(4)) : v}`).join(", ");
}

function findingCard(f) {
  const severity = f.severity === "error" ? "error" : "warning";
  const words = el("div", { className: "words" },
    el("p", {}, el("strong", {}, `${severity.toUpperCase()} ${f.kind}`),
       f.first_step != null ? ` (from step ${f.first_step})` : "", ": ", f.message),
    f.fix ? el("p", {}, "Fix: ", el("code", {}, f.fix)) : null,
    el("p", { className: "evidence" }, "Evidence: ", evidenceText(f.evidence)));
  const card = el("div", { className: `finding ${severity}`, dataset: { kind: String(f.kind) } }, words);
  if (f.plot) {
    const canvas = el("canvas", { width: 480, height: 170, "aria-label": `evidence: ${f.plot.title}` });
    const names = Object.keys(f.plot.series);
    const rows = names.flatMap((name) => f.plot.series[name].map(([step, v]) => ({ step, [name]: v })));
    const colors = ["#2166ac", "#b2182b", "#1b7837", "#762a83"];
    drawChart(canvas, rows, names.map((n, i) => [n, colors[i % colors.length]]),
              [[f.plot.onset, `${f.kind} from here`]]);
    card.append(el("div", {}, el("p", { className: "evidence" }, f.plot.title), canvas));
  }
  return card;
}

async function showDoctor(run, mine) {
  const d = await getJSON(`/api/run/doctor?${params({ run })}`);
  if (!mine()) return;
  const box = $("#mon-doctor");
  box.replaceChildren(...d.findings.map(findingCard));
  box.hidden = !d.findings.length;
  box.dataset.run = run;  // whose findings these are (the browser tests wait for it)
}

// One row of the runs table; the action offered: Stop (training here), Resume (stopped or failed), or
// "continue to N steps" for a finished run (N beyond its last checkpoint, asked for).
function runRow(r, typed) {
  const ev = Object.entries(r.eval || {}).map(([k, v]) => `${k.slice(5)} ${Number(v).toPrecision(4)}`).join(", ");
  const best = r.best ? `${r.best.name} ${Number(r.best.value).toPrecision(4)} @ ${r.best.step}` : "";
  const eta = r.eta_s == null ? "" : `${Math.round(r.eta_s)} s`;
  const act = el("td", { className: "act" });
  if (r.status === "running") act.append(el("button", { type: "button", dataset: { stop: r.id } }, "Stop"));
  else if (r.offer && r.offer.action === "resume") {
    act.append(el("button", { type: "button", dataset: { resume: r.id } }, "Resume"));
  } else if (r.offer && r.offer.action === "continue") {
    const steps = el("input", { type: "number", className: "mon-steps", min: r.offer.min_steps, step: 1,
                                required: true, placeholder: String(r.offer.min_steps), "aria-label": "steps to reach",
                                dataset: { run: r.id } });
    if (typed[r.id] != null) steps.value = typed[r.id];
    act.append(el("label", {}, "continue to ", steps, " steps "),
               el("button", { type: "button", dataset: { continue: r.id } }, "Continue"));
  }
  return el("tr", { dataset: { run: r.id }, className: r.id === monitor.current ? "chosen" : null },
    el("td", {}, r.id), el("td", {}, r.model || ""), el("td", { className: "status" }, r.status),
    el("td", {}, `${r.step}/${r.total_steps || "?"}`), el("td", {}, r.img_per_s ?? ""), el("td", {}, eta),
    el("td", {}, ev), el("td", {}, best), act);
}

const monitor = {
  current: null, rows: [], source: null, panel: null,
  refresh() {
    return monitor.panel.run(async (signal) => {
      const data = await getJSON("/api/runs", { signal });
      return () => {
        studio.runs = data.runs;
        fillSelect($("#mon-presets"), data.presets);
        const body = $("#mon-runs tbody"), focused = document.activeElement;
        const typed = Object.fromEntries($$("input.mon-steps", body).map((i) => [i.dataset.run, i.value]));
        const refocus = focused && focused.classList.contains("mon-steps") ? focused.dataset.run : null;
        body.replaceChildren(...data.runs.map((r) => runRow(r, typed)));
        if (refocus != null) {
          const again = $$("input.mon-steps", body).find((i) => i.dataset.run === refocus);
          if (again) again.focus();
        }
      };
    });
  },
  async resume(run, steps) {
    await postJSON("/api/run/resume", steps == null ? { run } : { run, steps });
    monitor.open(run);
  },
  open(run) {
    if (monitor.source) monitor.source.close();
    monitor.current = run; monitor.rows = [];
    monitor.draw();
    $("#mon-title").textContent = run;
    $("#mon-info").textContent = ""; $("#mon-log").textContent = "";
    const src = new EventSource(`/api/run/events?${params({ run })}`);
    monitor.source = src;
    const mine = () => monitor.source === src;  // events of a run no longer shown are dropped
    const doctor = () => showDoctor(run, mine).catch((err) => showError(err.message));
    src.addEventListener("row", (e) => {
      if (!mine()) return;
      const row = JSON.parse(e.data);
      monitor.rows.push(row); monitor.draw();
      if (row.health) doctor();  // the findings changed
    });
    src.addEventListener("sample", () => {
      if (mine()) $("#mon-sample").src = `/api/run/sample.png?${params({ run, t: Date.now() })}`;
    });
    src.addEventListener("status", (e) => {
      if (!mine()) return;
      const s = JSON.parse(e.data);
      $("#mon-info").textContent = `${s.status}: step ${s.step}/${s.total_steps || "?"}` +
        (s.img_per_s ? `, ${s.img_per_s} img/s` : "") + (s.eta_s != null ? `, ETA ${Math.round(s.eta_s)} s` : "");
      monitor.refresh();
      getJSON(`/api/run?${params({ run })}`).then((d) => { if (mine()) $("#mon-log").textContent = d.log; })
        .catch(() => {});
    });
    src.addEventListener("end", () => { src.close(); if (mine()) { monitor.refresh(); doctor(); } });
    $("#mon-doctor").replaceChildren(); $("#mon-doctor").hidden = true; delete $("#mon-doctor").dataset.run;
    doctor();
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
  playing: false, started: false, points: [], panel: null,
  async start() {
    if (lab.started) return;
    lab.started = true;
    const s = await getJSON("/api/lab/state");
    fillSelect($("#lab-data"), Object.entries(s.datasets).map(([n, d]) => [n, `${n} (${d}-D)`])
      .concat([["points", "your points"]]));
    fillSelect($("#lab-loss"), s.losses);
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
  async configure() { await postJSON("/api/lab/config", lab.settings()); showError(""); await lab.frame(); },
  frame() {  // the state after every step asked for so far; only the newest frame is drawn
    return lab.panel.run(async (signal) => {
      const got = await fetchImage(`/api/lab/frame.png?t=${Date.now()}`, { signal });
      return async () => {
        const s = await showImage($("#lab-img"), got);
        const logs = Object.entries(s.logs).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(", ");
        const fr = s.frame || {};
        $("#lab-info").textContent = `step ${s.step} (D updates ${s.updates.D}, G updates ${s.updates.G}); ${logs}` +
          (fr.js != null ? `; JS ${fr.js}` : "") + `; frame drawn in ${s.render_ms} ms, round trip ${s.roundTripMs} ms`;
      };
    });
  },
  async step(what, n) { await postJSON("/api/lab/step", { what, n }); showError(""); await lab.frame(); },
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
  // actions outside the panels: a refusal is shown; the panels clear the message when they draw
  const guard = (fn) => async (...a) => { try { await fn(...a); } catch (e) { showError(e.message); } };
  for (const sel of $$("select.runs")) sel.addEventListener("change", guard(() => runChosen(sel.form)));
  $("#gen-form").addEventListener("submit", (e) => { e.preventDefault(); generatePage.go(); });
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
    if (!b && e.target.closest("td.act label")) return;  // typing the steps to continue to
    if (b && b.dataset.stop) { await postJSON("/api/run/stop", { run: b.dataset.stop }); showError(""); }
    else if (b && b.dataset.resume) await monitor.resume(b.dataset.resume, null);
    else if (b && b.dataset.continue) {
      const steps = $$("input.mon-steps", row).find((i) => i.dataset.run === b.dataset.continue);
      await monitor.resume(b.dataset.continue, steps.value.trim());
    } else if (row) monitor.open(row.dataset.run);
    await monitor.refresh();
  }));
  $("#mon-start").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    const settings = Object.fromEntries(["steps", "max_minutes", "batch_size", "lr_g", "lr_d"].filter((k) => v[k]).map((k) => [k, v[k]]));
    const r = await postJSON("/api/train", { preset: v.preset, name: v.name, settings });
    monitor.open(r.id);
  }));
  $("#lab-play").addEventListener("click", () => lab.toggle());
  $("#lab-step").addEventListener("click", guard(() => lab.step("both", 1)));
  $("#lab-step-d").addEventListener("click", guard(() => lab.step("D", 1)));
  $("#lab-step-g").addEventListener("click", guard(() => lab.step("G", 1)));
  $("#lab-reset").addEventListener("click", guard(async () => {
    const s = lab.settings(); s.seed = Math.floor(Math.random() * 1000);
    await postJSON("/api/lab/config", s); showError(""); await lab.frame();
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

generatePage.panel = new Panel($("#gen-panel"));
latentPage.panel = new Panel($("#lat-panel"), { coalesce: true });
translatePage.panel = new Panel($("#tr-panel"));
stylizePage.panel = new Panel($("#st-panel"));
monitor.panel = new Panel($("#mon-runs"), { coalesce: true });
lab.panel = new Panel($("#lab-panel"), { coalesce: true });
wire();
showPage();
loadRuns().then(() => { document.body.dataset.ready = "1"; }).catch((e) => { showError(e.message); document.body.dataset.ready = "1"; });
