"""SRResNet and the SRGAN discriminator against the paper's architecture (Ledig et al. 2017, figure 4)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.models.srgan import SRGAN, SRRESNET, SRGANDiscriminator, SRResNetGenerator, UpsampleBlock


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def paper_generator_parameters(scale: int = 4, blocks: int = 16, f: int = 64, c: int = 3) -> int:
    """Counted layer by layer from the paper's figure: k9n64 + PReLU; B x (k3n64, BN, PReLU, k3n64, BN);
    k3n64 + BN; log2(scale) x (k3n256, PixelShuffle, PReLU); k9n3. One PReLU slope per layer, BN = 2 f."""
    prelu, bn = 1, 2 * f
    head = conv(c, f, 9) + prelu
    block = 2 * conv(f, f, 3) + 2 * bn + prelu
    mid = conv(f, f, 3) + bn
    ups = {2: 1, 4: 2, 8: 3}[scale] * (conv(f, 4 * f, 3) + prelu)
    return head + blocks * block + mid + ups + conv(f, c, 9)


def paper_discriminator_parameters(size: int = 96, f: int = 64, c: int = 3, dense: int = 1024) -> int:
    plan = [(f, 2), (2 * f, 1), (2 * f, 2), (4 * f, 1), (4 * f, 2), (8 * f, 1), (8 * f, 2)]
    total, c_in, side = conv(c, f, 3), f, size
    for c_out, stride in plan:
        total += conv(c_in, c_out, 3, bias=False) + 2 * c_out
        c_in, side = c_out, -(-side // stride)
    return total + (c_in * side * side * dense + dense) + (dense + 1)


def test_default_generator_has_the_papers_1_55_million_parameters():
    G = SRRESNET.networks()["G"]
    assert count_parameters(G) == paper_generator_parameters() == 1_549_462
    assert round(count_parameters(G) / 1e6, 2) == 1.55


@pytest.mark.parametrize("scale, blocks, features", [(2, 3, 8), (8, 2, 16), (4, 1, 4)])
def test_generator_count_follows_the_options(scale, blocks, features):
    G = SRResNetGenerator(scale, blocks, features, 3)
    assert count_parameters(G) == paper_generator_parameters(scale, blocks, features)


def test_discriminator_count_and_layers_follow_the_paper():
    nets = SRGAN.networks()
    D = nets["D"]
    assert count_parameters(D) == paper_discriminator_parameters() == 23_563_649
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.stride[0]) for m in convs] == [(64, 1), (64, 2), (128, 1), (128, 2), (256, 1),
                                                                (256, 2), (512, 1), (512, 2)]
    assert all(m.kernel_size == (3, 3) for m in convs)
    assert [m.out_features for m in D.modules() if isinstance(m, nn.Linear)] == [1024, 1]
    assert D(torch.randn(2, 3, 96, 96)).shape == (2,)
    assert count_parameters(SRGANDiscriminator(40, 1, 8, 16)) == paper_discriminator_parameters(40, 8, 1, 16)
    # G_mse: a frozen copy of G in eval mode, the same weights at the start
    assert not any(p.requires_grad for p in nets["G_mse"].parameters()) and not nets["G_mse"].training
    assert all(torch.equal(a, b) for a, b in zip(nets["G"].state_dict().values(),
                                                 nets["G_mse"].state_dict().values(), strict=True))


def test_pixel_shuffle_blocks_double_the_side_and_the_generator_takes_any_size():
    up = UpsampleBlock(8)
    x = torch.randn(2, 8, 5, 7)
    assert up.conv(x).shape == (2, 32, 5, 7) and up(x).shape == (2, 8, 10, 14)
    # PixelShuffle: output (c, 2i + a, 2j + b) is input channel 4c + 2a + b at (i, j)
    y = up.shuffle(up.conv(x))
    z = up.conv(x)
    assert torch.equal(y[:, 3, 2 * 1 + 1, 2 * 4 + 0], z[:, 4 * 3 + 2 * 1 + 0, 1, 4])
    for scale, n_up in ((2, 1), (4, 2), (8, 3)):
        G = SRResNetGenerator(scale, 1, 4, 3)
        assert len(G.upsample) == n_up
        assert G(torch.randn(1, 3, 5, 9)).shape == (1, 3, 5 * scale, 9 * scale)


def test_bad_options_are_one_sentence():
    with pytest.raises(GanforgeError, match=r"scale must be one of 2, 4, 8, got 3\."):
        SRRESNET.config({"scale": 3})
    with pytest.raises(GanforgeError, match=r"image_size=30 must be a multiple of scale=4 \(e\.g\. 28\)\."):
        SRRESNET.config({"image_size": 30})
    with pytest.raises(GanforgeError, match=r"d_dense must be a positive integer, got 0\."):
        SRGAN.config({"d_dense": 0})
    with pytest.raises(GanforgeError, match="built for 96x96 HR crops, got 64x64"):
        SRGAN.networks()["D"](torch.randn(1, 3, 64, 64))


def test_info_prints_the_parameter_counts(capsys):
    assert main(["info", "srgan"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {"G": 1_549_462, "D": 23_563_649, "G_mse": 1_549_462}
    assert main(["info", "srresnet", "scale=2", "blocks=8"]) == 0
    assert json.loads(capsys.readouterr().out) == {"G": paper_generator_parameters(2, 8)}


def test_bicubic_skip_starts_as_bicubic_and_adds_no_parameter():
    G = SRRESNET.networks({"scale": 4, "blocks": 2, "features": 8, "bicubic_skip": True})["G"]
    assert count_parameters(G) == paper_generator_parameters(4, 2, 8)
    x = torch.rand(2, 3, 6, 7) * 2 - 1
    want = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(G(x), want)
    assert not SRRESNET.networks({"blocks": 1, "features": 4})["G"].bicubic_skip
