"""The ``fmnist`` extractor: shipped weights, accuracy on the real test set, image preparation, errors."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from ganforge.data import load_dataset
from ganforge.data.idx import FASHION_CLASSES
from ganforge.errors import GanforgeError
from ganforge.metrics.features import EXTRACTORS
from ganforge.metrics.fmnist import WEIGHTS_FILE, FashionClassifier, FashionFeatureExtractor


@pytest.fixture(scope="module")
def extractor() -> FashionFeatureExtractor:
    return FashionFeatureExtractor()


@pytest.fixture
def fmnist_test():
    """The real Fashion-MNIST test split (10k). Missing data is a failure, never a skip: CI installs it."""
    try:
        return load_dataset("fashion-mnist", split="test")
    except GanforgeError as e:
        pytest.fail(f"The real Fashion-MNIST test set is needed here; `make data` installs it. ({e})")


def run_batched(extractor, images: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    outs = [extractor(chunk) for chunk in images.split(batch_size)]
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def random_images(n: int, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


def test_shipped_weights_reach_93_percent_on_the_real_test_set(extractor, fmnist_test):
    assert len(fmnist_test) == 10_000
    logits = run_batched(extractor, fmnist_test.images)["logits"]
    accuracy = (logits.argmax(1) == fmnist_test.labels).float().mean().item()
    assert accuracy >= 0.93, f"test accuracy {accuracy:.4f}"


def test_shipped_weights_file_is_small_and_named_in_the_protocol(extractor):
    assert WEIGHTS_FILE.is_file()
    assert WEIGHTS_FILE.stat().st_size < 2_500_000
    sha = hashlib.sha256(WEIGHTS_FILE.read_bytes()).hexdigest()
    assert extractor.protocol() == {"extractor": "fmnist", "weights": sha[:12],
                                    "resize": "bilinear-antialias to 28x28", "channels": "luma (ITU-R 601)",
                                    "range": "[-1, 1]"}


def test_output_shapes_dtypes_and_class_names(extractor):
    out = extractor(random_images(5))
    assert set(out) == {"features", "logits"}
    assert out["features"].shape == (5, 128) and out["features"].dtype == torch.float32
    assert out["logits"].shape == (5, 10) and out["logits"].dtype == torch.float32
    assert (out["features"] >= 0).all()  # after ReLU
    assert extractor.feature_dim == 128 and extractor.num_classes == 10
    assert extractor.class_names == FASHION_CLASSES
    assert not extractor.training


def test_features_are_the_penultimate_layer_of_the_classifier(extractor):
    x = random_images(4)
    out = extractor(x)
    net: FashionClassifier = extractor.net
    with torch.no_grad():
        feats = net.features(x.float() / 127.5 - 1)
        torch.testing.assert_close(out["features"], feats, rtol=0, atol=0)
        torch.testing.assert_close(out["logits"], net(x.float() / 127.5 - 1), rtol=0, atol=0)


def test_rgb_of_a_gray_image_gives_the_gray_features(extractor):
    gray = random_images(8, seed=1)
    rgb = gray.expand(-1, 3, -1, -1).contiguous()
    a, b = extractor(gray), extractor(rgb)
    torch.testing.assert_close(b["features"], a["features"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b["logits"], a["logits"], rtol=1e-5, atol=1e-5)


def test_rgb_is_converted_by_itu_601_luma(extractor):
    rgb = random_images(3, channels=3, seed=2)
    luma = (rgb.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(extractor.prepare(rgb), luma / 127.5 - 1)


def test_other_sizes_are_resized_bilinear_antialiased(extractor, fmnist_test):
    """A 56x56 (2x bilinear) copy of each image is scaled back to 28x28 and mostly classified the same."""
    images = fmnist_test.images[:1000]
    big = F.interpolate(images.float(), size=(56, 56), mode="bilinear", align_corners=False)
    big = big.round().clamp(0, 255).to(torch.uint8)
    expected = F.interpolate(big.float(), size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(extractor.prepare(big), expected / 127.5 - 1)
    small_pred = run_batched(extractor, images)["logits"].argmax(1)
    big_pred = run_batched(extractor, big)["logits"].argmax(1)
    agreement = (small_pred == big_pred).float().mean().item()
    assert agreement > 0.90, f"agreement {agreement:.3f}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int8])
def test_images_that_are_not_uint8_are_refused(extractor, dtype):
    with pytest.raises(GanforgeError, match="uint8"):
        extractor(random_images(2).to(dtype))


def test_images_with_2_channels_are_refused(extractor):
    with pytest.raises(GanforgeError, match="1 or 3 channels"):
        extractor(random_images(2, channels=2))


def test_missing_weights_file_names_the_file_and_the_script(tmp_path):
    missing = tmp_path / "nowhere" / "fmnist_classifier.safetensors"
    with pytest.raises(GanforgeError) as info:
        FashionFeatureExtractor(str(missing))
    assert str(missing) in str(info.value)
    assert "scripts/train_fmnist_classifier.py" in str(info.value)


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "fmnist_classifier.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(GanforgeError, match="fmnist classifier weights"):
        FashionFeatureExtractor(bad)


def test_registered_as_fmnist():
    assert "fmnist" in EXTRACTORS
    ex = EXTRACTORS.get("fmnist")(None, torch.device("cpu"))
    assert isinstance(ex, FashionFeatureExtractor) and ex.name == "fmnist"
    ex.train()  # stays in eval mode: fixed BatchNorm statistics, no dropout
    assert not ex.training and not ex.net.training


def test_same_input_twice_gives_identical_outputs(extractor):
    x = random_images(16, channels=3, size=40, seed=3)
    a, b = extractor(x), extractor(x)
    assert torch.equal(a["features"], b["features"]) and torch.equal(a["logits"], b["logits"])
