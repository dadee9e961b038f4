"""Pictures in Jupyter: ``ganforge.show(x)`` makes anything ganforge draws display inline.

    import ganforge
    ganforge.show("runs/demo/samples.png")                 # a file: PNG / JPEG ... or an animated GIF
    ganforge.show(model.sample(16, seed=0))                # uint8 [N, H, W, C]: a grid
    ganforge.show(figure)                                  # a latent tool's LatentFigure (its GIF when it has one)
    ganforge.show("a/progress.gif", "b/progress.gif", captions=["a", "b"])   # side by side

Stills come back as :class:`Picture` (``_repr_png_``), animations as :class:`Animation` and rows of several
as :class:`Row` (``_repr_html_``, the images embedded as base64), so the notebook front end draws them
without IPython being imported here. Outside a notebook they print one line and can be ``save``-d.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import GanforgeError
from . import grid_image

MIN_SIDE = 160  # a single image smaller than this (28x28 Fashion-MNIST) is enlarged, nearest neighbour


class Picture:
    """A still image as PNG bytes; Jupyter shows it through ``_repr_png_``."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self.png = buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png

    def html(self, caption: str | None = None) -> str:
        return _figure("image/png", self.png, self.image.width, caption)

    def save(self, path: str | Path) -> Path:
        Path(path).write_bytes(self.png)
        return Path(path)

    def __repr__(self) -> str:
        return f"<ganforge picture {self.image.width}x{self.image.height}>"


class Animation:
    """A GIF's bytes; Jupyter shows it (animated) through ``_repr_html_``."""

    def __init__(self, gif: bytes) -> None:
        self.gif = gif
        with Image.open(io.BytesIO(gif)) as im:
            self.width, self.height, self.frames = im.width, im.height, getattr(im, "n_frames", 1)

    def _repr_html_(self) -> str:
        return self.html()

    def html(self, caption: str | None = None) -> str:
        return _figure("image/gif", self.gif, self.width, caption)

    def save(self, path: str | Path) -> Path:
        Path(path).write_bytes(self.gif)
        return Path(path)

    def __repr__(self) -> str:
        return f"<ganforge animation {self.width}x{self.height}, {self.frames} frames>"


class Row:
    """Several pictures or animations side by side, each with an optional caption."""

    def __init__(self, items: list[Picture | Animation], captions: list[str | None]) -> None:
        self.items, self.captions = items, captions

    def _repr_html_(self) -> str:
        cells = "".join(item.html(caption) for item, caption in zip(self.items, self.captions, strict=True))
        return f'<div style="display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start">{cells}</div>'

    def __repr__(self) -> str:
        return f"<ganforge row of {len(self.items)}: {', '.join(repr(i) for i in self.items)}>"


def _figure(mime: str, data: bytes, width: int, caption: str | None) -> str:
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<figure style="margin:0"><img src="data:{mime};base64,{encoded}" width="{width}"/>{text}</figure>'


def _enlarged(image: Image.Image) -> Image.Image:
    scale = -(-MIN_SIDE // max(1, min(image.width, image.height)))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    """uint8 [H, W], [H, W, C] (C = 1, 3, 4), [N, H, W, C] (a grid) or torch-style [C, H, W] / [N, C, H, W]."""
    if array.dtype != np.uint8:
        raise GanforgeError(f"show() takes uint8 images (values 0..255), got an array of {array.dtype}; convert "
                            "float images in [-1, 1] with ((x + 1) * 127.5).round().clip(0, 255).astype('uint8').")
    if array.ndim == 4:
        batch = torch.from_numpy(np.ascontiguousarray(array))
        if array.shape[-1] in (1, 3, 4) and array.shape[1] not in (1, 3, 4):
            batch = batch.permute(0, 3, 1, 2)  # [N, H, W, C] -> [N, C, H, W]
        return grid_image(batch.contiguous(), min_width=320)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # [C, H, W] -> [H, W, C]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise GanforgeError(f"show() cannot draw an array of shape {tuple(array.shape)}; give [H, W], [H, W, C] or "
                            "[N, H, W, C] with C = 1, 3 or 4.")
    return _enlarged(Image.fromarray(np.ascontiguousarray(array)))


def _one(source: Any) -> Picture | Animation:
    if isinstance(source, Picture | Animation):
        return source
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        if not path.is_file():
            raise GanforgeError(f"show() found no picture at {str(path)!r}.")
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as im:
                animated = getattr(im, "n_frames", 1) > 1
                still = None if animated else _enlarged(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
        except OSError:
            raise GanforgeError(f"show() cannot read {str(path)!r} as an image.") from None
        return Animation(data) if animated else Picture(still)
    if isinstance(source, Image.Image):
        return Picture(_enlarged(source))
    if isinstance(source, torch.Tensor):
        return Picture(_from_array(source.detach().cpu().numpy()))
    if isinstance(source, np.ndarray):
        return Picture(_from_array(source))
    files = getattr(source, "files", None)  # a latent tool's LatentFigure: its GIF when written, else its picture
    if isinstance(files, dict) and files.get("gif") and Path(files["gif"]).is_file():
        return Animation(Path(files["gif"]).read_bytes())
    picture = getattr(source, "picture", None)
    if isinstance(picture, Image.Image):
        return Picture(picture)
    raise GanforgeError(f"show() cannot draw a {type(source).__name__}; give a file path, a PIL image, a uint8 "
                        "array or tensor, or a latent tool's figure.")


def show(*sources: Any, captions: list[str] | None = None) -> Picture | Animation | Row:
    """One inline figure of ``sources``: image or GIF files, PIL images, uint8 arrays / tensors (a batch becomes a
    grid) or latent figures. One source gives a :class:`Picture` or an :class:`Animation`; several (or any
    ``captions``) a :class:`Row` side by side."""
    if not sources:
        raise GanforgeError("show() needs at least one picture.")
    if captions is not None and len(captions) != len(sources):
        raise GanforgeError(f"show() got {len(sources)} pictures but {len(captions)} captions; give one per picture.")
    items = [_one(s) for s in sources]
    if len(items) == 1 and captions is None:
        return items[0]
    return Row(items, list(captions) if captions is not None else [None] * len(items))


__all__ = ["Animation", "Picture", "Row", "show"]
