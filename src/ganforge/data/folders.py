"""A folder of image files as a dataset.

Two layouts are understood:

* flat: image files directly in the folder -> unlabelled data;
* one subfolder per class: ``root/<class>/**/<image>`` -> labels ``0..K-1`` in sorted folder-name order.

Every image is decoded with Pillow, brought to grayscale or RGB, resized so that its shorter side is
``image_size`` and center-cropped to a square, then all are stacked into one uint8 tensor.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import GanforgeError
from ..io import warn_skipped
from . import ImageData

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_MAX_NAMED = 5


def load_image_folder(root: Path, image_size: int = 64, channels: int | None = None) -> ImageData:
    """Load every image file under ``root`` into memory as uint8 ``[N, C, image_size, image_size]``.

    Layout: when ``root`` has subfolders that contain images, each such subfolder is a class (searched
    recursively); classes are numbered in sorted name order and ``class_names`` holds the folder names.
    Image files lying directly in ``root`` next to class folders are an error. Without class folders the
    images directly in ``root`` are loaded unlabelled (``labels=None``). Files and folders whose names
    start with ``.`` are skipped; the order of images is sorted and deterministic.

    Files: ``.png .jpg .jpeg .bmp .gif .tif .tiff .webp .ppm .pgm`` (any case); only the first frame of
    animated files is used. EXIF orientation is applied. 16-bit (and 32-bit integer) grayscale is scaled
    from the 0..65535 range to 0..255; float images are scaled from 0..1 when all values lie there,
    otherwise clipped to 0..255. Transparent pixels are composited onto a WHITE background. Palette, CMYK
    and other colour modes become RGB.

    Channels: ``channels=None`` gives 1 channel when every image is grayscale and 3 otherwise (gray images
    then repeat their band); ``1`` converts colour to luma (ITU-R 601), ``3`` makes every image RGB.

    Size: resize the shorter side to ``image_size`` (bicubic, antialiased), then center crop the longer
    side to ``image_size``.

    Files that cannot be decoded are skipped, with one ``UserWarning`` naming how many and a few of them.

    Raises:
        GanforgeError: ``root`` is not a folder, it mixes loose images with class folders, or it holds
            no readable image.
    """
    root = Path(root)
    if image_size < 1:
        raise GanforgeError(f"image_size must be a positive number of pixels, not {image_size}.")
    if channels not in (None, 1, 3):
        raise GanforgeError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}.")
    if not root.exists():
        raise GanforgeError(f"The image folder '{root}' does not exist.")
    if not root.is_dir():
        raise GanforgeError(f"'{root}' is not a folder; give a folder of image files.")

    files, labels, class_names = _find_images(root)

    arrays: list[np.ndarray] = []
    kept_labels: list[int] = []
    skipped: list[Path] = []
    all_gray = True
    for i, path in enumerate(files):
        try:
            im = _decode(path, image_size)
        except Exception:  # Pillow's decoders raise many exception types on corrupt or odd files
            skipped.append(path)
            continue
        if channels == 1 and im.mode != "L":
            im = im.convert("L")
        all_gray = all_gray and im.mode == "L"
        arrays.append(resize_square(_planes(im), image_size))
        if labels is not None:
            kept_labels.append(labels[i])

    looked_for = ", ".join(IMAGE_EXTENSIONS)
    if not arrays:
        detail = ""
        if skipped:
            detail = f"; could not decode {_count(len(skipped), 'image file')}: {_some_names(skipped, root)}"
        raise GanforgeError(f"No readable images found in '{root}' (looked for {looked_for}{detail}).")
    warn_skipped([p.relative_to(root).as_posix() for p in skipped], root)

    out_channels = channels if channels is not None else (1 if all_gray else 3)
    stacked = np.empty((len(arrays), out_channels, image_size, image_size), dtype=np.uint8)
    for j, a in enumerate(arrays):
        stacked[j] = a  # a gray image repeats into RGB
    return ImageData(
        images=torch.from_numpy(stacked),
        labels=torch.tensor(kept_labels, dtype=torch.int64) if labels is not None else None,
        class_names=class_names,
        name=str(root),
    )


def _is_image_file(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder`` (hidden files and folders skipped), in sorted order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames if _is_image_file(f))
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _find_images(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """(files, label of each file or None, class names) for either layout."""
    entries = sorted(root.iterdir(), key=lambda p: p.name)
    loose = [p for p in entries if _is_image_file(p.name) and p.is_file()]
    classes = []
    for d in entries:
        if not d.name.startswith(".") and d.is_dir():
            images = _images_under(d)
            if images:
                classes.append((d.name, images))
    if not classes:
        return loose, None, []
    if loose:
        names = ", ".join(name for name, _ in classes[:_MAX_NAMED])
        names += ", ..." if len(classes) > _MAX_NAMED else ""
        raise GanforgeError(
            f"'{root}' has {_count(len(loose), 'loose image file')} next to class folders ({names}); move "
            f"them into a class folder, or remove the subfolders to load the folder unlabelled."
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, (_, images) in enumerate(classes):
        files.extend(images)
        labels.extend([label] * len(images))
    return files, labels, [name for name, _ in classes]


def _count(n: int, noun: str) -> str:
    """'1 image file', '2 image files'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _some_names(paths: list[Path], root: Path) -> str:
    """'a.png, b/c.jpg' relative to ``root``: the first few, then '...'."""
    names = ", ".join(p.relative_to(root).as_posix() for p in paths[:_MAX_NAMED])
    return names + (", ..." if len(paths) > _MAX_NAMED else "")


