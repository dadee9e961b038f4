"""``ganforge translate``: a pix2pix or CycleGAN run (or reference generator files) on a file, a folder or a
held-out split (a thin layer over :func:`ganforge.translate`)."""

from __future__ import annotations

import argparse
import json

from .threads import add_threads_option


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``translate`` to a ``subparsers`` object; returns its parser."""
    fmt = argparse.RawDescriptionHelpFormatter
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
    add_threads_option(r)
    return r


def run(args: argparse.Namespace) -> int:
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
                       from_reference=args.from_reference, from_reference_B=args.from_reference_B,
                       netG=args.netG, norm=args.norm, input_nc=args.input_nc, output_nc=args.output_nc,
                       ngf=args.ngf, dropout=0.0 if args.no_dropout else 0.5, progress=True, threads=args.threads)
    if record.get("available") is not None:
        rest = ("; --n N or --n all for more" if record["n"] < record["available"] else "")
        print(f"Translated {record['n']} of the {record['available']:,} {args.split} pairs into {args.out}/{rest}")
    else:
        print(f"Translated {record['n']} image{'s' if record['n'] != 1 else ''} into {args.out}/")
    if "scores" in record:
        print(json.dumps(record["scores"]))
    if "cycle" in record:  # CycleGAN: the reconstructions against the inputs
        print(json.dumps({"cycle": record["cycle"]}))
    return 0
