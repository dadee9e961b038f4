"""pix2pix networks: U-Net, PatchGAN, PixelGAN - counts, shapes, receptive field, reference checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge.models.pix2pix  # noqa: F401  (registers "pix2pix")
from ganforge.errors import GanforgeError
from ganforge.families import MODELS, build_model, family_of, model_config
from ganforge.models import count_parameters
from ganforge.models.patchgan import (
    PatchDiscriminator,
    PixelDiscriminator,
    patchgan_state_from_reference,
    receptive_field,
)
from ganforge.models.pix2pix import Pix2PixConfig, generator_from_reference
from ganforge.models.unet import UNetGenerator, unet_state_from_reference

# ---------------------------------------------------------------------------------------------------------
# Reference-like networks, written here from the reference's documented structure, to produce its key names
# and its outputs: nested skip blocks whose Sequential is [down..., submodule, up...], in-place activations.


def _ref_norm(norm: str, ch: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(ch)
    if norm == "instance":
        return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)
    return nn.Identity()


class RefSkipBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"  # the reference's rule: only instance norm gives its convs a bias
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=bias)
        if outermost:
            seq = [downconv, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            seq = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=bias), _ref_norm(norm, outer_nc)]
        else:
            seq = [nn.LeakyReLU(0.2, True), downconv, _ref_norm(norm, inner_nc), submodule, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=bias), _ref_norm(norm, outer_nc)]
            if use_dropout:
                seq.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm="batch", use_dropout=False):
        super().__init__()
        block = RefSkipBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = RefSkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = RefSkipBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = RefSkipBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = RefSkipBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = RefSkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


class RefNLayerD(nn.Module):
    def __init__(self, input_nc, ndf, n_layers, norm="batch"):
        super().__init__()
        bias = norm == "instance"
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=bias),
                    _ref_norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        seq.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and running statistics, so that any misplaced tensor changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module


def _ref_unet(num_downs, norm="batch", ngf=4, input_nc=3, output_nc=2, use_dropout=False) -> RefUnet:
    torch.manual_seed(0)
    return _randomise(RefUnet(input_nc, output_nc, num_downs, ngf, norm, use_dropout))


# ---------------------------------------------------------------------------------------------------------
# Parameter counts (meta device: construction only)


def _meta_count(cls, *args, **kwargs) -> int:
    with torch.device("meta"):
        return count_parameters(cls(*args, **kwargs))


def test_unet_parameter_counts_match_the_reference():
    assert _meta_count(UNetGenerator, 3, 3, 8) == 54_413_955  # unet_256, batch norm
    assert _meta_count(UNetGenerator, 3, 3, 7) == 41_828_995  # unet_128: the reference prints 41.829 M
    assert _meta_count(UNetGenerator, 3, 3, 8, norm="instance") == 54_409_603
    assert _meta_count(UNetGenerator, 3, 3, 8, dropout=0.0) == 54_413_955  # dropout holds no weights


def test_discriminator_parameter_counts_match_the_reference():
    assert _meta_count(PatchDiscriminator, 6) == 2_768_705  # pix2pix basic D
    assert _meta_count(PatchDiscriminator, 3, norm="instance") == 2_764_737  # CycleGAN basic D
    assert count_parameters(PixelDiscriminator(6)) == 6 * 64 + 64 + 64 * 128 + 2 * 128 + 128


# ---------------------------------------------------------------------------------------------------------
# U-Net


@pytest.mark.parametrize("num_downs", [5, 6, 7, 8])
def test_unet_shapes_at_minimum_and_larger_sizes(num_downs):
    G = UNetGenerator(3, 2, num_downs, ngf=4)
    side = 2**num_downs
    for h, w in ((side, side), (2 * side, side)):
        y = G(torch.rand(2, 3, h, w) * 2 - 1)
        assert y.shape == (2, 2, h, w)
        assert y.abs().max() <= 1


def test_unet_rejects_sizes_that_are_not_multiples():
    G = UNetGenerator(3, 3, 5, ngf=4)
    with pytest.raises(GanforgeError, match=r"unet_32 needs image sizes that are multiples of 32, got 48x32"):
        G(torch.zeros(1, 3, 48, 32))
    with pytest.raises(GanforgeError, match=r"expects images \[N, 3, H, W\]"):
        G(torch.zeros(1, 1, 32, 32))
    with pytest.raises(GanforgeError, match="num_downs >= 5"):
        UNetGenerator(3, 3, 4)


def test_unet_dropout_blocks():
    with torch.device("meta"):
        G = UNetGenerator(3, 3, 8, dropout=0.5)
        no_drop = UNetGenerator(3, 3, 8, dropout=0.0)
    where = [i for i, up in enumerate(G.up) for m in up if isinstance(m, nn.Dropout)]
    assert where == [4, 5, 6]  # the three ngf*8 blocks next to the innermost
    assert all(m.p == 0.5 for m in G.modules() if isinstance(m, nn.Dropout))
    assert not any(isinstance(m, nn.Dropout) for m in no_drop.modules())
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(3, 3, 5, ngf=2).modules())

    x = torch.rand(2, 3, 64, 64)
    G = UNetGenerator(3, 3, 6, ngf=4, dropout=0.5)  # one dropout block
    assert not torch.equal(G(x), G(x))  # training mode: dropout draws
    G.eval()
    assert torch.equal(G(x), G(x))
    G0 = UNetGenerator(3, 3, 6, ngf=4, dropout=0.0)
    assert torch.equal(G0(x), G0(x))


def test_unet_norm_variants_and_biases():
    batch = UNetGenerator(3, 3, 6, ngf=4, norm="batch")
    assert [("norm" in s._modules) for s in batch.down] == [False, True, True, True, True, False]
    assert [("norm" in s._modules) for s in batch.up] == [False, True, True, True, True, True]
    assert all(s.conv.bias is None for s in list(batch.down) + list(batch.up)[1:])
    assert batch.up[0].conv.bias is not None and isinstance(batch.up[0].tanh, nn.Tanh)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batch.modules()) == 9

    inst = UNetGenerator(3, 3, 6, ngf=4, norm="instance")
    norms = [m for m in inst.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 9 and not any(m.affine or m.track_running_stats for m in norms)
    assert not list(inst.buffers())
    assert all(s.conv.bias is not None for s in list(inst.down) + list(inst.up))

    none = UNetGenerator(3, 3, 6, ngf=4, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in none.modules())
    assert all(s.conv.bias is not None for s in list(none.down) + list(none.up))
    for G in (inst, none):
        assert G(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(GanforgeError, match="Unknown norm 'group'; choose one of: batch, instance, none"):
        UNetGenerator(3, 3, 6, norm="group")


# ---------------------------------------------------------------------------------------------------------
# PatchGAN / PixelGAN


def test_patchgan_output_shapes():
    D = PatchDiscriminator(6, ndf=8)
    assert D(torch.rand(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert PatchDiscriminator(6, ndf=4, n_layers=2)(torch.rand(2, 6, 64, 64)).shape == (2, 1, 14, 14)
    assert PatchDiscriminator(6, ndf=4, n_layers=1)(torch.rand(2, 6, 32, 32)).shape == (2, 1, 14, 14)
    with pytest.raises(GanforgeError, match="n_layers 3 needs images of at least 24x24, got 16x16"):
        D(torch.rand(1, 6, 16, 16))
    with pytest.raises(GanforgeError, match=r"expects images \[N, 6, H, W\]"):
        D(torch.rand(1, 3, 64, 64))


def test_receptive_field_formula():
    assert receptive_field(3) == receptive_field("basic") == 70
    assert [receptive_field(n) for n in (1, 2, 4)] == [16, 34, 142]
    assert receptive_field("pixel") == 1
    with pytest.raises(GanforgeError, match="n_layers must be a positive integer"):
        receptive_field(0)


def _gradient_support(D: nn.Module, side: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of the input that one central output logit depends on."""
    with torch.no_grad():
        for m in D.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(0.05)
                if m.bias is not None:
                    m.bias.zero_()
    D.eval()  # batch norm with running stats: a positive scale, so no gradient can cancel
    x = torch.zeros(1, channels, side, side, requires_grad=True)
    out = D(x)
    c = out.shape[-1] // 2
    out[0, 0, c, c].backward()
    g = x.grad[0].abs().sum(0)
    return g.sum(1).nonzero().flatten(), g.sum(0).nonzero().flatten()


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_numerically(n_layers):
    side = 12 * 2**n_layers
    rows, cols = _gradient_support(PatchDiscriminator(1, ndf=2, n_layers=n_layers), side, 1)
    for idx in (rows, cols):
        assert len(idx) == receptive_field(n_layers)
        assert idx[-1] - idx[0] + 1 == len(idx)  # one contiguous patch
        assert idx[0] > 0 and idx[-1] < side - 1  # not cut by the image border
    if n_layers == 3:
        assert len(rows) == len(cols) == 70


