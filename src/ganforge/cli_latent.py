"""``ganforge latent``: latent-space pictures from the command line (a thin layer over :mod:`ganforge.latent`).

    ganforge latent interpolate RUN --seeds 1,2,3 [--seeds 4,5,6] [--steps 8] [--mode linear] [--gif] --out DIR
    ganforge latent interpolate RUN --classes Sandal,Sneaker --seed 3 --out DIR     (conditional models)
    ganforge latent arithmetic RUN --expr "a - b + c" --group a=seeds:1,5,9 --group b=grid:7,12@seed=0,n=64 \\
                                   --group c=class:Sandal@min=0.8 --out DIR
    ganforge latent sweep RUN --dim 5 --seeds 0,1 [--range 3] [--steps 9] --out DIR
    ganforge latent sweep RUN --pca 6 --seeds 0 [--space activation|feature] --out DIR
    ganforge latent truncate RUN [--thresholds none,2,1,0.5,0.25] [--n 10] [--seed 0] --out DIR
    ganforge latent project RUN photo.png [--steps 300] [--loss pixel+features] --out DIR   (GAN inversion)
    ganforge latent interpolate RUN --seeds DIR/project.npz,3 --out DIR2   (a projection stands in for a seed)
    ganforge latent regenerate DIR/TOOL.json --out OTHER_DIR

Common options: --ckpt latest|best|STEP, --ema / --no-ema, --device; --class NAME|INDEX for conditional
models. Each command writes a picture (PNG) and its record (JSON), from which ``regenerate`` redraws the
picture, into the --out folder, named after the tool that made them:

    interpolate --seeds     interpolate.png, interpolate.json (+ interpolate.gif with --gif)
    interpolate --classes   interpolate_classes.png, interpolate_classes.json (+ interpolate_classes.gif with --gif)
    arithmetic              arithmetic.png, arithmetic.json
    sweep --dim             sweep_dimension.png, sweep_dimension.json
    sweep --pca             sweep_pca.png, sweep_pca.json
    truncate                truncation.png, truncation.json
    project                 project.png, project.json, project.npz (the latent z, usable as a seed)
    regenerate TOOL.json    the files the record lists (TOOL.png, TOOL.json, TOOL.gif if it had one)
"""

from __future__ import annotations

import argparse
import sys

from .checkpoint import weights_origin
from .errors import GanforgeError
from .threads import add_threads_option

_FMT = argparse.RawDescriptionHelpFormatter

_GROUPS_HELP = """\
groups (--group NAME=SPEC, one per operand):
  seeds:1,5,9                          the latents of these seeds
  grid:7,12@seed=0,n=64                images 7 and 12 of `ganforge sample --seed 0 --n 64`
                                       (seed and n default to 0 and 64, as there)
  class:Sandal@seed=0,n=512,min=0.8,take=8
                                       of the n images of `ganforge sample --seed 0 --n 512`, those the
                                       Fashion-MNIST classifier calls Sandal with probability >= min,
                                       the `take` most confident (class by name or index 0-9)
expression: group names joined by + and -, optionally weighted: "a - b + c", "a - 0.5*b"."""


def _common(sub: argparse.ArgumentParser, files: str, source: bool = True) -> None:
    """The options every tool takes; ``files`` names what it writes into --out."""
    if source:
        sub.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
        sub.add_argument("--ckpt", default="latest", help="latest | best | STEP (for a run folder; default latest)")
        sub.add_argument("--ema", dest="ema", action="store_true", default=None,
                         help="use EMA weights (default when the checkpoint has them)")
        sub.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw generator weights")
    sub.add_argument("--out", required=True, metavar="DIR", help=f"folder for {files}")
    sub.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto (default cpu)")
    add_threads_option(sub)


