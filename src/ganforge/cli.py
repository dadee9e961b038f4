"""Command line: parse arguments, call the Python API, print one sentence for a user's mistake."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .config import PRECISIONS, preset_names


def _registry_text() -> str:
    from .data import DATASETS
    from .data.paired import PAIRED_DATASETS
    from .data.unaligned import UNALIGNED_DATASETS
    from .losses import LOSSES
    from .models import MODELS

    models = "\n".join(f"  {n:10s} {MODELS.get(n).description}" for n in MODELS.names())
    return (f"models:\n{models}\n"
            f"datasets: {', '.join(DATASETS.names())}, or a folder of images (class subfolders = labels)\n"
            f"paired (pix2pix): {', '.join(PAIRED_DATASETS.names())},\n"
            "          or a folder of A|B images (or A/ and B/), or any dataset/folder with derive=KIND\n"
            f"unpaired (cyclegan): {', '.join(UNALIGNED_DATASETS.names())},\n"
            "          or a folder with trainA/ trainB/ (testA/ testB/), or two folders as A_DIR,B_DIR\n"
            f"losses:   {', '.join(LOSSES.names())}\n"
            f"presets:  {', '.join(preset_names())}")


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one sentence (not a usage dump) and exit status 2."""

    def error(self, message: str):
        message = message[0].upper() + message[1:] if message else message
        self.exit(2, f"ganforge: error: {message.rstrip('.')} (see {self.prog} --help).\n")


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", metavar="N|auto", help="CPU threads for PyTorch (default auto: the cores that "
                        "other programs leave free; OMP_NUM_THREADS is respected)")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = Parser(prog="ganforge", description="Train, sample and inspect GANs.",
               epilog=_registry_text(), formatter_class=fmt)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model", formatter_class=fmt, epilog=_registry_text() + (
        "\n\nAny TrainConfig field can be set as key=value (e.g. lr_g=1e-4 loss=hinge ema_decay=0.999),"
        "\nand model options as model.KEY=value (e.g. model.ngf=32)."))
    t.add_argument("model", nargs="?", help="registered model name (default: the preset's, else dcgan)")
    t.add_argument("overrides", nargs="*", help="key=value settings, applied last")
    t.add_argument("--data", help="dataset name or folder of images")
    t.add_argument("--data-root", help="folder holding the dataset files")
    t.add_argument("--out", help="run folder to create (default runs/<model>-<data>)")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="generator steps to train for")
    length.add_argument("--epochs", type=float, help="passes over the data to train for")
    t.add_argument("--batch-size", type=int,
                   help="images per batch per process (default 64, or the dataset size when smaller)")
    t.add_argument("--precision", choices=PRECISIONS)
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    t.add_argument("--seed", type=int)
    t.add_argument("--config", help=f"preset name ({', '.join(preset_names())}) or YAML file")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR where it stopped")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_threads(t)

    s = sub.add_parser("sample", help="generate images from a run or checkpoint")
    s.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
    s.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    s.add_argument("--out", required=True, help="FILE.png (grid) or FILE.npz (uint8 images [N, H, W, C])")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ckpt", default="latest", help="latest | best | STEP (for a run folder)")
    s.add_argument("--ema", dest="ema", action="store_true", default=None, help="use EMA weights (default when saved)")
    s.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw generator weights")
    s.add_argument("--nrow", type=int, help="images per row in the PNG grid")
    s.add_argument("--class", dest="label", metavar="NAME|INDEX",
                   help="conditional models: every image of this class (default: one row per class)")
    s.add_argument("--device", default="cpu")
    _add_threads(s)

    e = sub.add_parser("eval", help="FID, KID, IS, precision/recall, density/coverage of a run or of samples",
                       formatter_class=fmt, epilog=(
                           "Prints a short table (--json: one JSON object; a run's result is also appended to\n"
                           "its metrics.jsonl). The reference\n"
                           "features of a dataset are cached; the real-vs-real FID (train vs test, same N) is\n"
                           "printed beside every FID as the floor. Extractors: fmnist (offline, default for\n"
                           "small grayscale images), inception (the standard FID network; --weights or cache)."))
    e.add_argument("source", metavar="RUN_DIR|SAMPLES.npz|IMAGE_DIR")
    e.add_argument("--against", help="DATASET name, IMAGE_DIR or FID STATS.npz (default: the run's dataset)")
    e.add_argument("--metrics", default="fid", help="comma-separated: fid,kid,is,pr,dc (default fid)")
    e.add_argument("--extractor", help="fmnist | inception | a registered name (default by image size)")
    e.add_argument("--n", type=int, help="generated images (default 10000 for a run; all for files)")
    e.add_argument("--ckpt", default="latest", help="latest | best | STEP")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--weights", help="extractor weights file")
    e.add_argument("--split", default="train", help="reference split of a dataset (default train)")
    e.add_argument("--data-root", help="folder holding the reference dataset files")
    e.add_argument("--ema", dest="ema", action="store_true", default=None)
    e.add_argument("--no-ema", dest="ema", action="store_false")
    e.add_argument("--device", default="cpu")
    e.add_argument("--batch-size", type=int, default=100)
    e.add_argument("--json", action="store_true", help="print the whole result as one JSON object (no table)")
    _add_threads(e)

    r = sub.add_parser("translate", help="translate images with a pix2pix or CycleGAN run, or reference generators",
                       formatter_class=fmt, epilog=(
                           "Examples:\n"
                           "  ganforge translate runs/e2f --split test --out out/   (the run's held-out pairs)\n"
                           "  ganforge translate runs/facades photos/ --out out/    (a file or a folder)\n"
                           "  ganforge translate --from-reference latest_net_G.pth --netG unet_256 in/ --out out/\n"
                           "  ganforge translate runs/f2e --split test --direction BtoA --out out/   (CycleGAN: G_B)\n"
                           "  ganforge translate --from-reference latest_net_G_A.pth horses/ --out out/  (G_B beside)\n"
                           "Writes OUT/<name>.png per input, comparison.png (input | output | target when targets\n"
                           "exist; CycleGAN: input | output | reconstruction [| target]) and translate.json (what\n"
                           "ran; L1/PSNR/SSIM/FID against the targets; CycleGAN: the reconstructions' L1/PSNR/SSIM).\n"
                           "Sizes: sides that are not multiples of 2^downs (256 for unet_256) are padded by\n"
                           "reflection and cropped back; --size N resizes inputs first. --mode reference keeps\n"
                           "dropout on and normalises each image with its own batch statistics, like the\n"
                           "reference test.py; --mode eval uses running statistics and no dropout; --mode auto\n"
                           "(default) is reference for batch-1 runs and reference checkpoints, eval otherwise."))
    r.add_argument("paths", nargs="*", metavar="RUN_DIR|CHECKPOINT [INPUT]",
                   help="the model (omit with --from-reference) and an image file or folder")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--split", help="translate this split of the run's paired dataset (or of --data)")
    r.add_argument("--data", help="paired dataset name or folder for --split (default: the run's)")
    r.add_argument("--derive", help="with --data: derive the inputs (edges, gray2color, lowres4, ...)")
    r.add_argument("--direction", choices=("AtoB", "BtoA"),
                   help="pix2pix: which half is the input (default: the run's); CycleGAN: AtoB = G_A (default), "
                        "BtoA = G_B")
    r.add_argument("--aligned", action="store_true", help="INPUT images hold A|B side by side; B is the target")
    r.add_argument("--n", metavar="N|all", help="translate the first N images or pairs (default for --split: 500; "
                                                 "all: every pair)")
    r.add_argument("--size", type=int, help="resize inputs to SIZE x SIZE for the network (outputs resized back)")
    r.add_argument("--mode", choices=("auto", "reference", "eval"), default="auto",
                   help="auto (default): reference for batch-1 runs and --from-reference, eval otherwise")
    r.add_argument("--seed", type=int, default=0, help="seed of the dropout noise (mode reference)")
    r.add_argument("--no-fid", action="store_true", help="scores without FID")
    r.add_argument("--ckpt", default="latest", help="latest | best | STEP")
    r.add_argument("--device", default="cpu")
    r.add_argument("--from-reference", metavar="NET_G.pth",
                   help="a junyanz pytorch-CycleGAN-and-pix2pix generator: latest_net_G.pth (pix2pix) or "
                        "latest_net_G_A.pth / latest_net_G_B.pth (CycleGAN; G_B is loaded too when it lies beside G_A)")
    r.add_argument("--from-reference-B", metavar="NET_G_B.pth", help="the CycleGAN G_B (B -> A) to go with G_A")
    r.add_argument("--netG", help="with --from-reference: unet_32|unet_64|unet_128|unet_256 (pix2pix default "
                                  "unet_256) or resnet_9blocks|resnet_6blocks (CycleGAN default resnet_9blocks)")
    r.add_argument("--norm", help="with --from-reference: batch | instance | none (default: batch for pix2pix, "
                                  "instance for CycleGAN)")
    r.add_argument("--input-nc", type=int, help="with --from-reference: channels of A (default 3; CycleGAN: read)")
    r.add_argument("--output-nc", type=int, help="with --from-reference: channels of B (default 3; CycleGAN: read)")
    r.add_argument("--ngf", type=int, help="with --from-reference: generator width (default 64; CycleGAN: read)")
    r.add_argument("--no-dropout", action="store_true", help="with --from-reference: trained with --no_dropout")
    _add_threads(r)

    from . import cli_latent

    cli_latent.add_parser(sub)

    from . import cli_export

    cli_export.add_parser(sub)

    from . import cli_studio

    cli_studio.add_parser(sub)

    from . import cli_style

    cli_style.add_parser(sub)

    y = sub.add_parser("toy", help="watch a GAN learn 1-D / 2-D toy data (figure 1 of Goodfellow et al., GAN Lab)",
                       formatter_class=fmt, epilog=(
                           "data: gaussian1d, mixture1d, uniform1d, ring2d, grid2d, moons2d, spiral2d, line2d, or a\n"
                           ".csv/.txt/.npy file of your own 1-D samples or 2-D points (centred and scaled to unit\n"
                           "standard deviation). Writes RUN_DIR/samples/step_*.png, progress.gif, losses.png,\n"
                           "divergence.png, toy_metrics.jsonl; with --compare one run per loss in RUN_DIR/<loss>/\n"
                           "and compare.gif, compare.png, compare_curves.png. Other TrainConfig fields as key=value."))
    y.add_argument("--data", required=True, help="toy distribution name or a file of points")
    y.add_argument("--out", help="run folder to create (default runs/toy-<data>)")
    losses = y.add_mutually_exclusive_group()
    losses.add_argument("--loss", help="minimax | nonsaturating (default) | lsgan | hinge | wgan | wgan-gp")
    losses.add_argument("--compare", metavar="LOSS[:K],LOSS[:K],...",
                        help="train once per loss (optionally with K D steps), same data and seed, side by side")
    y.add_argument("--steps", type=int, help="generator steps (default 3000 for 1-D data, 5000 for 2-D)")
    y.add_argument("--d-steps", type=int, help="k: discriminator updates per generator update (default 1)")
    y.add_argument("--lr-g", type=float, help="Adam learning rate of G (default 2e-4)")
    y.add_argument("--lr-d", type=float, help="Adam learning rate of D (default 2e-3; betas: beta1=, beta2=)")
    y.add_argument("--batch-size", type=int, help="points per batch (default 256)")
    y.add_argument("--z", choices=("uniform", "normal"), help="noise: uniform on [-1, 1] (default) or normal")
    y.add_argument("--frames", type=int, default=60, help="pictures over training (default 60)")
    y.add_argument("--seed", type=int)
    y.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default cpu)")
    y.add_argument("--progress", action="store_true", help="show a progress bar")
    _add_threads(y)

    i = sub.add_parser("info", help="print parameter counts of a model as JSON", formatter_class=fmt,
                       epilog=_registry_text())
    i.add_argument("model")
    i.add_argument("--image-size", type=int)
    i.add_argument("--channels", type=int)
    i.add_argument("--netG", help="pix2pix generator: unet_32 | unet_64 | unet_128 | unet_256")
    i.add_argument("--netD", help="pix2pix discriminator: basic | n_layers | pixel")
    i.add_argument("--norm", help="pix2pix norm: batch | instance | none")
    i.add_argument("options", nargs="*", help="model options as key=value (e.g. ngf=32 arch=tutorial)")
    return p


