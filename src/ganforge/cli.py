"""Command line: parse arguments, call the Python API, print one sentence for a user's mistake."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import PRECISIONS, preset_names


def _registry_text() -> str:
    from .data import DATASETS
    from .data.paired import PAIRED_DATASETS
    from .losses import LOSSES
    from .models import MODELS

    models = "\n".join(f"  {n:10s} {MODELS.get(n).description}" for n in MODELS.names())
    return (f"models:\n{models}\n"
            f"datasets: {', '.join(DATASETS.names())}, or a folder of images (class subfolders = labels)\n"
            f"paired (pix2pix): {', '.join(PAIRED_DATASETS.names())},\n"
            "          or a folder of A|B images (or A/ and B/), or any dataset/folder with derive=KIND\n"
            f"losses:   {', '.join(LOSSES.names())}\n"
            f"presets:  {', '.join(preset_names())}")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="ganforge", description="Train, sample and inspect GANs.",
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
    t.add_argument("--batch-size", type=int)
    t.add_argument("--precision", choices=PRECISIONS)
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    t.add_argument("--seed", type=int)
    t.add_argument("--config", help=f"preset name ({', '.join(preset_names())}) or YAML file")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR where it stopped")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

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

    e = sub.add_parser("eval", help="FID, KID, IS, precision/recall, density/coverage of a run or of samples",
                       formatter_class=fmt, epilog=(
                           "Prints one JSON object (and appends it to a run's metrics.jsonl). The reference\n"
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

    r = sub.add_parser("translate", help="translate images with a pix2pix run or a reference latest_net_G.pth",
                       formatter_class=fmt, epilog=(
                           "Examples:\n"
                           "  ganforge translate runs/e2f --split test --out out/   (the run's held-out pairs)\n"
                           "  ganforge translate runs/facades photos/ --out out/    (a file or a folder)\n"
                           "  ganforge translate --from-reference latest_net_G.pth --netG unet_256 in/ --out out/\n"
                           "Writes OUT/<name>.png per input, comparison.png (input | output | target when targets\n"
                           "exist) and translate.json (what ran; L1/PSNR/SSIM/FID against the targets).\n"
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
    r.add_argument("--direction", choices=("AtoB", "BtoA"), help="which half is the input (default: the run's)")
    r.add_argument("--aligned", action="store_true", help="INPUT images hold A|B side by side; B is the target")
    r.add_argument("--n", type=int, help="translate at most N pairs of a split")
    r.add_argument("--size", type=int, help="resize inputs to SIZE x SIZE for the network (outputs resized back)")
    r.add_argument("--mode", choices=("auto", "reference", "eval"), default="auto",
                   help="auto (default): reference for batch-1 runs and --from-reference, eval otherwise")
    r.add_argument("--seed", type=int, default=0, help="seed of the dropout noise (mode reference)")
    r.add_argument("--no-fid", action="store_true", help="scores without FID")
    r.add_argument("--ckpt", default="latest", help="latest | best | STEP")
    r.add_argument("--device", default="cpu")
    r.add_argument("--from-reference", metavar="NET_G.pth", help="a junyanz pytorch-CycleGAN-and-pix2pix generator")
    r.add_argument("--netG", default="unet_256", help="with --from-reference: unet_32|unet_64|unet_128|unet_256")
    r.add_argument("--norm", default="batch", help="with --from-reference: batch | instance | none")
    r.add_argument("--input-nc", type=int, default=3)
    r.add_argument("--output-nc", type=int, default=3)
    r.add_argument("--ngf", type=int, default=64)
    r.add_argument("--no-dropout", action="store_true", help="with --from-reference: trained with --no_dropout")

    from . import cli_latent

    cli_latent.add_parser(sub)

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
    losses.add_argument("--loss", help="minimax | nonsaturating (default) | lsgan | hinge | wgan-gp")
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
    from .api import resume, train
    from .config import resolve_config

    if args.model and "=" in args.model:
        args.overrides.insert(0, args.model)
        args.model = None
    if args.resume:
        if args.model or args.data or args.config or args.overrides:
            from .errors import GanforgeError

            raise GanforgeError("--resume continues a run with its saved settings; give only --steps/--epochs "
                                "or --no-progress with it.")
        result = resume(args.resume, {"steps": args.steps, "epochs": args.epochs,
                                      "progress": False if args.no_progress else None,
                                      "device": args.device})
    else:
        flags = {"model": args.model, "data": args.data, "data_root": args.data_root, "steps": args.steps,
                 "epochs": args.epochs, "batch_size": args.batch_size, "precision": args.precision,
                 "device": args.device, "seed": args.seed, "progress": False if args.no_progress else None}
        cfg = resolve_config(args.config, flags, args.overrides)
        out = args.out or f"runs/{cfg.model}-{Path(cfg.data).name}"
        result = train(cfg, out)
    print(f"Trained to step {result.step}; pictures and checkpoints are in {result.run_dir}/")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .api import load
    from .errors import GanforgeError
    from .viz import save_grid

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise GanforgeError(f"--out must end in .png or .npz, got {args.out!r}.")
    model = load(args.source, args.ckpt, args.device)
    if args.n < 1:
        raise GanforgeError(f"--n must be positive, got {args.n}.")
    label = None if args.label is None else model.class_index(args.label)
    images = model.sample(args.n, seed=args.seed, ema=args.ema, label=label)
    labels = model.inputs(args.n, args.seed, label)["y"].numpy() if model.num_classes else None
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        tmp = out.with_name(out.name + ".tmp.npz")
        extra = {"labels": labels, "class_names": np.array(model.class_names)} if labels is not None else {}
        np.savez_compressed(tmp, images=images, seed=np.int64(args.seed), step=np.int64(model.step or 0), **extra)
        tmp.replace(out)
    else:
        grid = torch.from_numpy(images).permute(0, 3, 1, 2)
        if labels is not None and label is None and args.nrow is None:  # one row per class, named
            cols = model.task.grid_columns(args.n)
            save_grid(grid, out, nrow=cols, row_labels=model.task.row_labels(labels, cols))
        else:
            save_grid(grid, out, nrow=args.nrow)
    what = f" of class {model.task.class_name(label)}" if label is not None else ""
    print(f"Wrote {args.n} samples{what} from step {model.step} to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .metrics import evaluate

    if args.n is not None and args.n < 2:
        from .errors import GanforgeError

        raise GanforgeError(f"--n must be at least 2 for any metric, got {args.n}.")
    result = evaluate(args.source, against=args.against, metrics=args.metrics.split(","), extractor=args.extractor,
                      n=args.n, ckpt=args.ckpt, seed=args.seed, weights=args.weights, device=args.device,
                      batch_size=args.batch_size, ema=args.ema, data_root=args.data_root, split=args.split)
    print(json.dumps(result))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .errors import GanforgeError
    from .translate import load_translator, paired_split, read_inputs, translate_images

    paths = list(args.paths)
    if args.from_reference:
        source, inputs = None, paths
    else:
        if not paths:
            raise GanforgeError("Give the run folder (or checkpoint) to translate with, or --from-reference FILE.pth.")
        source, inputs = paths[0], paths[1:]
    if len(inputs) > 1:
        raise GanforgeError(f"Give one input file or folder, got {len(inputs)}: {' '.join(inputs)}.")
    if inputs and args.split:
        raise GanforgeError("Give either an input file/folder or --split, not both.")
    for flag, value in (("--n", args.n), ("--size", args.size)):
        if value is not None and value < 1:
            raise GanforgeError(f"{flag} must be a positive integer, got {value}.")
    t = load_translator(source, ckpt=args.ckpt, from_reference=args.from_reference, netG=args.netG, norm=args.norm,
                        input_nc=args.input_nc, output_nc=args.output_nc, ngf=args.ngf,
                        dropout=0.0 if args.no_dropout else 0.5, mode=args.mode, device=args.device, seed=args.seed)
    if inputs:
        images, names, targets = read_inputs(inputs[0], args.aligned, args.direction or "AtoB")
        if args.n is not None:
            images, names = images[:args.n], names[:args.n]
            targets = targets[:args.n] if targets is not None else None
    else:
        if not args.split:
            raise GanforgeError("Give an input image file or folder, or --split test to translate held-out pairs.")
        cfg = {}
        if source is not None:
            from .api import load

            cfg = load(source, args.ckpt).config.to_dict()
        data = args.data or cfg.get("data")
        if data is None:
            raise GanforgeError("--split needs --data NAME|DIR with --from-reference.")
        size = t.source.get("model_options", {}).get("image_size") if source is not None else None
        images, names, targets = paired_split(
            data, args.split, cfg.get("data_root") if not args.data else None,
            args.direction or cfg.get("direction", "AtoB"),
            args.derive if args.derive is not None else (cfg.get("derive") if not args.data else None),
            args.size or size or 256, args.n)
    record = translate_images(t, images, names, args.out, targets, size=args.size if inputs else None,
                              fid=not args.no_fid)
    print(f"Translated {record['n']} images into {args.out}/")
    if "scores" in record:
        print(json.dumps(record["scores"]))
    return 0


def _cmd_latent(args: argparse.Namespace) -> int:
    from . import cli_latent

    return cli_latent.run(args)


def cmd_toy(args: argparse.Namespace) -> int:
    from .tasks.toy import compare_toy, toy_config, train_toy

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
        print(_toy_summary(cfg.loss, run))
        print(f"Pictures: {out}/progress.gif, {out}/samples.png, {out}/losses.png, {out}/divergence.png")
    return 0


def _toy_summary(label: str, run: dict) -> str:
    w = f"W1 {run['w1']:.4f}" if "w1" in run else f"sliced W1 {run.get('sw1', float('nan')):.4f}"
    return f"{label}: step {run['step']}, {w}, JS {run.get('js', float('nan')):.4f} -> {run['run_dir']}/"


def cmd_info(args: argparse.Namespace) -> int:
    from .api import info
    from .config import parse_override

    options = dict(parse_override(o) for o in args.options)
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
    args, extra = parser.parse_known_args(argv)
    settings = [e for e in extra if "=" in e and not e.startswith("-")]
    if len(settings) != len(extra) or (settings and args.command not in ("train", "info", "toy")):
        parser.error(f"unrecognized arguments: {' '.join(e for e in extra if e not in settings) or ' '.join(extra)}")
    if args.command == "train":
        args.overrides += settings
    elif args.command == "info":
        args.options += settings
    elif args.command == "toy":
        args.overrides = settings
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "info": cmd_info,
                "toy": cmd_toy, "translate": cmd_translate, "latent": _cmd_latent}[args.command](args)
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted; the last complete checkpoint is kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