def _class_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--class", dest="class_", metavar="NAME|INDEX",
                     help="conditional models: the class of every image (default: seed %% number of classes)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``latent`` (with its tools as sub-commands) to a ``subparsers`` object; returns its parser."""
    parts = __doc__.split("\n\n")
    examples, files = parts[1].rstrip(), parts[3].rstrip()
    p = subparsers.add_parser("latent", help="latent-space pictures: interpolation, arithmetic, sweeps, truncation",
                              description="Latent-space pictures from a run: interpolation, vector arithmetic, "
                                          "dimension and PCA sweeps, truncation.", formatter_class=_FMT,
                              epilog=f"examples:\n{examples}\n\nfiles written into --out:\n{files}\n\n"
                                     "Run `ganforge latent TOOL -h` for its options.")
    p.set_defaults(latent_parser=p)
    tools = p.add_subparsers(dest="latent_tool", metavar="TOOL")

    i = tools.add_parser("interpolate", help="walk between seeds' latents (or between classes at a fixed latent)",
                         formatter_class=_FMT, epilog=(
                             "slerp: the direction moves on the great circle, the norm linearly from one end's\n"
                             "to the other's (so it stays constant between equal norms); linear: straight line.\n"
                             "Several --seeds give several rows (the same number of seeds each)."))
    _common(i, "interpolate.png and interpolate.json (interpolate_classes.* with --classes; "
              "a .gif too with --gif)")
    what = i.add_mutually_exclusive_group(required=True)
    what.add_argument("--seeds", action="append", metavar="S1,S2[,S3...]",
                      help="keyframe seeds of one path (one row); repeat for more rows")
    what.add_argument("--classes", metavar="A,B[,C...]",
                      help="conditional models: blend the class label through these classes (soft labels)")
    i.add_argument("--seed", metavar="S[,S...]", help="with --classes: the fixed latent's seed(s), one row each "
                                                       "(default 0)")
    i.add_argument("--steps", type=int, default=8, help="steps per segment (default 8)")
    i.add_argument("--mode", choices=("slerp", "linear"), default="slerp", help="default slerp")
    _class_option(i)
    i.add_argument("--gif", action="store_true", help="also write an animation")
    i.add_argument("--pingpong", action="store_true", help="the animation plays forwards then backwards")
    i.add_argument("--frame-ms", type=int, default=100, help="ms per animation frame (default 100)")

    a = tools.add_parser("arithmetic", help="vector arithmetic on group means (Radford et al. figure 7)",
                         formatter_class=_FMT, epilog=_GROUPS_HELP)
    _common(a, "arithmetic.png and arithmetic.json")
    a.add_argument("--expr", required=True, help='expression over the groups, e.g. "a - b + c"')
    a.add_argument("--group", action="append", required=True, metavar="NAME=SPEC", help="an operand group")
    a.add_argument("--variants", type=int, default=4, help="noisy variants of the result (default 4)")
    a.add_argument("--noise", type=float, default=0.25, help="std of the variants' noise (default 0.25)")
    a.add_argument("--noise-seed", type=int, default=0, help="seed of the variants' noise (default 0)")
    _class_option(a)

    s = tools.add_parser("sweep", help="vary one latent dimension or a GANSpace (PCA) direction",
                         formatter_class=_FMT, epilog=(
                             "--dim D: z[D] is set to each value (--shift: added), other coordinates unchanged.\n"
                             "--pca K: the top K directions of GANSpace (PCA of the first block's activations,\n"
                             "or of the Fashion-MNIST classifier's features with --space feature, regressed\n"
                             "onto z); the component of z along each unit direction is set to each value."))
    _common(s, "sweep_dimension.png and .json (--dim) or sweep_pca.png and .json (--pca)")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--dim", type=int, help="latent coordinate to vary (0 .. nz-1)")
    which.add_argument("--pca", type=int, metavar="K", help="number of PCA directions to show")
    s.add_argument("--seeds", default="0", metavar="S[,S...]", help="base seeds, one row each (default 0)")
    s.add_argument("--range", type=float, default=3.0, dest="radius", metavar="R",
                   help="values from -R to R (default 3, in prior standard deviations)")
    s.add_argument("--steps", type=int, default=9, help="values (columns; default 9)")
    s.add_argument("--shift", action="store_true", help="add the value to the base latent instead of setting it")
    s.add_argument("--space", choices=("activation", "feature"), default="activation",
                   help="PCA of G's first-block activations (default) or of classifier features")
    s.add_argument("--samples", type=int, default=2000, help="latents for the PCA (default 2000)")
    s.add_argument("--pca-seed", type=int, default=0, help="seed of the PCA latents (default 0)")
    s.add_argument("--layer", help="generator module for --space activation (default: the first activation)")
    _class_option(s)

    t = tools.add_parser("truncate", help="the truncation trick: rows = thresholds, columns = seeds",
                         formatter_class=_FMT, epilog=(
                             "Row t redraws every latent component with |z_i| > t. Beside each row: mean pairwise\n"
                             "distance of Fashion-MNIST classifier features and of pixels (diversity), and for\n"
                             "one-channel images the classifier's mean confidence."))
    _common(t, "truncation.png and truncation.json")
    t.add_argument("--thresholds", default="none,2,1,0.5,0.25", help="comma-separated; none = untruncated "
                                                                     "(default none,2,1,0.5,0.25)")
    t.add_argument("--n", type=int, default=10, help="seeds per row (default 10)")
    t.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    _class_option(t)

    j = tools.add_parser("project", help="a real image's latent by optimisation (GAN inversion)",
                         formatter_class=_FMT, epilog=(
                             "Adam on z (G frozen) from the best of --starts seeded latents: mean squared pixel\n"
                             "error, plus (loss pixel+features, the default for one-channel models) the distance of\n"
                             "the Fashion-MNIST classifier's features, plus a small prior keeping z typical. Writes\n"
                             "project.npz: give it where a seed goes (--seeds DIR/project.npz,3)."))
    _common(j, "project.png (target | start | projection), project.json and project.npz")
    j.add_argument("image", help="the image file to project (centre-cropped to a square, resized to the model's)")
    j.add_argument("--steps", type=int, default=300, help="Adam steps (default 300)")
    j.add_argument("--lr", type=float, default=0.05, help="Adam learning rate on z (default 0.05)")
    j.add_argument("--loss", choices=("pixel", "features", "pixel+features"),
                   help="default pixel+features for one-channel models, pixel otherwise")
    j.add_argument("--starts", type=int, default=16, help="seeded latents tried as the start (default 16)")
    j.add_argument("--seed", type=int, default=0, help="first seed of the starts (default 0)")
    _class_option(j)

    r = tools.add_parser("regenerate", help="redraw a picture from its JSON record")
    r.add_argument("record", metavar="TOOL.json")
    r.add_argument("--source", metavar="RUN_DIR|CHECKPOINT",
                   help="load this instead of the recorded checkpoint (a run folder: its checkpoint at the "
                        "recorded step)")
    _common(r, "the recorded tool's files again (TOOL.png, TOOL.json; TOOL.gif if the record has one)",
            source=False)
    return p


