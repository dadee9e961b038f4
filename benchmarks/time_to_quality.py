"""Sample quality against training wall-clock time, recipe by recipe, one after another in one run.

    .venv/bin/python benchmarks/time_to_quality.py                        # 10 min each: demo, tutorial, plain
    .venv/bin/python benchmarks/time_to_quality.py --preset cgan-fmnist --recipes preset
    .venv/bin/python benchmarks/time_to_quality.py --budget 3 --recipes none \\
        --variant "baseline:" --variant "sn-hinge:model.d_norm=spectral,loss=hinge"      # an ablation
    .venv/bin/python benchmarks/time_to_quality.py --small 1000 --budget 5   # few images: augmentation or not

Recipes (``--recipes``, comma-separated):

    preset    the --preset (default fmnist-demo, what ``make demo`` trains), with --set overrides
    tutorial  dcgan-tutorial-28, the lecture notebook's DCGAN (TF tutorial: batch 256, Adam 1e-4)
    plain     a pytorch/examples-style DCGAN loop written here (networks from train_speed.py): Adam 2e-4
              (0.5, 0.999), batch 64, non-saturating loss, no EMA; samples in train mode, as main.py does
    none      nothing but the --variant recipes

``--step-points 3000,6000`` evaluates at step counts instead of minutes: quality per step, which a busy
machine does not change (img/s is still printed, but compare speeds only on a quiet machine).

``--variant "NAME:k=v,k=v"`` adds the preset with those overrides (an ablation row each). ``--small N``
writes N Fashion-MNIST training images (seeded, all classes) into OUT/small_N/ as an image folder and
trains the preset on it (28x28) with augment=none, diffaugment and ada; FID is still measured against
10,000 images of the full training set, so a D that lets G copy its few images shows as lost recall.

Only training is timed: the clock stops while a recipe is evaluated. At each point of ``--points``
(minutes; default 1, 2, 5, 10 within the budget) ``--n`` samples (default 10,000) of the sampling network
(the EMA generator, its batch-norm statistics re-estimated when the recipe asks) are compared with ``--n``
Fashion-MNIST training images through the fmnist extractor, the protocol of ``ganforge eval RUN --n N``:
FID, KID, precision / recall (k=3), density / coverage (k=5), class entropy (nats, log 10 = 2.303 when
every class is as frequent), and the class accuracy of a conditional model. A recipe that ends (its steps)
before the budget is evaluated at its end. Printed: one table row per recipe and point, and FID(plain) /
FID(recipe) at each point when the plain loop ran. Written: OUT/results.json, OUT/fid_vs_time.png (FID
on a log scale against minutes of training, one line per recipe) and OUT/samples_RECIPE.png (100 samples
of the last evaluation; a conditional model's rows are ordered by class). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ganforge.config import resolve_config  # noqa: E402
from ganforge.data import load_dataset  # noqa: E402
from ganforge.metrics.evaluation import (  # noqa: E402
    batches_from_array,
    compute_metrics,
    dataset_features,
    extract,
    get_extractor,
    per_class_metrics,
)
from ganforge.train.run import build_run  # noqa: E402
from ganforge.viz import save_grid, to_uint8  # noqa: E402
from train_speed import plain_discriminator, plain_generator, weights_init  # noqa: E402

METRICS = ("fid", "kid", "pr", "dc")
COLUMNS = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "class_entropy", "class_accuracy_mean")


class Recipe:
    """A training run that can be advanced step by step and sampled: ``step()``, ``sample(n) -> uint8``."""

    name: str
    batch_size: int = 64
    total_steps: int | None = None
    labels: torch.Tensor | None = None  # the class of each sample, for a conditional model

    def step(self) -> None:
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError


class GanforgeRecipe(Recipe):
    """A ganforge config, trained by its Trainer one ``train_step`` at a time."""

    def __init__(self, name: str, cfg, out: Path) -> None:
        self.name = name
        self.run = build_run(cfg, out / name, write=False, evaluate=False)
        self.trainer = self.run.trainer
        self.total_steps = self.trainer.total_steps
        self.batch_size = self.trainer.stream.batch_size

    def step(self) -> None:
        self.trainer.train_step()

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        t = self.trainer
        t.refresh_ema_statistics()
        net = t.sample_net()
        was_training = net.training
        net.eval()
        inputs = t.task.fixed_inputs(n, t.cfg.seed + 1)
        # a class-conditional model's classes (scored per class); a self-conditioned one's clusters are not classes
        self.labels = None if getattr(t.task.pipeline, "clustered", False) else inputs.get("y")
        out = torch.cat([to_uint8(t.task.generate(net, {k: v[s:s + 500].to(t.device) for k, v in inputs.items()}))
                         for s in range(0, n, 500)])
        net.train(was_training)
        return out

    def close(self) -> None:
        self.run.close()


class PlainRecipe(Recipe):
    """The pytorch/examples DCGAN loop at 28x28x1 on Fashion-MNIST, in memory, batch 64."""

    name = "plain"

    def __init__(self, seed: int = 0, batch_size: int = 64, nz: int = 100) -> None:
        torch.manual_seed(seed)
        data = load_dataset("fashion-mnist", None, "train")
        self.images = data.images  # uint8 [N, 1, 28, 28]
        self.batch_size, self.nz = batch_size, nz
        self.G, self.D = plain_generator(28, 1), plain_discriminator(28, 1)
        self.G.apply(weights_init)
        self.D.apply(weights_init)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.order = torch.randperm(len(self.images))
        self.at = 0

    def _real(self) -> torch.Tensor:
        if self.at + self.batch_size > len(self.order):
            self.order, self.at = torch.randperm(len(self.images)), 0
        idx = self.order[self.at:self.at + self.batch_size]
        self.at += self.batch_size
        return self.images[idx].float() / 127.5 - 1

    def step(self) -> None:
        real = self._real()
        self.D.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = self.G(torch.randn(self.batch_size, self.nz, 1, 1))
        loss_d = F.softplus(-self.D(real)).mean() + F.softplus(self.D(fake)).mean()
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-self.D(self.G(torch.randn(self.batch_size, self.nz, 1, 1)))).mean()
        loss_g.backward()
        self.opt_g.step()

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.nz, 1, 1, generator=torch.Generator().manual_seed(1))
        return torch.cat([to_uint8(self.G(z[s:s + 500])) for s in range(0, n, 500)])  # train mode, as main.py

    def close(self) -> None:
        pass


def evaluate(images: torch.Tensor, labels: torch.Tensor | None, real, extractor) -> dict:
    fake = extract(batches_from_array(images, 500), extractor)
    names = list(extractor.class_names)
    out = compute_metrics(fake, real, METRICS, class_names=names)
    if labels is not None:
        out.update(per_class_metrics(fake, labels.numpy(), names, None, names))
    flat = {k: v for k, v in out.items() if not isinstance(v, dict)}
    for name, accuracy in (out.get("class_accuracy") or {}).items():  # per class: results.json only
        flat[f"class_accuracy/{name}"] = accuracy
    return flat


def train_and_measure(recipe: Recipe, points: list[float], n: int, real, extractor,
                      log: Callable[[str], None], grid: Path | None = None, in_steps: bool = False) -> list[dict]:
    """Train ``recipe`` until the last point (minutes of training, or steps with ``in_steps``) or its end,
    evaluating at each point; ``grid``: where to write the first 100 samples of the last evaluation."""
    rows, trained, steps = [], 0.0, 0
    pending = list(points)
    while pending:
        t0 = time.perf_counter()
        ended = recipe.total_steps is not None and steps >= recipe.total_steps
        while not ended and (steps < pending[0] if in_steps
                             else trained + (time.perf_counter() - t0) < pending[0] * 60):
            recipe.step()
            steps += 1
            ended = recipe.total_steps is not None and steps >= recipe.total_steps
        trained += time.perf_counter() - t0
        e0 = time.perf_counter()
        images = recipe.sample(n)
        row = {"recipe": recipe.name, "minutes": round(trained / 60, 2), "step": steps,
               "img_per_s": round(steps * recipe.batch_size / max(trained, 1e-9), 1),
               **evaluate(images, recipe.labels, real, extractor)}
        row["eval_s"] = round(time.perf_counter() - e0, 1)
        rows.append(row)
        log(format_row(row))
        pending.pop(0)
        if ended:
            break
    if grid is not None:
        pick = torch.arange(min(100, len(images)))
        if recipe.labels is not None:  # ten of each class, one class per row
            pick = torch.cat([(recipe.labels == c).nonzero().flatten()[:10] for c in recipe.labels.unique()])
        save_grid(images[pick], grid, nrow=10)
    return rows


def format_row(row: dict) -> str:
    cells = [f"{row['recipe']:<22}", f"{row['minutes']:>6.2f}", f"{row['step']:>6}", f"{row['img_per_s']:>6.0f}"]
    cells += [f"{row[c]:>8.3f}" if isinstance(row.get(c), float) else f"{'':>8}" for c in COLUMNS]
    return " | ".join(cells)


HEADER = " | ".join([f"{'recipe':<22}", f"{'min':>6}", f"{'step':>6}", f"{'img/s':>6}"]
                   + [f"{c[:8]:>8}" for c in COLUMNS])


def write_small_folder(out: Path, n: int, seed: int = 0) -> Path:
    """``n`` seeded Fashion-MNIST training images as PNGs in one subfolder per class under OUT/small_N."""
    from PIL import Image

    folder = out / f"small_{n}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == n:
        return folder
    data = load_dataset("fashion-mnist", None, "train")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    for i in order.tolist():
        cls = data.class_names[int(data.labels[i])].replace("/", "-")
        (folder / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i, 0].numpy()).save(folder / cls / f"{i:05d}.png")
    return folder


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["recipe"] for r in rows):
        pts = [(r["minutes"], r["fid"]) for r in rows if r["recipe"] == name]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("minutes of training (2 CPU cores)" if (os.cpu_count() or 0) <= 2 else "minutes of training")
    ax.set_ylabel("FID (fmnist extractor, log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fmnist-demo")
    p.add_argument("--recipes", default="preset,tutorial,plain")
    p.add_argument("--variant", action="append", default=[], help='"NAME:k=v,k=v": the preset with overrides')
    p.add_argument("--set", nargs="*", default=[], help="key=value overrides of the preset recipe and variants")
    p.add_argument("--budget", type=float, default=10.0, help="minutes of training per recipe")
    p.add_argument("--points", default=None, help="minutes at which to evaluate (default 1,2,5,10 within budget)")
    p.add_argument("--step-points", default=None,
                   help="steps at which to evaluate instead of minutes (quality per step: fair on a busy machine)")
    p.add_argument("--n", type=int, default=10000, help="samples (and real images) per evaluation")
    p.add_argument("--small", type=int, default=0, help="train on this many images, with and without augmentation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/time_to_quality")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.step_points:
        points = sorted(int(x) for x in args.step_points.split(","))
    elif args.points:
        points = sorted(float(x) for x in args.points.split(","))
    else:
        points = sorted({x for x in (1.0, 2.0, 5.0, 10.0, 20.0, 30.0) if x < args.budget} | {args.budget})

    common = [f"seed={args.seed}", "progress=false", "sample_every=0", "ckpt_every=0"]
    specs: list[tuple[str, Callable[[], Recipe]]] = []

    def ganforge_recipe(name: str, preset: str, overrides: list[str]) -> Callable[[], Recipe]:
        return lambda: GanforgeRecipe(name, resolve_config(preset, overrides=common + overrides), out)

    names = [r.strip() for r in args.recipes.split(",") if r.strip() and r.strip() != "none"]
    if args.small:
        folder = write_small_folder(out, args.small, args.seed)
        names = [r for r in names if r != "preset"]
        for kind in ("none", "diffaugment", "ada"):
            specs.append((f"small{args.small}-{kind}",
                          ganforge_recipe(f"small{args.small}-{kind}", args.preset,
                                          [f"data={folder}", "image_size=28", f"augment={kind}"] + args.set)))
    for name in names:
        if name == "preset":
            specs.append((args.preset, ganforge_recipe(args.preset, args.preset, args.set)))
        elif name == "tutorial":
            specs.append(("dcgan-tutorial-28", ganforge_recipe("dcgan-tutorial-28", "dcgan-tutorial-28", [])))
        elif name == "plain":
            specs.append(("plain", lambda: PlainRecipe(args.seed)))
        else:
            raise SystemExit(f"unknown recipe {name!r}; choose from preset, tutorial, plain, none")
    for text in args.variant:
        name, _, rest = text.partition(":")
        overrides = [o.strip() for o in rest.split(",") if o.strip()]
        specs.append((name.strip(), ganforge_recipe(name.strip(), args.preset, args.set + overrides)))
    if not specs:
        raise SystemExit("nothing to run: give --recipes, --variant or --small")

    extractor = get_extractor("fmnist")
    real, _ = dataset_features("fashion-mnist", "train", args.n, extractor, seed=args.seed)
    load = os.getloadavg()[0]
    print(f"time to quality: budget {args.budget:g} min per recipe, points {points}"
          f"{' (steps)' if args.step_points else ' (minutes)'}, n={args.n}, "
          f"{torch.get_num_threads()} threads, load average {load:.2f}"
          + ("  (warning: the machine is busy; times are not comparable)" if load > 0.5 else ""))
    print(HEADER)
    rows: list[dict] = []
    for name, make in specs:
        recipe = make()
        try:
            rows += train_and_measure(recipe, points, args.n, real, extractor, lambda s: print(s, flush=True),
                                      out / f"samples_{name}.png", in_steps=bool(args.step_points))
        finally:
            recipe.close()
        (out / "results.json").write_text(json.dumps({"points": points, "n": args.n, "rows": rows}, indent=1))
    plain = {r["minutes"]: r["fid"] for r in rows if r["recipe"] == "plain"}
    if plain:
        print("\nFID(plain) / FID(recipe), at the plain loop's points:")
        for name in dict.fromkeys(r["recipe"] for r in rows if r["recipe"] != "plain"):
            mine = [r for r in rows if r["recipe"] == name]
            ratios = []
            for minutes, fid in plain.items():
                at = min(mine, key=lambda r: abs(r["minutes"] - minutes))
                ratios.append(f"{minutes:g} min: {fid / at['fid']:.2f}")
            print(f"  {name:<22} " + ", ".join(ratios))
    plot(rows, out / "fid_vs_time.png", f"FID against training time ({args.preset})")
    print(f"\nwrote {out / 'results.json'} and {out / 'fid_vs_time.png'}")


if __name__ == "__main__":
    main()
