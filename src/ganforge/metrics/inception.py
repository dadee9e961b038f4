"""``inception``: the TF-ported Inception-v3 that FID, KID and IS are standardly computed with.

:class:`FIDInceptionV3` is the 2015-12-05 TensorFlow Inception graph (the one the original FID and IS
code froze), written as a PyTorch module whose parameter names and shapes are those of the weights
file torch-fidelity uses, ``weights-inception-2015-12-05-6726825d.pth`` (566 state_dict entries,
23.85 M parameters). pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` uses the same names (its
model is torchvision's ``Inception3`` with ``num_classes=1008, aux_logits=False``, whose keys are these),
and the SHA-256 prefix in both names is the same, so either file loads as is. Keys are still normalised
on loading (a ``module.`` prefix from DataParallel is dropped; missing BatchNorm ``num_batches_tracked``
counters are allowed), which also covers re-saved copies, including ``.safetensors`` ones.

How an image becomes numbers (identical to torch-fidelity's ``inception-v3-compat`` extractor):

1. uint8 [N, C, H, W] -> float32 in [0, 255]; one channel is repeated to three (RGB otherwise);
2. resize to 299x299 by TensorFlow 1.x ``resize_bilinear`` with ``align_corners=False`` (recorded as
   ``"tf1-bilinear-299"``): output pixel i samples input coordinate ``i * in / out`` (no half-pixel
   offset, unlike PyTorch's ``align_corners=False``), interpolating between ``floor`` and the next pixel
   (clamped at the border), first along width, then along height, in float32; no antialiasing;
3. ``(x - 128) / 128``;
4. the network. TF-specific details kept from the graph: BatchNorm eps 1e-3; the average pools inside
   the blocks ignore padding (``count_include_pad=False``); the last block (Mixed_7c) pools with max
   instead of average.

Outputs: ``features`` = the 2048-d global-average ``pool3`` (FID, KID, precision/recall) and ``logits`` =
the 1008-way *unbiased* logits ``pool3 @ fc.weight.T`` (no bias, as in the TF graph's IS code and in
torch-fidelity), whose softmax gives IS. pytorch-fid's own FID pipeline resizes with PyTorch's bilinear
interpolation instead, so its features differ slightly from these for images that are not 299x299.

Weights (about 96 MB) are found, in order: the ``weights`` argument (``--weights PATH``; a file, or a
directory holding one of the two names); ``$GANFORGE_WEIGHTS``; the cache ``$XDG_CACHE_HOME/ganforge/weights``
(default ``~/.cache/ganforge/weights``). When none has them and ``GANFORGE_OFFLINE`` is not 1, they are
downloaded from torch-fidelity's release into the cache (temporary file, SHA-256 prefix checked, then
renamed). Files are read with ``torch.load(weights_only=True)`` or safetensors: never unpickled code.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from ..io import cache_dir, download_checked
from .features import EXTRACTORS, FeatureExtractor

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's name
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's name, the same weights
WEIGHTS_NAMES = (WEIGHTS_FILE, PYTORCH_FID_FILE)
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
# torch.hub's naming convention: the hex suffix of the file name is the start of its SHA-256.
WEIGHTS_SHA256_PREFIX = "6726825d"
INPUT_SIZE = 299
RESIZE = "tf1-bilinear-299"


# ----------------------------------------------------------------------------------------------- network

class ConvBN(nn.Module):
    """Convolution without bias -> BatchNorm (eps 1e-3, as in TF) -> ReLU; submodules ``conv`` and ``bn``."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] | None = None):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding is None:  # TF "SAME" for stride 1 (odd kernels), "VALID" for stride 2
            padding = (kh // 2, kw // 2) if stride == 1 else 0
        self.conv = nn.Conv2d(c_in, c_out, (kh, kw), stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


# A block is a list of branches run on the same input and concatenated along channels. A branch is a
# chain of convolutions (name, c_in, c_out, kernel[, stride]); a pair of such tuples inside a chain is a
# fork: both convolutions see the same input and their outputs are concatenated (the E blocks).
# The pooling branch always comes last: "avg" (3x3, stride 1, padding not counted) or "max" (3x3,
# stride 1) followed by the 1x1 convolution ``branch_pool``; or "max/2" (3x3, stride 2) alone.
def _block_a(c: int, pool_features: int) -> Mixed:
    return Mixed([
        [("branch1x1", c, 64, 1)],
        [("branch5x5_1", c, 48, 1), ("branch5x5_2", 48, 64, 5)],
        [("branch3x3dbl_1", c, 64, 1), ("branch3x3dbl_2", 64, 96, 3), ("branch3x3dbl_3", 96, 96, 3)],
    ], "avg", ("branch_pool", c, pool_features, 1))


def _block_b(c: int) -> Mixed:  # 35x35 -> 17x17
    return Mixed([
        [("branch3x3", c, 384, 3, 2)],
        [("branch3x3dbl_1", c, 64, 1), ("branch3x3dbl_2", 64, 96, 3), ("branch3x3dbl_3", 96, 96, 3, 2)],
    ], "max/2")


def _block_c(c: int, c7: int) -> Mixed:
    return Mixed([
        [("branch1x1", c, 192, 1)],
        [("branch7x7_1", c, c7, 1), ("branch7x7_2", c7, c7, (1, 7)), ("branch7x7_3", c7, 192, (7, 1))],
        [("branch7x7dbl_1", c, c7, 1), ("branch7x7dbl_2", c7, c7, (7, 1)), ("branch7x7dbl_3", c7, c7, (1, 7)),
         ("branch7x7dbl_4", c7, c7, (7, 1)), ("branch7x7dbl_5", c7, 192, (1, 7))],
    ], "avg", ("branch_pool", c, 192, 1))


def _block_d(c: int) -> Mixed:  # 17x17 -> 8x8
    return Mixed([
        [("branch3x3_1", c, 192, 1), ("branch3x3_2", 192, 320, 3, 2)],
        [("branch7x7x3_1", c, 192, 1), ("branch7x7x3_2", 192, 192, (1, 7)), ("branch7x7x3_3", 192, 192, (7, 1)),
         ("branch7x7x3_4", 192, 192, 3, 2)],
    ], "max/2")


def _block_e(c: int, pool: str) -> Mixed:
    return Mixed([
        [("branch1x1", c, 320, 1)],
        [("branch3x3_1", c, 384, 1), (("branch3x3_2a", 384, 384, (1, 3)), ("branch3x3_2b", 384, 384, (3, 1)))],
        [("branch3x3dbl_1", c, 448, 1), ("branch3x3dbl_2", 448, 384, 3),
         (("branch3x3dbl_3a", 384, 384, (1, 3)), ("branch3x3dbl_3b", 384, 384, (3, 1)))],
    ], pool, ("branch_pool", c, 192, 1))


class Mixed(nn.Module):
    """One Inception block (see the comment above ``_block_a`` for how ``branches`` are written)."""

    def __init__(self, branches: list[list[tuple]], pool: str, pool_conv: tuple | None = None):
        super().__init__()
        self.chains: list[list[str | tuple[str, ...]]] = []
        for branch in branches:
            chain: list[str | tuple[str, ...]] = []
            for step in branch:
                specs = step if isinstance(step[0], tuple) else (step,)
                for name, *args in specs:
                    self.add_module(name, ConvBN(*args))
                chain.append(tuple(s[0] for s in specs) if len(specs) > 1 else specs[0][0])
            self.chains.append(chain)
        self.pool = pool
        if pool_conv is not None:
            self.add_module(pool_conv[0], ConvBN(*pool_conv[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for chain in self.chains:
            y = x
            for step in chain:
                if isinstance(step, tuple):
                    y = torch.cat([self._modules[name](y) for name in step], 1)
                else:
                    y = self._modules[step](y)
            outputs.append(y)
        if self.pool == "avg":
            outputs.append(self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)))
        elif self.pool == "max":
            outputs.append(self.branch_pool(F.max_pool2d(x, 3, stride=1, padding=1)))
        else:  # "max/2"
            outputs.append(F.max_pool2d(x, 3, stride=2))
        return torch.cat(outputs, 1)


def resize_tf1_bilinear(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)`` of float [N, C, H, W] to [N, C, size, size].

    Output pixel i reads input coordinate ``p = i * in / out`` (float32), blending pixels ``floor(p)`` and
    ``min(floor(p) + 1, in - 1)`` with weight ``p - floor(p)``; width first, then height.
    """

    def taps(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        pos = torch.arange(size, dtype=torch.float32) * scale
        lo = pos.floor()
        frac = (pos - lo).to(device=x.device, dtype=x.dtype)
        lo = lo.long()
        return lo.to(x.device), (lo + 1).clamp(max=n_in - 1).to(x.device), frac

    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x  # every weight would be 0: the same values
    lo, hi, t = taps(w)
    left, right = x.index_select(3, lo), x.index_select(3, hi)
    x = left + (right - left) * t
    lo, hi, t = taps(h)
    top, bottom = x.index_select(2, lo), x.index_select(2, hi)
    return top + (bottom - top) * t.view(-1, 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3: float images [N, 3, H, W] in [0, 255] -> (pool3 [N, 2048], logits [N, 1008]).

    Resizes to 299x299 (TF1 bilinear) and scales to [-1, 1) itself (see the module docstring). ``logits``
    are unbiased (``pool3 @ fc.weight.T``); ``fc.bias`` is part of the weights but unused.
    Module names match the torch-fidelity / pytorch-fid weights files (``load_state_dict(strict=True)``).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)        # 299 -> 149
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3, padding=0)      # 149 -> 147
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3)                 # 147, then max pool -> 73
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3, padding=0)     # 73 -> 71, then max pool -> 35
        self.Mixed_5b = _block_a(192, 32)                      # -> 256 x 35 x 35
        self.Mixed_5c = _block_a(256, 64)                      # -> 288
        self.Mixed_5d = _block_a(288, 64)                      # -> 288
        self.Mixed_6a = _block_b(288)                          # -> 768 x 17 x 17
        self.Mixed_6b = _block_c(768, 128)
        self.Mixed_6c = _block_c(768, 160)
        self.Mixed_6d = _block_c(768, 160)
        self.Mixed_6e = _block_c(768, 192)                     # -> 768 x 17 x 17
        self.Mixed_7a = _block_d(768)                          # -> 1280 x 8 x 8
        self.Mixed_7b = _block_e(1280, "avg")                  # -> 2048 x 8 x 8
        self.Mixed_7c = _block_e(2048, "max")                  # -> 2048 x 8 x 8 (TF graph: max pool here)
        self.fc = nn.Linear(2048, 1008)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, 299, 299] scaled to [-1, 1) -> [N, 2048]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize_tf1_bilinear(x, INPUT_SIZE)
        features = self.pool3((x - 128) / 128)
        return features, features @ self.fc.weight.T


# ----------------------------------------------------------------------------------------------- weights

def _search_dirs() -> list[Path]:
    env = os.environ.get("GANFORGE_WEIGHTS")
    return ([Path(env).expanduser()] if env else []) + [cache_dir("weights")]


def _in_dir(d: Path) -> Path | None:
    return next((d / n for n in WEIGHTS_NAMES if (d / n).is_file()), None)


def download_weights(dest_dir: Path | None = None) -> Path:
    """Download the weights from ``WEIGHTS_URL`` into ``dest_dir`` (default: the cache) as ``WEIGHTS_FILE``.

    Written to a temporary file in ``dest_dir`` and checked against ``WEIGHTS_SHA256_PREFIX`` before it is
    renamed (:func:`ganforge.io.write_atomic`); a failed or mismatching download leaves nothing behind.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else cache_dir("weights")
    return download_checked(WEIGHTS_URL, dest_dir / WEIGHTS_FILE, WEIGHTS_SHA256_PREFIX, "pass --weights PATH",
                            " (about 96 MB)")


def find_weights(weights: str | os.PathLike | None = None) -> Path:
    """The weights file to use: ``weights`` if given, else the first found in $GANFORGE_WEIGHTS and the cache,
    else a download (unless ``GANFORGE_OFFLINE=1``). Raises GanforgeError saying where to put the file."""
    if weights:
        path = Path(weights).expanduser()
        if path.is_dir():
            found = _in_dir(path)
            if found is None:
                raise GanforgeError(f"The weights directory {str(path)!r} holds neither {WEIGHTS_FILE} nor "
                                    f"{PYTORCH_FID_FILE}; get the file from {WEIGHTS_URL}.")
            return found
        if not path.is_file():
            raise GanforgeError(f"The Inception weights file {str(path)!r} does not exist ({WEIGHTS_FILE} can be "
                                f"downloaded from {WEIGHTS_URL}).")
        return path
    for d in _search_dirs():
        found = _in_dir(d)
        if found is not None:
            return found
    if os.environ.get("GANFORGE_OFFLINE") == "1":
        places = " or ".join(repr(str(d)) for d in _search_dirs())
        raise GanforgeError(f"The Inception weights file {WEIGHTS_FILE} was not found in {places} and "
                            f"GANFORGE_OFFLINE=1 forbids downloading it: download {WEIGHTS_URL} and put it in "
                            f"{cache_dir('weights')} (or pass --weights PATH).")
    return download_weights()


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Read a state_dict (.pth via ``torch.load(weights_only=True)``, or .safetensors) and its file's SHA-256."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GanforgeError(f"Cannot read the Inception weights file {str(path)!r} ({e}).") from None
    sha = hashlib.sha256(data).hexdigest()
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, bad header ... come in many types
        raise GanforgeError(f"{str(path)!r} is not a readable weights file ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'no details'}); replace it with a fresh "
                            f"copy of {WEIGHTS_FILE} from {WEIGHTS_URL}.") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GanforgeError(f"{str(path)!r} does not hold a state_dict of tensors.")
    return state, sha


def normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a torch-fidelity / pytorch-fid state_dict onto :class:`FIDInceptionV3`'s names.

    Both files already use the same names; this drops a DataParallel ``module.`` prefix and fills in missing
    BatchNorm ``num_batches_tracked`` counters (unused in eval mode) with 0.
    """
    out = {k.removeprefix("module."): v for k, v in state.items()}
    for k in [k[: -len("running_mean")] + "num_batches_tracked" for k in out if k.endswith(".bn.running_mean")]:
        out.setdefault(k, torch.tensor(0, dtype=torch.long))
    return out


def fid_inception_from_state_dict(state: dict[str, torch.Tensor], source: str = "the state_dict") -> FIDInceptionV3:
    """An FIDInceptionV3 (float32, eval, no grad) holding ``state``; GanforgeError naming ``source`` if it does not fit.

    The network is built on the meta device and takes the tensors over, so no time goes into a random init.
    """
    state = normalise_keys(state)
    with torch.device("meta"):
        net = FIDInceptionV3()
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for what, keys in (("missing", missing), ("unexpected", unexpected),
                                              ("wrong shape", wrong)) if keys)
        raise GanforgeError(f"{source} does not hold FID Inception-v3 weights ({detail}); use "
                            f"{WEIGHTS_FILE} from {WEIGHTS_URL}.")
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    net.eval()
    net.requires_grad_(False)
    return net


# ----------------------------------------------------------------------------------------------- extractor

class InceptionFeatureExtractor(FeatureExtractor):
    """pool3 features (2048) and unbiased logits (1008) of the FID Inception-v3, as torch-fidelity computes them.

    ``forward(images)``: uint8 [N, C, H, W] (C = 1 or 3, any H, W) ->
    ``{"features": float32 [N, 2048], "logits": float32 [N, 1008]}``, in eval mode without gradients,
    ``batch_size`` images at a time. See the module docstring for the image preparation and the weights lookup.

    ``channels_last`` (default) runs the convolutions in NHWC layout: about 1.5x less CPU time, with results
    that differ from torch-fidelity's (NCHW) by float32 rounding only (measured: below 1e-6 of the largest
    value, below 1e-5 relative for every value above 5% of it); with
    ``channels_last=False`` the CPU results equal torch-fidelity's bit for bit.
    """

    name = "inception"
    feature_dim = 2048
    num_classes = 1008

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 64, channels_last: bool = True):
        super().__init__()
        path = find_weights(weights)
        state, self.weights_sha256 = read_state_dict(path)
        if not weights and not self.weights_sha256.startswith(WEIGHTS_SHA256_PREFIX):  # found by its name
            raise GanforgeError(f"{str(path)!r} has SHA-256 {self.weights_sha256[:8]}..., not "
                                f"{WEIGHTS_SHA256_PREFIX}... as its name says; delete it (it is downloaded again) "
                                f"or pass it with --weights to use it anyway.")
        self.net = fid_inception_from_state_dict(state, repr(str(path)))
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.weights_path = path
        self.batch_size = batch_size
        self.eval()

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        """Always stays in eval mode (BatchNorm statistics are fixed)."""
        return super().train(False)

    def protocol(self) -> dict:
        return {"extractor": self.name, "weights": f"{self.weights_path.name} sha256:{self.weights_sha256[:8]}",
                "resize": RESIZE}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
            raise GanforgeError(f"The inception extractor takes uint8 images [N, C, H, W] in 0..255, not {got}.")
        if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[2] < 1 or images.shape[3] < 1:
            raise GanforgeError(f"The inception extractor takes images [N, C, H, W] with 1 or 3 channels, "
                                f"not shape {tuple(images.shape)}.")
        device = self.net.fc.weight.device
        features, logits = [], []
        for chunk in images.split(self.batch_size):
            x = chunk.to(device=device, dtype=torch.float32)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            f, lg = self.net(x)
            features.append(f)
            logits.append(lg)
        if not features:
            return {"features": torch.zeros(0, self.feature_dim, device=device),
                    "logits": torch.zeros(0, self.num_classes, device=device)}
        return {"features": torch.cat(features), "logits": torch.cat(logits)}


EXTRACTORS.register("inception", lambda weights, device: InceptionFeatureExtractor(weights).to(device))