def test_pixel_discriminator():
    D = PixelDiscriminator(6, ndf=8)
    assert D(torch.rand(2, 6, 20, 12)).shape == (2, 1, 20, 12)
    rows, cols = _gradient_support(PixelDiscriminator(1, ndf=2), 9, 1)
    assert rows.tolist() == cols.tolist() == [4]
    # the reference's layer indices, so its latest_net_D.pth (netD pixel) loads as it is
    assert list(PixelDiscriminator(6).state_dict()) == [
        "net.0.weight", "net.0.bias", "net.2.weight", "net.3.weight", "net.3.bias", "net.3.running_mean",
        "net.3.running_var", "net.3.num_batches_tracked", "net.5.weight"]


# ---------------------------------------------------------------------------------------------------------
# Reference checkpoints


def _same_outputs(ref: nn.Module, ours: nn.Module, x: torch.Tensor) -> None:
    for train in (False, True):
        ref.train(train)
        ours.train(train)
        with torch.no_grad():
            # the U-Net's innermost stages run as matrix products (models/layers.py), the reference's as
            # convolutions: the same sums in another order, so equal within float32 rounding, not bit for bit
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_downs,norm", [(5, "batch"), (6, "batch"), (6, "instance"), (5, "none")])
def test_unet_reference_state_dict_gives_the_same_outputs(num_downs, norm):
    ref = _ref_unet(num_downs, norm)
    state = ref.state_dict()
    if norm == "batch":
        assert "model.model.0.weight" in state and "model.model.3.bias" in state
        assert "model.model.1.model.2.running_var" in state  # block 1's down norm
        inner = "model.model.1.model." + "3.model." * (num_downs - 2)
        assert inner + "4.running_mean" in state and inner + "3.weight" in state  # innermost up conv, up norm
    G = UNetGenerator(3, 2, num_downs, ngf=4, norm=norm, dropout=0.0)
    G.load_state_dict(unet_state_from_reference(state, num_downs, norm), strict=True)
    _same_outputs(ref, G, torch.rand(2, 3, 2**num_downs, 2**num_downs) * 2 - 1)


