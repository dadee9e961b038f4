"""``ganforge eval``: FID, KID, IS, precision/recall and density/coverage of a run or of samples, as a short
table for people or (``--json``) the whole result."""

from __future__ import annotations

import argparse
import json
import sys

from .threads import add_threads_option


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``eval`` to a ``subparsers`` object; returns its parser."""
    fmt = argparse.RawDescriptionHelpFormatter
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
    add_threads_option(e)
    return e


def run(args: argparse.Namespace) -> int:
    from .api import evaluate

    if args.n is not None and args.n < 2:
        from .errors import GanforgeError

        raise GanforgeError(f"--n must be at least 2 for any metric, got {args.n}.")
    result = evaluate(args.source, against=args.against, metrics=args.metrics.split(","), extractor=args.extractor,
                      n=args.n, ckpt=args.ckpt, seed=args.seed, weights=args.weights, device=args.device,
                      batch_size=args.batch_size, ema=args.ema, data_root=args.data_root, split=args.split,
                      progress=not args.json, threads=args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        print(eval_table(result))
    if result.get("warning"):
        print(f"ganforge: warning: {result['warning']}.", file=sys.stderr)
    return 0


def eval_table(result: dict) -> str:
    """``ganforge eval``'s result for people: what was measured against what, then one line a number (a family's
    own protocol: its sentence, then its rows as a table)."""
    if "rows" in result:
        return _rows_table(result)
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


def _rows_table(result: dict) -> str:
    """A family's evaluation (``{"protocol": sentence, "rows": [{column: value}, ...]}``) as an aligned table."""
    rows = result["rows"]
    columns = list(dict.fromkeys(k for r in rows for k in r))

    def text(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)

    cells = [[text(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [result.get("protocol", result.get("source", ""))]
    lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
