"""The FID Inception-v3 extractor: equality with torch-fidelity on random weights, weights lookup and download.

No network: weights are random (seeded) files the tests write; the download goes to a loopback HTTP server.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception  # the oracle (dev dependency)
from safetensors.torch import save_file

from ganforge.errors import GanforgeError
from ganforge.io import cache_dir
from ganforge.metrics import inception
from ganforge.metrics.features import EXTRACTORS
from ganforge.metrics.inception import FIDInceptionV3, InceptionFeatureExtractor, resize_tf1_bilinear


def _random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """torch-fidelity's FeatureExtractorInceptionV3 built without loading weights, then given seeded random
    weights that keep activations O(1) through the 94 layers, and non-trivial BatchNorm statistics."""
    cls = tf_inception.FeatureExtractorInceptionV3
    with mock.patch.object(cls, "load_state_dict", lambda self, sd, strict=True: None), \
            mock.patch.object(tf_inception, "load_state_dict_from_url", lambda *a, **k: {}):
        model = cls("inception-v3-compat", ["2048", "logits_unbiased"])
    g = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith("conv.weight"):
            v.copy_(torch.randn(v.shape, generator=g) * (2 / v[0].numel()) ** 0.5)
        elif k.endswith("bn.weight"):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif k.endswith(("bn.bias", "running_mean")):
            v.copy_(torch.randn(v.shape, generator=g) * 0.1)
        elif k.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif k == "fc.weight":
            v.copy_(torch.randn(v.shape, generator=g) / 2048 ** 0.5)
        elif k == "fc.bias":
            v.copy_(torch.randn(v.shape, generator=g))
    return state


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(_random_state_dict(), path)
    return path


@pytest.fixture(scope="module")
def reference(weights_file):
    """torch-fidelity's extractor (the oracle) loading the same file."""
    return tf_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights_file))


def _images(n: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Structured uint8 images (gradients, a bright box, noise) so features depend on the resize."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h).view(1, 1, h, 1)
    xx = torch.linspace(0, 1, w).view(1, 1, 1, w)
    phase = torch.rand(n, c, 1, 1, generator=g)
    x = 120 + 100 * torch.sin(6.28 * (3 * xx + 2 * yy + phase)) + 20 * torch.randn(n, c, h, w, generator=g)
    x[..., h // 4:h // 2, w // 3:2 * w // 3] = 250
    return x.clamp(0, 255).to(torch.uint8)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


# (count, channels, height, width): 32x32 and 64x64 upsampled, 299x299 untouched, gray, non-square
CASES = [(2, 3, 32, 32), (1, 3, 64, 64), (1, 3, 299, 299), (1, 1, 28, 28), (1, 3, 40, 57)]


@pytest.fixture(scope="module")
def reference_outputs(reference):
    """[(images, torch-fidelity features, torch-fidelity logits)] for CASES (gray images given as RGB)."""
    out = []
    for i, (n, c, h, w) in enumerate(CASES):
        x = _images(n, c, h, w, seed=i)
        out.append((x, *reference(x.expand(-1, 3, -1, -1))))
    return out


@pytest.mark.parametrize("channels_last", [True, False])
def test_equals_torch_fidelity(weights_file, reference_outputs, channels_last):
    # batch_size 1: the 2-image case also goes through the chunking
    ours = InceptionFeatureExtractor(weights_file, batch_size=1, channels_last=channels_last)
    tolerance = 1e-4 if channels_last else 1e-6  # NCHW runs the same kernels: equal up to (here: exactly) 0
    cases = reference_outputs if channels_last else [reference_outputs[0], reference_outputs[3]]  # to save time
    for x, ref_features, ref_logits in cases:
        out = ours(x)
        assert out["features"].shape == (len(x), 2048) and out["logits"].shape == (len(x), 1008)
        assert out["features"].dtype == out["logits"].dtype == torch.float32
        assert _rel(out["features"], ref_features) <= tolerance, x.shape
        assert _rel(out["logits"], ref_logits) <= tolerance, x.shape
    features = torch.cat([f for _, f, _ in reference_outputs])
    assert features.std(0).mean() > 0.01 * features.abs().mean()  # the features depend on the image


def test_tolerance_detects_a_different_resize(weights_file, reference_outputs):
    """PyTorch's own bilinear resize instead of TF1's moves features by far more than the tolerance."""
    net = InceptionFeatureExtractor(weights_file).net
    x, ref_features, _ = reference_outputs[0]
    with torch.no_grad():
        features, _ = net(F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False))
    assert _rel(features, ref_features) > 1e-2


def test_resize_tf1_bilinear_by_hand():
    x = torch.tensor([[0.0, 10.0], [20.0, 30.0]]).view(1, 1, 2, 2)
    # coordinates i * 2 / 4 = 0, 0.5, 1, 1.5; the last clamps to the border pixel (no half-pixel offset)
    expected = torch.tensor([[0.0, 5, 10, 10], [10, 15, 20, 20], [20, 25, 30, 30], [20, 25, 30, 30]])
    assert torch.equal(resize_tf1_bilinear(x, 4)[0, 0], expected)
    y = torch.rand(1, 2, 299, 299)
    assert resize_tf1_bilinear(y, 299) is y


def test_pytorch_fid_layout_and_resaved_copies(weights_file, tmp_path):
    """pytorch-fid's model is torchvision's Inception3(num_classes=1008, aux_logits=False): same keys, shapes.
    A safetensors copy with DataParallel's ``module.`` prefix and no num_batches_tracked loads the same weights,
    bit for bit, and so gives the same output up to float32 rounding: safetensors' tensors are views into the
    file's buffer and need not be 64-byte aligned like torch.load's; the CPU matrix product (the logits) takes a
    differently vectorised path on unaligned ones and rounds differently (measured: 2e-7 of the largest logit)."""
    import torchvision

    with torch.device("meta"):
        tv = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
        ours = FIDInceptionV3().state_dict()
    assert {k: v.shape for k, v in tv.state_dict().items()} == {k: v.shape for k, v in ours.items()}
    assert len(ours) == 566 and sum(v.numel() for k, v in ours.items() if "running" not in k
                                    and "num_batches" not in k) == 23_850_960

    state = torch.load(weights_file, weights_only=True)
    copy = tmp_path / "copy.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items() if "num_batches" not in k}, copy)
    x = _images(1, 3, 48, 48, seed=5)
    from_pth, from_copy = InceptionFeatureExtractor(weights_file), InceptionFeatureExtractor(copy)
    loaded = from_copy.net.state_dict()
    for k, v in from_pth.net.state_dict().items():  # the same numbers by construction
        assert v.dtype == loaded[k].dtype and torch.equal(v, loaded[k]), k
    a, b = from_pth(x), from_copy(x)
    for key in ("features", "logits"):  # the same computation on other memory: float32 rounding apart
        scale = a[key].abs().max().item()
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-5 * scale, msg=lambda m, k=key: f"{k}: {m}")


