"""Command line: parse arguments, call the Python API, print one sentence for a user's mistake."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .config import PRECISIONS, preset_names
from .threads import add_threads_option, parse_threads, use_threads


def _registry_text() -> str:
    from .data import DATASETS
    from .data.paired import PAIRED_DATASETS
    from .data.unaligned import UNALIGNED_DATASETS
    from .families import model_names, model_spec
    from .losses import LOSSES

    models = "\n".join(f"  {n:10s} {model_spec(n).description}" for n in model_names())
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
    t.add_argument("--max-minutes", type=float, metavar="M",
                   help="a time budget beside the steps: end the run (with a checkpoint) at the first step after M "
                        "minutes of training; --resume continues it with the budget again")
    t.add_argument("--batch-size", type=int,
                   help="images per batch per process (default 64, or the dataset size when smaller)")
    t.add_argument("--precision", choices=PRECISIONS)
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    t.add_argument("--seed", type=int)
    t.add_argument("--config", help=f"preset name ({', '.join(preset_names())}) or YAML file")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR where it stopped")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_option(t)

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
    add_threads_option(s)

    from . import cli_eval, cli_translate

    cli_eval.add_parser(sub)
    cli_translate.add_parser(sub)

    from . import cli_latent

    cli_latent.add_parser(sub)

    from . import cli_export

    cli_export.add_parser(sub)

    from . import cli_studio

    cli_studio.add_parser(sub)

    from . import cli_style

    cli_style.add_parser(sub)

    from . import cli_toy

    cli_toy.add_parser(sub)

    from . import cli_doctor

    cli_doctor.add_parser(sub)

    _add_family_commands(sub)

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


def _add_family_commands(sub) -> None:
    """The verbs that model families add (each family's ``commands``), after the built-in ones; each parser
    remembers the function that runs it."""
    from .families import FAMILIES

    taken = set(sub.choices) | {"info"}
    for name in FAMILIES:
        for command in FAMILIES.get(name).commands:
            if command.name in taken:
                raise ValueError(f"family {name!r} adds the command {command.name!r}, which ganforge already has")
            taken.add(command.name)
            c = sub.add_parser(command.name, help=command.help, epilog=command.epilog or None,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            command.add_arguments(c)
            c.set_defaults(family_command=command.run)


def cmd_train(args: argparse.Namespace) -> int:
    from .api import plan_resume, resume, train
    from .config import resolve_config
    from .families import family_of

    if args.model and "=" in args.model:
        args.overrides.insert(0, args.model)
        args.model = None
    if args.resume:
        if args.model or args.data or args.config or args.data_root:
            from .errors import GanforgeError

            raise GanforgeError("--resume continues a run with its saved model, data and preset; leave out the "
                                "model, --data, --data-root and --config (settings that may change can be given).")
        changes = {"steps": args.steps, "epochs": args.epochs, "max_minutes": args.max_minutes,
                   "batch_size": args.batch_size,
                   "precision": args.precision, "device": args.device, "seed": args.seed,
                   "progress": False if args.no_progress else None, "threads": parse_threads(args.threads)}
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
                 "epochs": args.epochs, "max_minutes": args.max_minutes, "batch_size": args.batch_size,
                 "precision": args.precision, "device": args.device, "seed": args.seed,
                 "progress": False if args.no_progress else None, "threads": parse_threads(args.threads)}
        cfg = resolve_config(args.config, flags, args.overrides)
        configure = family_of(cfg.model).configure
        if configure is not None and not args.config:  # the family's own defaults (toy: those of `ganforge toy`)
            cfg = configure(args.data, flags, args.overrides)
        out = args.out or f"runs/{cfg.model}-{Path(cfg.data.name).name}"
        result = train(cfg, out)
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        if result.checkpoint is not None:  # rank 0 (under torchrun the other ranks print nothing)
            print(f"ganforge: interrupted at step {result.step}; checkpoint saved in {result.checkpoint}; "
                  f"continue with: ganforge train --resume {result.run_dir}", file=sys.stderr)
        return 128 + getattr(signal, result.stopped_by)  # 130 for SIGINT, 143 for SIGTERM
    if _rank() == 0 and result.stopped_by == "time":
        print(f"Trained to step {result.step}, where the time budget (max_minutes) ran out; pictures and checkpoints "
              f"are in {result.run_dir}/; continue with: ganforge train --resume {result.run_dir}")
    elif _rank() == 0:  # under torchrun one line, not one per process
        print(f"Trained to step {result.step}; pictures and checkpoints are in {result.run_dir}/")
    return 0


def _rank() -> int:
    import os

    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def cmd_sample(args: argparse.Namespace) -> int:
    with use_threads(args.threads):
        return _sample(args)


def _sample(args: argparse.Namespace) -> int:
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
    from .checkpoint import weights_origin

    what = f" of class {model.class_name(label)}" if label is not None else ""
    print(f"Wrote {args.n} samples{what} from {weights_origin(model.step, model.path)} to {out}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from . import cli_eval

    return cli_eval.run(args)


def _cmd_translate(args: argparse.Namespace) -> int:
    from . import cli_translate

    return cli_translate.run(args)


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


def _cmd_toy(args: argparse.Namespace) -> int:
    from . import cli_toy

    return cli_toy.run(args)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from . import cli_doctor

    return cli_doctor.run(args)


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
        if getattr(args, "family_command", None) is not None:
            return args.family_command(args)
        return {"train": cmd_train, "sample": cmd_sample, "eval": _cmd_eval, "info": cmd_info,
                "toy": _cmd_toy, "translate": _cmd_translate, "latent": _cmd_latent,
                "export": _cmd_export, "studio": _cmd_studio, "stylize": _cmd_stylize,
                "doctor": _cmd_doctor}[args.command](args)
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
    text = str(message).strip().rstrip(".").removeprefix("ganforge: ")  # the library's own prefix, said once
    print(f"ganforge: warning: {text}.", file=file or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
