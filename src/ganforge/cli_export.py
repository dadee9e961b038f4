"""``ganforge export``: a trained generator as an ONNX file or a torch.export program (a thin layer over
:mod:`ganforge.export`).

    ganforge export runs/demo --format onnx --out dcgan.onnx           # the EMA generator when there is one
    ganforge export runs/demo --out dcgan.pt2 --no-ema --ckpt 3000     # format from the suffix
    ganforge export runs/e2f --format onnx --out e2f.onnx              # pix2pix: eval mode (see below)
    ganforge export --check dcgan.onnx                                 # run the parity check of a file again
"""

from __future__ import annotations

import argparse
import json

from .checkpoint import weights_origin
from .errors import GanforgeError
from .threads import add_threads_option

_EPILOG = """\
What the file computes (float32; N, and H and W of translation networks, are free):
  gan, dcgan, cgan  z [N, nz] (+ y int64 [N], class labels, for cgan) -> images [N, C, S, S] in [-1, 1]
  pix2pix           A [N, C, H, W] in [-1, 1], H and W multiples of 2^downs (256 for unet_256) -> B, same size
  cyclegan          A -> B with G_A (--direction AtoB, the default) or B -> A with G_B (BtoA), same size
  toy               z [N, nz] -> points [N, dim]
The input names, shapes, value ranges, latent size, class names, source checkpoint and step, EMA choice
and inference mode are in the file's metadata (ONNX metadata_props; ganforge.json inside a .pt2).

Every export is run (onnxruntime, or torch.export.load for .pt2) on fixed inputs at batch 1 and 5 (and
a second size for translation networks) and compared with PyTorch: beyond a max abs difference of
1e-4 the file is removed and the command fails; otherwise it prints the difference. An existing --out
is replaced only with --force.

pix2pix is exported in eval mode: batch norm uses its running statistics and dropout is off. The
reference inference mode (dropout on, each image normalised with its own batch statistics, as the
reference test.py without --eval) cannot be reproduced by an eval-mode file; the file's outputs match
`ganforge translate --mode eval`. The command says so once.

ONNX needs the extra: pip install 'ganforge[export]' (onnx, onnxscript, onnxruntime)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export`` to a ``subparsers`` object; returns its parser."""
    examples = __doc__.split("\n\n")[1].rstrip()
    p = subparsers.add_parser("export", help="export a generator to ONNX or torch.export (.pt2), checked against "
                                             "PyTorch", formatter_class=argparse.RawDescriptionHelpFormatter,
                              description="Export the generator of a run or checkpoint as one file that runs "
                                          "without ganforge: ONNX (onnxruntime) or a torch.export program (.pt2).",
                              epilog=f"examples:\n{examples}\n\n{_EPILOG}")
    p.add_argument("source", nargs="?", metavar="RUN_DIR|CHECKPOINT",
                   help="the run folder or checkpoint folder (with --check: the one to compare against, "
                        "default the checkpoint the file records)")
    p.add_argument("--format", dest="fmt", choices=("onnx", "pt2"), help="default: from the suffix of --out")
    p.add_argument("--out", metavar="FILE", help="the file to write (.onnx or .pt2)")
    p.add_argument("--ckpt", default=None, metavar="latest|best|STEP",
                   help="the checkpoint of a run folder (default latest; with --check: the recorded step)")
    p.add_argument("--ema", dest="ema", action="store_true", default=None,
                   help="export the EMA weights (default when the checkpoint has them)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="export the raw generator weights")
    p.add_argument("--direction", help="models with two generators: which one (cyclegan: AtoB = G_A, the default, "
                                       "or BtoA = G_B)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--check", metavar="FILE", help="instead of exporting: run the parity check of an exported file "
                                                    "again and print the difference")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_threads_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Export (or check) as ``args`` say; print the measured difference. Raises GanforgeError."""
    from . import export as exporting

    if args.check:
        if args.out or args.fmt or args.force or args.ema is not None or args.direction:
            raise GanforgeError("--check takes the exported file and optionally the run or checkpoint to compare "
                                "against (with --ckpt); leave out --out, --format, --force, --ema and --direction.")
        result = exporting.check(args.check, args.source, args.ckpt, threads=args.threads)
        if args.json:
            print(json.dumps(result))
            return 0
        print(f"{result['path']} ({result['format']}, {result['model']} {weights_origin(result['step'], args.source)}, "
              f"{'EMA' if result['ema'] else 'raw'} weights) matches PyTorch: max abs difference "
              f"{result['max_abs_diff']:.2e} (tolerance {result['tolerance']:.0e}).")
        return 0
    if not args.source:
        raise GanforgeError("Give the run folder or checkpoint to export (or --check FILE to check an exported file).")
    if not args.out:
        raise GanforgeError("Give the file to write with --out FILE.onnx or --out FILE.pt2.")
    result = exporting.export(args.source, args.fmt, args.out, ema=args.ema, ckpt=args.ckpt or "latest",
                              direction=args.direction, force=args.force, threads=args.threads)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "metadata"}))
        return 0
    for note in result["notes"]:
        print(note)
    size = result["bytes"] / 2**20
    origin = weights_origin(result["step"], args.source)
    print(f"Wrote {result['path']} ({result['format']}, {size:.1f} MiB, {result['model']} {origin}, "
          f"{'EMA' if result['ema'] else 'raw'} weights) in {result['seconds']:.1f} s; it matches PyTorch: max abs "
          f"difference {result['max_abs_diff']:.2e} (tolerance {result['tolerance']:.0e}).")
    return 0