def cmd_train(args: argparse.Namespace) -> int:
    from .api import plan_resume, resume, train
    from .config import resolve_config

    if args.model and "=" in args.model:
        args.overrides.insert(0, args.model)
        args.model = None
    if args.resume:
        if args.model or args.data or args.config or args.data_root:
            from .errors import GanforgeError

            raise GanforgeError("--resume continues a run with its saved model, data and preset; leave out the "
                                "model, --data, --data-root and --config (settings that may change can be given).")
        changes = {"steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size,
                   "precision": args.precision, "device": args.device, "seed": args.seed,
                   "progress": False if args.no_progress else None}
        _, changed, restart = plan_resume(args.resume, changes, args.overrides)
        if restart:
            print(f"ganforge: {args.resume} stopped before its first checkpoint; training it again from step 0 "
                  "with its saved settings.", file=sys.stderr)
        if changed:
            print("ganforge: resuming with " + ", ".join(f"{k} {new!r} (was {old!r})" for k, (old, new)
                                                         in changed.items()) + ".", file=sys.stderr)
        result = resume(args.resume, changes, overrides=args.overrides)
    else:
        flags = {"model": args.model, "data": args.data, "data_root": args.data_root, "steps": args.steps,
                 "epochs": args.epochs, "batch_size": args.batch_size, "precision": args.precision,
                 "device": args.device, "seed": args.seed, "progress": False if args.no_progress else None}
        cfg = resolve_config(args.config, flags, args.overrides)
        if cfg.model == "toy" and not args.config:  # the defaults and frames of `ganforge toy`
            from .api import toy_config
            from .errors import GanforgeError

            if not args.data:
                raise GanforgeError("ganforge train toy needs --data: a toy distribution (ring2d, gaussian1d, ...) "
                                    "or a .csv/.txt/.npy file of points.")
            cfg = toy_config(args.data, {k: v for k, v in flags.items() if k not in ("model", "data")},
                             args.overrides)
        out = args.out or f"runs/{cfg.model}-{Path(cfg.data.name).name}"
        result = train(cfg, out)
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        if result.checkpoint is not None:  # rank 0 (under torchrun the other ranks print nothing)
            print(f"ganforge: interrupted at step {result.step}; checkpoint saved in {result.checkpoint}; "
                  f"continue with: ganforge train --resume {result.run_dir}", file=sys.stderr)
        return 128 + getattr(signal, result.stopped_by)  # 130 for SIGINT, 143 for SIGTERM
    if _rank() == 0:  # under torchrun one line, not one per process
        print(f"Trained to step {result.step}; pictures and checkpoints are in {result.run_dir}/")
    return 0