def test_protocol_registry_and_input_checks(weights_file):
    ex = EXTRACTORS.get("inception")(str(weights_file), torch.device("cpu"))
    assert isinstance(ex, InceptionFeatureExtractor)
    assert (ex.name, ex.feature_dim, ex.num_classes) == ("inception", 2048, 1008)
    sha = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert ex.protocol() == {"extractor": "inception", "weights": f"random-inception.pth sha256:{sha[:8]}",
                             "resize": "tf1-bilinear-299"}
    ex.train()
    assert not ex.training and not ex.net.training
    with pytest.raises(GanforgeError, match="uint8"):
        ex(torch.rand(1, 3, 32, 32))
    with pytest.raises(GanforgeError, match="1 or 3 channels"):
        ex(torch.zeros(1, 4, 32, 32, dtype=torch.uint8))
    assert ex(torch.zeros(0, 3, 32, 32, dtype=torch.uint8))["features"].shape == (0, 2048)


def test_missing_weights_offline_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_WEIGHTS", raising=False)
    with pytest.raises(GanforgeError) as e:
        InceptionFeatureExtractor()
    msg = str(e.value)
    assert inception.WEIGHTS_FILE in msg and str(cache_dir("weights")) in msg and inception.WEIGHTS_URL in msg
    assert inception.WEIGHTS_FILE == "weights-inception-2015-12-05-6726825d.pth"
    with pytest.raises(GanforgeError, match="nothere.pth"):
        InceptionFeatureExtractor(tmp_path / "nothere.pth")


def test_corrupt_weights(weights_file, tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights_file.read_bytes()[:100_000])
    with pytest.raises(GanforgeError, match="truncated.pth"):
        InceptionFeatureExtractor(truncated)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(GanforgeError, match="does not hold FID Inception-v3 weights"):
        InceptionFeatureExtractor(other)


def test_found_by_name_in_weights_dir(weights_file, tmp_path, monkeypatch):
    """$GANFORGE_WEIGHTS (and the pytorch-fid name) is searched; a file whose hash contradicts its name is refused."""
    monkeypatch.setenv("GANFORGE_WEIGHTS", str(tmp_path))
    (tmp_path / inception.PYTORCH_FID_FILE).symlink_to(weights_file)
    with pytest.raises(GanforgeError, match="delete it"):
        InceptionFeatureExtractor()
    sha = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", sha[:8])
    assert InceptionFeatureExtractor().weights_path == tmp_path / inception.PYTORCH_FID_FILE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_url(weights_file):
    """A loopback HTTP server serving the random weights file; yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(weights_file.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{weights_file.name}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_into_cache(weights_file, loopback_url, monkeypatch):
    monkeypatch.delenv("GANFORGE_OFFLINE")
    monkeypatch.delenv("GANFORGE_WEIGHTS", raising=False)
    sha = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    monkeypatch.setattr(inception, "WEIGHTS_URL", loopback_url)
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", sha[:8])
    ex = InceptionFeatureExtractor()
    cached = cache_dir("weights") / inception.WEIGHTS_FILE
    assert ex.weights_path == cached and cached.read_bytes() == weights_file.read_bytes()
    assert sorted(p.name for p in cached.parent.iterdir()) == [inception.WEIGHTS_FILE]  # no temporary file left
    assert ex.protocol()["weights"] == f"{inception.WEIGHTS_FILE} sha256:{sha[:8]}"
    monkeypatch.setattr(inception, "WEIGHTS_URL", "http://127.0.0.1:9/gone")  # found in the cache now
    assert inception.find_weights() == cached


def test_download_hash_mismatch_leaves_nothing(loopback_url, monkeypatch):
    monkeypatch.delenv("GANFORGE_OFFLINE")
    monkeypatch.delenv("GANFORGE_WEIGHTS", raising=False)
    monkeypatch.setattr(inception, "WEIGHTS_URL", loopback_url)
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", "00000000")
    with pytest.raises(GanforgeError, match="SHA-256"):
        InceptionFeatureExtractor()
    assert list(cache_dir("weights").iterdir()) == []