def _decode(path: Path, image_size: int) -> Image.Image:
    """Open one file and return it upright, in mode "L" (grayscale) or "RGB"."""
    with Image.open(path) as im:
        # Let JPEG decode at a reduced scale when the file is much larger than needed (no-op otherwise).
        im.draft(None, (2 * image_size, 2 * image_size))
        im.load()
        im = ImageOps.exif_transpose(im)
    return _to_l_or_rgb(im)


def _to_l_or_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("1", "L"):
        return im.convert("L")
    if mode == "I" or mode.startswith("I;16"):
        values = np.asarray(im).astype(np.float64)
        return _gray_from_float(np.clip(values, 0, 65535) * (255 / 65535))
    if mode == "F":
        values = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.min() >= 0 and values.max() <= 1:
            values = values * 255
        return _gray_from_float(np.clip(values, 0, 255))
    if "transparency" in im.info and mode in ("L", "RGB", "P"):
        # A transparent colour or palette entry becomes a real alpha channel.
        im = im.convert("LA" if mode == "L" else "RGBA")
        mode = im.mode
    if mode in ("LA", "La"):
        return _gray_from_float(_on_white(np.asarray(im.convert("LA"))))
    if mode in ("RGBA", "RGBa", "PA"):
        return Image.fromarray(_to_uint8(_on_white(np.asarray(im.convert("RGBA")))))
    return im.convert("RGB")


def _on_white(pixels: np.ndarray) -> np.ndarray:
    """Composite [H, W, bands + alpha] uint8 onto white; returns float [H, W] or [H, W, bands]."""
    alpha = pixels[..., -1:].astype(np.float64) / 255
    color = pixels[..., :-1].astype(np.float64)
    out = color * alpha + 255 * (1 - alpha)
    return out[..., 0] if out.shape[-1] == 1 else out


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.rint(values).clip(0, 255).astype(np.uint8)


def _gray_from_float(values: np.ndarray) -> Image.Image:
    return Image.fromarray(_to_uint8(values))


def _planes(im: Image.Image) -> np.ndarray:
    """A mode "L" or "RGB" image as uint8 [C, H, W] (C = 1 or 3)."""
    arr = np.asarray(im)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def resize_square(image: np.ndarray, size: int, crop: bool = True) -> np.ndarray:
    """uint8 [C, h, w] (C = 1 or 3) -> uint8 [C, size, size] by one PIL bicubic resample (antialiased).

    ``crop=True`` (the folder loaders): the shorter side becomes ``size`` and the longer one is cropped
    to its centre. ``crop=False`` (pix2pix halves, as the reference loads them): the whole image is
    stretched to ``size x size``. An image already ``size x size`` is returned as it is.
    """
    c, h, w = image.shape
    if (h, w) == (size, size):
        return image
    box = None
    if crop:
        side = min(w, h)
        # Resampling only the centred square equals resizing the whole image and cropping its centre
        # (the filter still reads the pixels just outside the box), without rounding the longer side.
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    planes = np.ascontiguousarray(image[0] if c == 1 else image.transpose(1, 2, 0))
    out = np.asarray(Image.fromarray(planes).resize((size, size), Image.Resampling.BICUBIC, box=box))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """(image files under ``root`` in sorted order, their labels or None, class names), either layout."""
    root = Path(root)
    if not root.is_dir():
        raise GanforgeError(f"Image folder '{root}' does not exist or is not a folder.")
    return _find_images(root)


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` in sorted order (either layout); a GanforgeError when there are none."""
    files, _, _ = list_images(folder)
    if not files:
        raise GanforgeError(f"No image files found in '{folder}' (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return files


def read_image_file(path: str | Path, what: str = "image") -> np.ndarray:
    """:func:`read_image` of one file the user named, or one sentence saying why it cannot be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanforgeError(f"The {what} {str(path)!r} does not exist or is not a file.")
    image = read_image(path)
    if image is None:
        raise GanforgeError(f"The {what} {str(path)!r} cannot be read as an image (PNG, JPEG, ...).")
    return image


def read_image(path: Path) -> np.ndarray | None:
    """One image file at its own size as uint8 [C, H, W] (C = 1 or 3, the folder loader's conversions),
    or None when it cannot be decoded."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
        planes = _planes(_to_l_or_rgb(im))
    except Exception:  # Pillow raises many types on corrupt data
        return None
    return planes
