"""CycleGAN's networks: the reference's parameter counts, instance norm without affine or statistics, no
dropout, sizes, and generators saved by junyanz/pytorch-CycleGAN-and-pix2pix loading with their outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge
from ganforge.families import build_model
from ganforge.models import count_parameters
from ganforge.models.cyclegan import generator_from_reference
from ganforge.models.patchgan import PatchDiscriminator
from ganforge.models.resnet import ResnetGenerator, reference_resnet_key_map
from ganforge.models.unet import UNetGenerator, reference_unet_key_map


class ReferenceResnetBlock(nn.Module):
    """The reference's ResnetBlock layout: ``conv_block`` = [pad, conv, norm, ReLU, (dropout,) pad, conv, norm]."""

    def __init__(self, dim: int, norm, bias: bool, dropout: bool) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    """The reference's ResnetGenerator as one nn.Sequential ``model``, numbered as it numbers its layers."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
                 dropout: bool = False, old_stats: bool = False) -> None:
        super().__init__()
        if norm == "instance":
            def make(c):  # old_stats: what instance norms saved before PyTorch 0.4
                return nn.InstanceNorm2d(c, affine=False, track_running_stats=old_stats)
        else:
            make = nn.BatchNorm2d
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2**i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=bias), make(ngf * m * 2),
                       nn.ReLU(True)]
        layers += [ReferenceResnetBlock(ngf * 4, make, bias, dropout) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                       make(ngf * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return net.eval()


def test_parameter_counts_are_the_reference_s():
    assert count_parameters(ResnetGenerator(3, 3, 64, 9)) == 11_378_179
    assert count_parameters(ResnetGenerator(3, 3, 64, 6)) == 7_837_699
    assert count_parameters(ReferenceResnetGenerator(3, 3, 64, 9)) == 11_378_179  # the layout below is right
    assert count_parameters(PatchDiscriminator(3, 64, 3, "instance")) == 2_764_737
    assert ganforge.info("cyclegan") == {"G_A": 11_378_179, "G_B": 11_378_179, "D_A": 2_764_737, "D_B": 2_764_737}
    assert ganforge.info("cyclegan", {"netG": "resnet_6blocks", "input_nc": 1, "output_nc": 3})["G_A"] == (
        7_837_699 - 2 * 49 * 64)  # one input channel fewer in the first 7x7 conv


def test_instance_norm_has_no_affine_and_no_statistics_and_nothing_drops_out():
    for netG in ("resnet_9blocks", "unet_32"):
        nets = build_model("cyclegan", {"netG": netG, "ngf": 8, "ndf": 8, "image_size": 32})
        assert list(nets) == ["G_A", "G_B", "D_A", "D_B"]
        norms = [m for net in nets.values() for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
        assert norms and all(not m.affine and not m.track_running_stats for m in norms)
        assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm2d)) for net in nets.values() for m in net.modules())
        assert all(not net.state_dict().keys() - {k for k, _ in net.named_parameters()} for net in nets.values())


def test_generators_and_discriminators_see_the_right_channels():
    nets = build_model("cyclegan", {"netG": "resnet_2blocks", "ngf": 8, "ndf": 8, "image_size": 32,
                                    "input_nc": 1, "output_nc": 3, "netD": "n_layers", "n_layers_D": 2})
    A, B = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        fake_B, fake_A = nets["G_A"](A), nets["G_B"](B)
        assert fake_B.shape == (2, 3, 32, 32) and fake_A.shape == (2, 1, 32, 32)
        assert float(fake_B.abs().max()) <= 1
        assert nets["D_A"](fake_B).shape == (2, 1, 6, 6) and nets["D_B"](fake_A).shape == (2, 1, 6, 6)


def test_sizes_must_be_multiples_of_four_for_the_resnet_and_names_are_checked():
    G = ResnetGenerator(1, 1, 8, 1)
    assert G(torch.zeros(1, 1, 36, 44)).shape == (1, 1, 36, 44)
    with pytest.raises(ganforge.GanforgeError, match="multiples of 4, got 30x32"):
        G(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ganforge.GanforgeError, match="divisible by 4, got 30"):
        ganforge.build_model("cyclegan", {"image_size": 30})
    with pytest.raises(ganforge.GanforgeError, match="Unknown netG 'resnet_9'"):
        ganforge.build_model("cyclegan", {"netG": "resnet_9"})
    with pytest.raises(ganforge.GanforgeError, match="divisible by 64"):
        ganforge.build_model("cyclegan", {"netG": "unet_64", "image_size": 32})


def test_the_key_map_covers_every_module_with_weights():
    for n_blocks in (1, 6, 9):
        G = ResnetGenerator(3, 3, 8, n_blocks)
        modules = {k.rpartition(".")[0] for k in G.state_dict()}
        assert set(reference_resnet_key_map(n_blocks).values()) >= modules
        ref_keys = {k.rpartition(".")[0] for k in ReferenceResnetGenerator(3, 3, 8, n_blocks).state_dict()}
        assert ref_keys == {k for k, v in reference_resnet_key_map(n_blocks).items() if v in modules}


def test_a_reference_resnet_generator_loads_and_gives_its_outputs():
    ref = _randomised(ReferenceResnetGenerator(3, 3, ngf=8, n_blocks=9))
    state = ref.state_dict()
    # the reference's numbering: blocks at 10..18, transposed convs at 19 and 22, the last conv at 26
    assert {"model.1.weight", "model.1.bias", "model.4.weight", "model.7.weight", "model.10.conv_block.1.weight",
            "model.18.conv_block.5.bias", "model.19.weight", "model.22.weight", "model.26.weight",
            "model.26.bias"} <= set(state)
    assert len(state) == 2 + 4 + 9 * 4 + 4 + 2
    G = generator_from_reference({f"module.{k}": v for k, v in state.items()}, "resnet_9blocks").eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(x), ref(x), rtol=0, atol=1e-6)


def test_old_instance_norm_statistics_and_dropout_checkpoints_load():
    ref = _randomised(ReferenceResnetGenerator(1, 3, ngf=4, n_blocks=2, old_stats=True, dropout=True), seed=1)
    state = ref.state_dict()
    assert "model.2.running_mean" in state and "model.10.conv_block.6.weight" in state  # dropout shifts the conv
    with pytest.warns(UserWarning, match=r"ignoring \d+ running-statistics entries of instance norms"):
        G = generator_from_reference(state, "resnet_2blocks", input_nc=1).eval()
    ref.eval()
    for m in ref.modules():  # what the reference does: instance norm on each image's own statistics
        if isinstance(m, nn.InstanceNorm2d):
            m.track_running_stats = False
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(x), ref(x), rtol=0, atol=1e-6)


def test_reference_files_that_do_not_fit_say_what_they_look_like(tmp_path):
    state = ReferenceResnetGenerator(3, 3, ngf=4, n_blocks=6).state_dict()
    with pytest.raises(ganforge.GanforgeError, match="resnet_9blocks.*looks like netG resnet_6blocks"):
        generator_from_reference(state, "resnet_9blocks")
    with pytest.raises(ganforge.GanforgeError, match="input_nc=3.*not input_nc=1"):
        generator_from_reference(state, "resnet_6blocks", input_nc=1)
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(state, path)
    assert generator_from_reference(path, "resnet_6blocks").n_blocks == 6
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ganforge.GanforgeError, match="Could not read"):
        generator_from_reference(tmp_path / "broken.pth")


def test_a_reference_unet_generator_with_instance_norm_loads():
    G = _randomised(UNetGenerator(3, 3, 5, ngf=4, norm="instance", dropout=0.0))
    reverse = {v: k for k, v in reference_unet_key_map(5).items()}
    state = {f"{reverse[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v for k, v in G.state_dict().items()}
    loaded = generator_from_reference(state, "unet_32", "instance").eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), G(x))
