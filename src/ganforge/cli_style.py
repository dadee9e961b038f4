"""``ganforge stylize``: neural style transfer (a thin layer over :func:`ganforge.stylize` and the
fast-style pipeline).

    ganforge stylize photo.jpg starry.jpg --out result.png                       # Gatys et al., offline random network
    ganforge stylize photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 --network vgg19 --out result.png
    ganforge stylize --content none texture.png --out texture_out.png --size 128  # texture synthesis
    ganforge stylize --model runs/fast photo.jpg --out photo_styled.png          # fast style: one forward pass
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import GanforgeError
from .threads import add_threads_option, use_threads

_EPILOG = """\
Optimisation (Gatys et al. 2016) writes OUT.png, OUT.gif (the optimisation), OUT_losses.png (content, style
per layer and TV against the iteration) and OUT.json (every setting and the inputs' SHA-256: the picture can be
made again). Defaults: the PyTorch tutorial's L-BFGS with 300 iterations, style weight 1e6, content weight 1,
starting from the content image; --optimizer adam takes the TensorFlow tutorial's Adam (lr 0.02, beta1 0.99,
eps 0.1) with 1000 iterations and a TV term.
Networks: random (default, no download: random multi-scale filters, Ustyuzhaninov et al. 2017), vgg19
(content relu4_2, style relu1_1 .. relu5_1 with weights 1/5, Gatys et al.) and vgg16, with torchvision's
ImageNet weights from the torch hub cache (checkpoints/vgg19-dcbb9e9d.pth, vgg16-397923af.pth), --weights
FILE, or a download with the checksum checked (not with GANFORGE_OFFLINE=1).
Fast style (--model RUN, a run of `ganforge train fast-style --data PHOTOS task.style=STYLE.jpg`): one
forward pass per photo; one photo -> --out FILE.png, several -> --out FOLDER (OUT/<name>.png).
Existing files are never replaced unless --force."""


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise GanforgeError(f"{flag} takes comma-separated numbers (e.g. 0.7,0.3), got {text!r}.") from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(t.strip() for t in text.split(",") if t.strip())


def _ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    values = _floats(text, flag)
    if values is not None and any(v != int(v) or v < 1 for v in values):
        raise GanforgeError(f"{flag} takes comma-separated positive integers (e.g. 3,5,7,11), got {text!r}.")
    return None if values is None else tuple(int(v) for v in values)


def add_parser(subparsers) -> argparse.ArgumentParser:
    examples = __doc__.split("\n\n")[1].rstrip()
    p = subparsers.add_parser("stylize", help="neural style transfer: optimise a picture (Gatys) or run a fast-style "
                                              "model", formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=f"examples:\n{examples}\n\n{_EPILOG}")
    p.add_argument("paths", nargs="+", metavar="IMAGE",
                   help="the content image, then one or more style images (with --content none: style images only; "
                        "with --model: the photos to stylise)")
    p.add_argument("--out", required=True, help="OUT.png (or a folder for several photos with --model)")
    p.add_argument("--content", metavar="none", help="none: texture synthesis from the style image(s) alone")
    p.add_argument("--model", metavar="RUN_DIR|CHECKPOINT", help="a trained fast-style run: one forward pass per photo")
    p.add_argument("--ckpt", default="latest", help="with --model: latest | best | STEP")
    p.add_argument("--network", default="random", help="random (default, offline) | vgg19 | vgg16")
    p.add_argument("--weights", help="VGG weights file (torchvision's .pth layout)")
    p.add_argument("--pool", default="max", help="VGG pooling: max (default) | avg (Gatys et al.)")
    p.add_argument("--size", type=int, help="longest side of the output (default 256; --model: the photo's own)")
    p.add_argument("--content-weight", type=float, help="alpha (default 1)")
    p.add_argument("--style-weight", type=float, help="beta (default 1e6)")
    p.add_argument("--style-blend", metavar="W1,W2,...", help="one weight per style image (default equal)")
    p.add_argument("--content-layers", metavar="L1,...", help="content layer(s) (default: the network's)")
    p.add_argument("--style-layers", metavar="L1,...", help="style layers (default: the network's)")
    p.add_argument("--style-layer-weights", metavar="W1,...", help="one weight per style layer (default 1/layers)")
    p.add_argument("--tv-weight", type=float, help="total variation weight (default 0 for lbfgs)")
    p.add_argument("--optimizer", default="lbfgs", help="lbfgs (default) | adam")
    p.add_argument("--iterations", type=int, help="loss evaluations (default 300 lbfgs, 1000 adam)")
    p.add_argument("--lr", type=float, help="learning rate (default 1 lbfgs, 0.02 adam)")
    p.add_argument("--adam-eps", type=float, default=0.1, help="Adam's epsilon (default 0.1, the TF tutorial's)")
    p.add_argument("--init", help="start from: content (default) | noise | style")
    p.add_argument("--preserve-color", action="store_true", help="luminance-only transfer (Gatys et al. 2017)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise start")
    p.add_argument("--network-seed", type=int, default=0, help="seed of the random network's filters")
    p.add_argument("--random-sizes", metavar="K1,K2,...", help="filter sizes of the random network (default 3,5,7,11)")
    p.add_argument("--random-filters", type=int, help="filters per size of the random network (default 32)")
    p.add_argument("--frames", type=int, default=30, help="pictures of the optimisation in the GIF (default 30)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    add_threads_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    if args.model:
        with use_threads(args.threads):
            return _run_fast(args)
    from .style_transfer import stylize

    paths = list(args.paths)
    if args.content is not None and args.content.lower() != "none":
        raise GanforgeError(f"--content takes only none (texture synthesis), got {args.content!r}; give the content "
                            "image as the first path.")
    texture = args.content is not None
    if not texture and len(paths) < 2:
        raise GanforgeError("Give a content image and at least one style image (or --content none and style images "
                            "for texture synthesis).")
    content, styles = (None, paths) if texture else (paths[0], paths[1:])
    settings = dict(
        network=args.network, weights=args.weights, pool=args.pool, network_seed=args.network_seed,
        random_sizes=_ints(args.random_sizes, "--random-sizes"), random_filters=args.random_filters,
        size=args.size if args.size is not None else 256, content_layers=_names(args.content_layers),
        style_layers=_names(args.style_layers),
        style_layer_weights=_floats(args.style_layer_weights, "--style-layer-weights"),
        content_weight=args.content_weight, style_weight=args.style_weight,
        style_blend=_floats(args.style_blend, "--style-blend"), tv_weight=args.tv_weight, optimizer=args.optimizer,
        iterations=args.iterations, lr=args.lr, adam_eps=args.adam_eps, init=args.init,
        preserve_color=args.preserve_color, seed=args.seed,
        frames=args.frames, device=args.device)
    last = [0.0]

    def progress(it: int, total: int, row: dict) -> None:
        now = time.perf_counter()
        if it == total or now - last[0] > 10:
            last[0] = now
            print(f"ganforge: iteration {it}/{total}, loss {row['total']:.4g}", file=sys.stderr)

    result = stylize(content, styles, out=args.out, force=args.force, progress=progress, threads=args.threads,
                     **settings)
    h = result.history
    out = Path(args.out)
    print(f"Wrote {out} ({result.image.shape[2]}x{result.image.shape[1]}), {out.with_suffix('.gif')}, "
          f"{out.with_name(out.stem + '_losses.png')} and {out.with_suffix('.json')}: {len(h)} iterations in "
          f"{result.seconds:.1f} s, loss {h[0]['total']:.4g} -> {result.final['total']:.4g}")
    return 0


def _run_fast(args: argparse.Namespace) -> int:
    from .api import load
    from .families import family_of
    from .io import write_json
    from .style_transfer import read_rgb
    from .style_transfer.record import check_outputs, output_paths, save_image

    if args.content is not None:
        raise GanforgeError("--content none is texture synthesis by optimisation; it does not go with --model.")
    if args.size is not None and args.size < 1:
        raise GanforgeError(f"--size must be a positive integer, got {args.size}.")
    out = Path(args.out)
    if len(args.paths) == 1:
        targets = [output_paths(out, fast=True)]
    else:
        if out.suffix:
            raise GanforgeError(f"Several photos need --out to be a folder, got the file name {args.out!r}.")
        names = [Path(p).stem for p in args.paths]
        if len(set(names)) != len(names):
            raise GanforgeError("Two photos have the same file name; stylise them in separate runs.")
        targets = [output_paths(out / f"{n}.png", fast=True) for n in names]
    for t in targets:
        check_outputs(t, args.force)
    images = [read_rgb(p, "photo") for p in args.paths]
    model = load(args.model, args.ckpt, args.device)
    if not family_of(model).can("stylize"):
        raise GanforgeError(f"{args.model!r} holds a {model.name} model, not a fast-style one; train one with "
                            "ganforge train fast-style --data PHOTOS task.style=STYLE.jpg.")
    t0 = time.perf_counter()
    outputs = model.stylize(images, size=args.size)
    seconds = time.perf_counter() - t0
    for path, t, im in zip(args.paths, targets, outputs, strict=True):
        t["image"].parent.mkdir(parents=True, exist_ok=True)
        save_image(im, t["image"])
        write_json(t["json"], {"method": "fast-style", "model": str(model.path), "step": model.step,
                               "input": str(path), "size": args.size, "output_size": list(im.shape[-2:]),
                               "task_options": (model.meta or {}).get("task_options"),
                               "seconds_all_photos": round(seconds, 4),
                               "images_per_s": round(len(images) / max(seconds, 1e-9), 3)})
    where = targets[0]["image"] if len(targets) == 1 else f"{out}/"
    print(f"Stylised {len(images)} photo(s) into {where} in {seconds:.2f} s "
          f"({len(images) / max(seconds, 1e-9):.2f} images/s)")
    return 0