def _rank() -> int:
    import os

    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .api import load
    from .errors import GanforgeError
    from .io import check_writable_parent, write_atomic
    from .viz import save_grid

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise GanforgeError(f"--out must end in .png or .npz, got {args.out!r}.")
    if out.is_dir():
        raise GanforgeError(f"--out {args.out!r} is a folder; give a file name ending in .png or .npz.")
    check_writable_parent(out, "--out")
    if args.n < 1:
        raise GanforgeError(f"--n must be positive, got {args.n}.")
    if args.nrow is not None and args.nrow < 1:
        raise GanforgeError(f"--nrow must be a positive number of images per row, got {args.nrow}.")
    model = load(args.source, args.ckpt, args.device)
    label = None if args.label is None else model.class_index(args.label)
    images = model.sample(args.n, seed=args.seed, ema=args.ema, label=label)
    labels = model.inputs(args.n, args.seed, label)["y"].numpy() if model.num_classes else None
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        extra = {"labels": labels, "class_names": np.array(model.class_names)} if labels is not None else {}
        write_atomic(out, lambda p: np.savez_compressed(p, images=images, seed=np.int64(args.seed),
                                                        step=np.int64(model.step or 0), **extra))
    else:
        grid = torch.from_numpy(images).permute(0, 3, 1, 2)
        if labels is not None and label is None and args.nrow is None:  # one row per class, named
            cols = model.grid_columns(args.n)
            save_grid(grid, out, nrow=cols, row_labels=model.row_labels(labels, cols))
        elif label is not None:  # every image of one class: the grid says which
            save_grid(grid, out, nrow=args.nrow, title=f"class {model.class_name(label)}, step {model.step}")
        else:
            save_grid(grid, out, nrow=args.nrow)
    what = f" of class {model.class_name(label)}" if label is not None else ""
    print(f"Wrote {args.n} samples{what} from step {model.step} to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .api import evaluate

    if args.n is not None and args.n < 2:
        from .errors import GanforgeError

        raise GanforgeError(f"--n must be at least 2 for any metric, got {args.n}.")
    result = evaluate(args.source, against=args.against, metrics=args.metrics.split(","), extractor=args.extractor,
                      n=args.n, ckpt=args.ckpt, seed=args.seed, weights=args.weights, device=args.device,
                      batch_size=args.batch_size, ema=args.ema, data_root=args.data_root, split=args.split,
                      progress=not args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(eval_table(result))
    if result.get("warning"):
        print(f"ganforge: warning: {result['warning']}.", file=sys.stderr)
    return 0


def eval_table(result: dict) -> str:
    """``ganforge eval``'s result for people: what was measured against what, then one line a number."""
    ref = result.get("reference") or {}
    ref_text = {"dataset": f"{ref.get('name')} {ref.get('split')} ({ref.get('n')} images)",
                "folder": f"the folder {ref.get('path')} ({ref.get('n')} images)",
                "stats": f"the statistics {ref.get('path')}"}.get(ref.get("kind"), "-")
    what = result["source"]
    if result.get("kind") == "model":
        what += f" at step {result.get('step')} ({'EMA' if result.get('ema') else 'raw'} weights)"
    lines = [f"{what}: {result['n']} images against {ref_text}, extractor {result['extractor'].get('extractor')}"]

    def row(name: str, value: str) -> None:
        lines.append(f"  {name:<16}{value}")

    if "fid" in result:
        floor = result.get("fid_real_vs_real")
        row("FID", f"{result['fid']:.3f}" + (f"   (real vs real, the floor at this N: {floor:.3f})"
                                             if floor is not None else "")
            + ("   UNRELIABLE at this N" if result.get("fid_reliable") is False else ""))
    if "kid_mean" in result:
        row("KID", f"{result['kid_mean']:.4f} +- {result['kid_std']:.4f}")
    if "is_mean" in result:
        row("IS", f"{result['is_mean']:.3f} +- {result['is_std']:.3f}")
    for key in ("precision", "recall", "density", "coverage", "class_accuracy", "fid_per_class_mean"):
        if isinstance(result.get(key), (int, float)):
            row(key.replace("_", " "), f"{result[key]:.3f}")
    if isinstance(result.get("class_counts"), dict):
        counts = sorted(result["class_counts"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{k} {v}" for k, v in counts[:3] if v)
        row("classes seen", f"entropy {result['class_entropy']:.2f} of {result['class_entropy_max']:.2f}"
            + (f"; most: {top}" if top else ""))
    row("time", f"{result.get('time_s', 0):.1f} s")
    if result.get("kind") == "model" and result.get("fid_reliable") is not False:
        lines.append("Every number and the protocol (--json prints them) were added to the run's metrics.jsonl.")
    else:
        lines.append("Every number and the protocol: --json.")
    return "\n".join(lines)


def cmd_translate(args: argparse.Namespace) -> int:
    from .errors import GanforgeError
    from .translation import translate

    paths = list(args.paths)
    if args.from_reference or args.from_reference_B:
        source, inputs = None, paths
    else:
        if not paths:
            raise GanforgeError("Give the run folder (or checkpoint) to translate with, or --from-reference FILE.pth.")
        source, inputs = paths[0], paths[1:]
    if len(inputs) > 1:
        raise GanforgeError(f"Give one input file or folder, got {len(inputs)}: {' '.join(inputs)}.")
    n = args.n
    if n is not None and n != "all":
        try:
            n = int(n)
        except ValueError:
            raise GanforgeError(f"--n must be a positive integer or all, got {args.n!r}.") from None
    record = translate(source, inputs[0] if inputs else None, args.out, split=args.split, data=args.data,
                       derive=args.derive, direction=args.direction, aligned=args.aligned, n=n, size=args.size,
                       mode=args.mode, seed=args.seed, fid=not args.no_fid, ckpt=args.ckpt, device=args.device,
                       from_reference=args.from_reference, from_reference_B=args.from_reference_B, netG=args.netG,
                       norm=args.norm, input_nc=args.input_nc, output_nc=args.output_nc, ngf=args.ngf,
                       dropout=0.0 if args.no_dropout else 0.5, progress=True)
    if record.get("available") is not None:
        rest = ("; --n N or --n all for more" if record["n"] < record["available"] else "")
        print(f"Translated {record['n']} of the {record['available']:,} {args.split} pairs into {args.out}/{rest}")
    else:
        print(f"Translated {record['n']} images into {args.out}/")
    if "scores" in record:
        print(json.dumps(record["scores"]))
    if "cycle" in record:  # CycleGAN: the reconstructions against the inputs
        print(json.dumps({"cycle": record["cycle"]}))
    return 0


def _cmd_latent(args: argparse.Namespace) -> int:
    from . import cli_latent

    return cli_latent.run(args)


def _cmd_export(args: argparse.Namespace) -> int:
    from . import cli_export

    return cli_export.run(args)


def _cmd_studio(args: argparse.Namespace) -> int:
    from . import cli_studio

    return cli_studio.run(args)


def _cmd_stylize(args: argparse.Namespace) -> int:
    from . import cli_style

    return cli_style.run(args)


def cmd_toy(args: argparse.Namespace) -> int:
    from .api import compare_toy, toy_config, train_toy

    flags = {"steps": args.steps, "d_steps": args.d_steps, "lr_g": args.lr_g, "lr_d": args.lr_d,
             "batch_size": args.batch_size, "seed": args.seed, "device": args.device or "cpu",
             "loss": args.loss, "progress": True if args.progress else None}
    if args.z:
        flags["model_options"] = {"z_dist": args.z}
    cfg = toy_config(args.data, flags, args.overrides, frames=args.frames)
    out = Path(args.out or f"runs/toy-{Path(args.data).stem}")
    if args.compare:
        runs = compare_toy(cfg, args.compare, out)
        for label, run in runs.items():
            print(_toy_summary(label, run))
        print(f"Side by side: {out}/compare.gif, {out}/compare.png, {out}/compare_curves.png")
    else:
        run = train_toy(cfg, out)
        print(_toy_summary(cfg.task_options.get("loss", "nonsaturating"), run))
        print(f"Pictures: {out}/progress.gif, {out}/samples.png, {out}/losses.png, {out}/divergence.png")
    return 0


def _toy_summary(label: str, run: dict) -> str:
    w = f"W1 {run['w1']:.4f}" if "w1" in run else f"sliced W1 {run.get('sw1', float('nan')):.4f}"
    return f"{label}: step {run['step']}, {w}, JS {run.get('js', float('nan')):.4f} -> {run['run_dir']}/"


def cmd_info(args: argparse.Namespace) -> int:
    from .api import info
    from .config import parse_override

    options = {}
    for text in args.options:  # KEY=value or model.KEY=value, as train takes model options
        key, value = parse_override(text)
        options[key[len("model."):] if key.startswith("model.") else key] = value
    if args.image_size is not None:
        options["image_size"] = args.image_size
    if args.channels is not None:
        options["channels"] = args.channels
    for key in ("netG", "netD", "norm"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    print(json.dumps(info(args.model, options)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from .errors import GanforgeError

    parser = build_parser()
    try:  # a bad argument: one sentence on stderr (Parser.error), then the exit status is returned
        args, extra = parser.parse_known_args(argv)
        settings = [e for e in extra if "=" in e and not e.startswith("-")]
        if len(settings) != len(extra) or (settings and args.command not in ("train", "info", "toy")):
            unknown = ' '.join(e for e in extra if e not in settings) or ' '.join(extra)
            parser.error(f"unrecognized arguments: {unknown}")
    except SystemExit as e:
        return int(e.code or 0)
    if args.command == "train":
        args.overrides += settings
    elif args.command == "info":
        args.options += settings
    elif args.command == "toy":
        args.overrides = settings
    if args.command is None:
        parser.print_help()
        return 2
    import warnings

    import torch

    threads_before = torch.get_num_threads()
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        if _rank() > 0:  # under torchrun rank 0 says it once
            warnings.simplefilter("ignore")
        if hasattr(args, "threads"):
            _set_threads(args)
        return {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "info": cmd_info,
                "toy": cmd_toy, "translate": cmd_translate, "latent": _cmd_latent,
                "export": _cmd_export, "studio": _cmd_studio, "stylize": _cmd_stylize}[args.command](args)
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted; the last complete checkpoint is kept.", file=sys.stderr)
        return 130
    finally:
        torch.set_num_threads(threads_before)
        warnings.showwarning = shown


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line for people ("ganforge: warning: ..."), without the source line that Python adds."""
    text = str(message).strip().rstrip(".")
    print(f"ganforge: warning: {text}.", file=file or sys.stderr)


def _set_threads(args: argparse.Namespace) -> None:
    """--threads, or the automatic choice; training says so when other programs leave it fewer cores."""
    from .threads import cpu_cores, set_threads

    n, why = set_threads(args.threads)
    device = getattr(args, "device", None) or "cpu"
    if why == "auto" and n < cpu_cores() and args.command == "train" and device.startswith("cpu"):
        print(f"ganforge: training with {n} CPU thread{'s' if n > 1 else ''}: other programs keep "
              f"{cpu_cores() - n} of the {cpu_cores()} cores busy (--threads N to choose).", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