def test_unet_reference_old_and_dataparallel_checkpoints():
    ref = _ref_unet(6, "batch")
    state = {"module." + k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    G = UNetGenerator(3, 2, 6, ngf=4, dropout=0.0)
    G.load_state_dict(unet_state_from_reference(state, 6), strict=True)
    _same_outputs(ref, G, torch.rand(2, 3, 64, 64))

    # instance norm saved by torch < 0.4: running statistics at the norm slots, to be dropped
    ref = _ref_unet(5, "instance")
    state = dict(ref.state_dict())
    innermost_up_norm = "model.model.1.model.3.model.3.model.3.model.4."
    for prefix in ("model.model.1.model.2.", "model.model.1.model.6.", innermost_up_norm):
        state[prefix + "running_mean"] = torch.zeros(1)
        state[prefix + "running_var"] = torch.ones(1)
    G = UNetGenerator(3, 2, 5, ngf=4, norm="instance", dropout=0.0)
    G.load_state_dict(unet_state_from_reference(state, 5, "instance"), strict=True)
    _same_outputs(ref, G, torch.rand(2, 3, 32, 32))


def test_unet_reference_mismatches_are_one_sentence_errors():
    state = _ref_unet(6, "batch").state_dict()
    with pytest.raises(GanforgeError, match=r"does not fit netG unet_128 with batch norm.*looks like netG unet_64"):
        unet_state_from_reference(state, 7)
    with pytest.raises(GanforgeError, match=r"does not fit netG unet_32 with batch norm.*looks like netG unet_64"):
        unet_state_from_reference(state, 5)
    with pytest.raises(GanforgeError, match=r"netG unet_64 with instance norm.*looks like netG unet_64 with batch"):
        unet_state_from_reference(state, 6, "instance")
    missing = {k: v for k, v in state.items() if k != "model.model.1.model.5.weight"}
    with pytest.raises(GanforgeError, match=r"it lacks 'model\.model\.1\.model\.5\.weight'"):
        unet_state_from_reference(missing, 6)
    bad = dict(state, **{"model.model.1.model.1.weight": torch.zeros(8, 4, 3, 3)})
    with pytest.raises(GanforgeError, match=r"'model\.model\.1\.model\.1\.weight' has shape \[8, 4, 3, 3\]"):
        unet_state_from_reference(bad, 6)
    with pytest.raises(GanforgeError, match="holds a str, not a tensor"):
        unet_state_from_reference(dict(state, extra="x"), 6)


@pytest.mark.parametrize("n_layers,norm", [(3, "batch"), (2, "instance"), (1, "none")])
def test_patchgan_reference_state_dict_gives_the_same_outputs(n_layers, norm):
    torch.manual_seed(0)
    ref = _randomise(RefNLayerD(6, 4, n_layers, norm))
    state = {"module." + k: v for k, v in ref.state_dict().items()}
    if norm == "batch":
        assert {"model.0.bias", "model.2.weight", "model.3.running_var", "model.11.bias"} <= {k[7:] for k in state}
    if norm == "instance":  # old torch: statistics on the instance norms
        state["module.model.3.running_mean"] = torch.zeros(8)
        state["module.model.3.running_var"] = torch.ones(8)
    D = PatchDiscriminator(6, ndf=4, n_layers=n_layers, norm=norm)
    D.load_state_dict(patchgan_state_from_reference(state, norm), strict=True)
    _same_outputs(ref, D, torch.rand(2, 6, 48, 48))


def test_patchgan_reference_mismatches():
    state = RefNLayerD(6, 4, 3).state_dict()
    with pytest.raises(GanforgeError, match=r"netD n_layers \(n_layers_D 2\) with batch norm.*n_layers_D 3"):
        patchgan_state_from_reference(state, n_layers=2)
    with pytest.raises(GanforgeError, match=r"netD basic with instance norm.*looks like n_layers_D 3 with batch"):
        patchgan_state_from_reference(state, "instance")
    with pytest.raises(GanforgeError, match="not a PatchGAN discriminator"):
        patchgan_state_from_reference({"foo.weight": torch.zeros(1)})


def test_generator_from_reference_file(tmp_path):
    ref = _ref_unet(5, "batch", input_nc=3, output_nc=3)
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    G = generator_from_reference(path, netG="unet_32", ngf=4, dropout=0.0)
    assert G.training
    _same_outputs(ref, G, torch.rand(1, 3, 32, 32))
    G = generator_from_reference(str(path), netG="unet_32", ngf=4)  # with dropout: same weights
    assert sum(isinstance(m, nn.Dropout) for m in G.modules()) == 0  # unet_32 has no ngf*8 middle blocks

    with pytest.raises(GanforgeError, match="input_nc=3, output_nc=3, ngf=4, not input_nc=1"):
        generator_from_reference(path, netG="unet_32", ngf=4, input_nc=1)
    with pytest.raises(GanforgeError, match="Unknown netG 'unet_512'; choose one of: unet_32, unet_64"):
        generator_from_reference(path, netG="unet_512")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(path.read_bytes()[:300])
    with pytest.raises(GanforgeError, match=r"Could not read .*corrupt\.pth' as a PyTorch state dict"):
        generator_from_reference(corrupt, netG="unet_32", ngf=4)
    with pytest.raises(GanforgeError, match="No checkpoint file at"):
        generator_from_reference(tmp_path / "absent.pth")
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    with pytest.raises(GanforgeError, match="holds a list, not a PyTorch state dict"):
        generator_from_reference(listed)


# ---------------------------------------------------------------------------------------------------------
# The registered model


def test_pix2pix_registered_and_built():
    spec = MODELS.get("pix2pix")
    assert family_of("pix2pix").task.__name__ == "Pix2PixTask" and spec.config_cls is Pix2PixConfig
    nets = build_model("pix2pix", {"image_size": 64, "netG": "unet_64", "ngf": 8, "ndf": 8})
    G, D = nets["G"], nets["D"]
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    b = G(a)
    assert b.shape == (2, 3, 64, 64)
    assert D(torch.cat([a, b], 1)).shape == (2, 1, 6, 6)
    assert D.input_nc == 6
    pixel = build_model("pix2pix", {"image_size": 32, "netG": "unet_32", "netD": "pixel", "ngf": 4, "ndf": 4,
                                    "input_nc": 1, "output_nc": 2})["D"]
    assert isinstance(pixel, PixelDiscriminator) and pixel.input_nc == 3
    deep = build_model("pix2pix", {"image_size": 64, "netG": "unet_64", "netD": "n_layers", "n_layers_D": 2,
                                   "ngf": 4, "ndf": 4})["D"]
    assert deep.n_layers == 2


def test_pix2pix_initialisation():
    torch.manual_seed(0)
    G = build_model("pix2pix", {"image_size": 64, "netG": "unet_64", "ngf": 16, "ndf": 16})["G"]
    w = G.up[1].conv.weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    bn = G.down[2].norm
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0
    assert G.up[0].conv.bias.abs().max() == 0
    G = build_model("pix2pix", {"image_size": 64, "netG": "unet_64", "ngf": 16, "ndf": 16, "init_gain": 0.1})["G"]
    assert abs(G.up[1].conv.weight.std().item() - 0.1) < 0.01


@pytest.mark.parametrize("options,message", [
    ({"netG": "resnet_9blocks"}, "Unknown netG 'resnet_9blocks'; choose one of: unet_32, unet_64, unet_128, unet_256."),
    ({"image_size": 200}, "netG unet_256 needs image sizes divisible by 256, got 200; use images of a multiple of 256"),
    ({"image_size": 96}, "divisible by 256, got 96; use model.netG=unet_32, or leave netG out to have it chosen"),
    ({"image_size": 384}, "use model.netG=unet_128,"),
    ({"netD": "multiscale"}, "Unknown netD 'multiscale'; choose one of: basic, n_layers, pixel."),
    ({"norm": "group"}, "Unknown norm 'group'"),
    ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ({"ngf": 0}, "ngf must be a positive integer, got 0"),
    ({"image_size": 32, "netG": "unet_32", "netD": "n_layers", "n_layers_D": 4}, "at least 48 pixels, got 32"),
])
def test_pix2pix_config_errors(options, message):
    with pytest.raises(GanforgeError) as info:
        model_config("pix2pix", options)
    assert message in str(info.value)
    assert str(info.value).count(". ") == 0  # one sentence