def _ints(text: str | None, flag: str) -> list[int | str]:
    """Comma-separated seeds; a projection file (project.npz) may stand in for a seed."""
    values: list[int | str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part.lower().endswith(".npz"):
            values.append(part)
            continue
        if not part.isdigit():
            raise GanforgeError(f"{flag} takes comma-separated non-negative integers, got {text!r} (a projection "
                                "file, project.npz, may stand in for one).")
        values.append(int(part))
    return values


def _groups(items: list[str]) -> dict[str, str]:
    groups: dict[str, str] = {}
    for item in items:
        name, eq, spec = item.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            raise GanforgeError(f"--group takes NAME=SPEC with NAME a plain name (e.g. a=seeds:1,5,9), got {item!r}.")
        if name in groups:
            raise GanforgeError(f"Group {name!r} is defined twice.")
        groups[name] = spec.strip()
    return groups


def run(args: argparse.Namespace) -> int:
    """Run the ``latent`` tool chosen in ``args``; print where the pictures are. Raises GanforgeError."""
    from . import latent

    tool = getattr(args, "latent_tool", None)
    if tool is None:
        args.latent_parser.print_help()
        return 2
    if tool == "regenerate":
        fig = latent.regenerate(args.record, args.out, device=args.device, source=args.source, threads=args.threads)
        return _report(fig)
    from .api import load

    if tool == "interpolate" and args.seed is not None and not args.classes:
        raise GanforgeError("--seed goes with --classes; give the keyframes of a seed path with --seeds.")
    if tool == "interpolate" and args.classes and args.class_ is not None:
        raise GanforgeError("--class fixes one class and --classes blends between classes; give one of them.")
    if tool == "sweep" and args.layer and (args.dim is not None or args.space != "activation"):
        raise GanforgeError("--layer goes with --pca and --space activation.")
    model = load(args.source, args.ckpt, args.device)
    if tool == "interpolate":
        if args.classes:
            fig = latent.interpolate_classes(model, [c.strip() for c in args.classes.split(",")],
                                             _ints(args.seed or "0", "--seed"), args.steps, args.gif, args.pingpong,
                                             args.frame_ms, args.ema, args.out, threads=args.threads)
        else:
            rows = [_ints(s, "--seeds") for s in args.seeds]
            fig = latent.interpolate(model, rows, args.steps, args.mode, args.class_, args.gif, args.pingpong,
                                     args.frame_ms, args.ema, args.out, threads=args.threads)
    elif tool == "arithmetic":
        fig = latent.arithmetic(model, args.expr, _groups(args.group), args.variants, args.noise, args.noise_seed,
                                args.class_, args.ema, args.out, threads=args.threads)
    elif tool == "sweep":
        seeds = _ints(args.seeds, "--seeds")
        if args.dim is not None:
            fig = latent.sweep_dimension(model, args.dim, seeds, args.radius, args.steps, args.shift, args.class_,
                                         args.ema, args.out, threads=args.threads)
        else:
            fig = latent.sweep_pca(model, args.pca, seeds, args.radius, args.steps, args.shift, args.space,
                                   args.samples, args.pca_seed, args.layer, args.class_, args.ema, args.out,
                                   threads=args.threads)
    elif tool == "project":
        fig = latent.project(model, args.image, args.steps, args.lr, args.loss, args.starts, args.seed,
                             args.class_, ema=args.ema, out=args.out, threads=args.threads)
        hist = fig.record["history"]
        print(f"Projected {fig.record['image_name']}: loss {hist[0]['loss']:.4f} -> {hist[-1]['loss']:.4f}, "
              f"RMS pixel error {fig.record['rms_pixel_error']:.4f}; use {fig.files['npz']} as a seed")
    else:
        thresholds = [t.strip() for t in args.thresholds.split(",")]
        fig = latent.truncation(model, thresholds, args.n, args.seed, args.class_, args.ema, args.out,
                                threads=args.threads)
    return _report(fig)


def _report(fig) -> int:
    rec = fig.record
    if fig.tool == "truncation":
        for row in rec["rows"]:
            t = "none" if row["threshold"] is None else f"{row['threshold']:g}"
            conf = "" if row["confidence"] is None else f"  confidence {row['confidence']:.3f}"
            print(f"threshold {t:>5}: diversity {row['diversity_features']:.3f} (features), "
                  f"{row['diversity_pixels']:.4f} (pixels){conf}")
    files = ", ".join(str(p) for p in fig.files.values())
    origin = weights_origin(rec.get("step"), rec.get("checkpoint"))
    print(f"Wrote {files} ({origin}, {'EMA' if rec.get('ema') else 'raw'} weights)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``ganforge latent ...`` on its own (argv without the leading "latent"); errors as one sentence."""
    parser = argparse.ArgumentParser(prog="ganforge")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["latent", *(argv if argv is not None else sys.argv[1:])])
    try:
        return run(args)
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
