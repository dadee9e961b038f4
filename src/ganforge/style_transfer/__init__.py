"""``ganforge.stylize``: neural style transfer by optimisation (Gatys et al. 2016), texture synthesis
(Gatys et al. 2015) and fast style transfer with a trained ``fast-style`` model (Johnson et al. 2016).

    import ganforge
    r = ganforge.stylize("photo.jpg", ["starry.jpg"], out="result.png")             # random network, offline
    r = ganforge.stylize("photo.jpg", ["a.jpg", "b.jpg"], style_blend=(0.7, 0.3), network="vgg19")
    r = ganforge.stylize(None, ["texture.png"], out="texture_out.png")               # texture synthesis
    images = ganforge.load("runs/fast").stylize(photos)                               # fast style: one forward pass
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.folders import read_image_file
from ..errors import GanforgeError
from ..threads import applies_threads
from .optimize import INITS, OPTIMIZERS, StyleResult, StyleSettings, stylize_images
from .record import check_outputs, command_line, file_sha256, make_record, output_paths, write_result


def read_rgb(path: str | Path, what: str = "image") -> torch.Tensor:
    """An image file as uint8 [3, H, W] (gray repeated), or one sentence naming the file."""
    image = read_image_file(path, what)
    return torch.from_numpy(np.ascontiguousarray(image)).expand(3, -1, -1).contiguous()


def _image(source, what: str) -> tuple[torch.Tensor, str | None]:
    if isinstance(source, (str, Path)):
        return read_rgb(source, what), str(source)
    return torch.as_tensor(np.asarray(source)) if not isinstance(source, torch.Tensor) else source, None


@applies_threads
def stylize(content: str | Path | np.ndarray | torch.Tensor | None, styles, out: str | Path | None = None,
            force: bool = False, progress=None, command: str | None = None, **settings: Any) -> StyleResult:
    """Stylise ``content`` (a file or a uint8 image; None for texture synthesis) with one or more ``styles``
    (files or uint8 images). ``settings`` are the fields of :class:`StyleSettings` (network, size,
    content_weight, style_weight, style_blend, tv_weight, optimizer, iterations, init, preserve_color,
    seed ...). With ``out`` (OUT.png) it writes OUT.png, OUT.gif, OUT_losses.png and OUT.json, refusing to
    replace existing files unless ``force``. Returns the result (``result.image``: uint8 [3, H, W])."""
    if isinstance(styles, (str, Path, np.ndarray, torch.Tensor)):
        styles = [styles]
    known = {f.name for f in dataclasses.fields(StyleSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise GanforgeError(f"Unknown stylize setting {unknown[0]!r}; the settings are: {', '.join(sorted(known))}.")
    s = StyleSettings(**settings)
    paths = output_paths(out) if out is not None else None
    if paths is not None:
        check_outputs(paths, force)
    c, c_path = _image(content, "content image") if content is not None else (None, None)
    loaded = [_image(st, "style image") for st in styles]
    s.resolved(c is not None, len(loaded))  # every setting checked before the work starts
    result = stylize_images(c, [im for im, _ in loaded], s, progress=progress)
    inputs = {"content": c_path, "styles": [p for _, p in loaded],
              "sha256": {p: file_sha256(p) for p in [c_path] + [p for _, p in loaded] if p}}
    result.record = make_record(result, inputs)
    if command or (all(p for _, p in loaded) and (content is None or c_path)):  # files: the command remakes it
        result.record["command"] = command or command_line(c_path, [p for _, p in loaded], result.settings,
                                                           out if out is not None else "OUT.png")
    if paths is not None:
        write_result(result, paths, result.record)
    return result


__all__ = ["INITS", "OPTIMIZERS", "StyleResult", "StyleSettings", "read_rgb", "stylize", "stylize_images"]
