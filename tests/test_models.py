"""Models: parameter counts, shapes, pytorch/examples compatibility, initialisation, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge
from ganforge.errors import GanforgeError
from ganforge.families import MODELS, build_model
from ganforge.models import count_parameters
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator


def _examples_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Sequential:
    """pytorch/examples dcgan/main.py Generator.main, layer for layer."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def _examples_discriminator(ndf: int = 64, nc: int = 3) -> nn.Sequential:
    """pytorch/examples dcgan/main.py Discriminator.main, ending in Sigmoid (index 12)."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


class _Holder(nn.Module):
    """pytorch/examples keeps the Sequential as ``self.main``: state_dict keys are ``main.N.*``."""

    def __init__(self, main: nn.Sequential) -> None:
        super().__init__()
        self.main = main


def _randomise_bn_stats(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_dcgan_64_rgb_matches_pytorch_examples_parameter_counts():
    nets = build_model("dcgan", {"image_size": 64, "channels": 3})
    assert count_parameters(nets["G"]) == 3_576_704
    assert count_parameters(nets["D"]) == 2_765_568
    # and so does the reference written out in this file
    assert count_parameters(_examples_generator()) == 3_576_704
    assert count_parameters(_examples_discriminator()) == 2_765_568


def test_dcgan_tutorial_arch_parameter_counts():
    nets = build_model("dcgan", {"arch": "tutorial", "image_size": 28, "channels": 1})
    # G: Dense 100->12544 (no bias) + BN1d(12544) + ConvT 256->128 5x5 + BN + ConvT 128->64 + BN + ConvT 64->1
    g = 100 * 12544 + 2 * 12544 + 256 * 128 * 25 + 2 * 128 + 128 * 64 * 25 + 2 * 64 + 64 * 1 * 25
    # D: Conv 1->64 5x5 + bias, Conv 64->128 5x5 + bias, Dense 6272->1 + bias
    d = (1 * 64 * 25 + 64) + (64 * 128 * 25 + 128) + (128 * 7 * 7 + 1)
    assert (g, d) == (2_305_472, 212_865)
    assert count_parameters(nets["G"]) == 2_305_472
    assert count_parameters(nets["D"]) == 212_865


def test_tutorial_arch_shapes():
    nets = build_model("dcgan", {"arch": "tutorial", "image_size": 28, "channels": 1})
    x = nets["G"](torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28)
    assert nets["D"](x).shape == (3,)


def test_tutorial_arch_refuses_other_sizes():
    with pytest.raises(GanforgeError, match="got image size 64"):
        build_model("dcgan", {"arch": "tutorial", "image_size": 64})


@pytest.mark.parametrize(("size", "channels"), [(16, 3), (28, 1), (32, 3), (56, 1), (64, 3), (128, 1)])
def test_dcgan_shapes_for_every_supported_size(size, channels):
    torch.manual_seed(size)
    nets = build_model("dcgan", {"image_size": size, "channels": channels, "nz": 16, "ngf": 8, "ndf": 8})
    G, D = nets["G"], nets["D"]
    with torch.no_grad():
        x = G(torch.randn(3, 16))
        assert x.shape == (3, channels, size, size)
        assert x.min().item() >= -1.0 and x.max().item() <= 1.0
        assert x.std().item() > 0  # not a constant image
        logits = D(x)
        assert logits.shape == (3,)
        assert torch.isfinite(logits).all()
        # D also takes real-shaped input, not only G's output
        assert D(torch.rand(2, channels, size, size) * 2 - 1).shape == (2,)


@pytest.mark.parametrize("size", [30, 100])
def test_dcgan_invalid_sizes_name_the_size(size):
    with pytest.raises(GanforgeError, match=f"got {size}"):
        build_model("dcgan", {"image_size": size})
    with pytest.raises(GanforgeError, match=f"got {size}"):
        ganforge.info("dcgan", {"image_size": size})


def test_dcgan_examples_state_dict_keys():
    nets = build_model("dcgan", {"image_size": 64, "channels": 3})
    g_keys = list(nets["G"].state_dict())
    d_keys = list(nets["D"].state_dict())
    assert g_keys[0] == "main.0.weight"
    assert g_keys[-1] == "main.12.weight"
    assert d_keys[0] == "main.0.weight"
    assert d_keys[-1] == "main.11.weight"
    assert g_keys == list(_Holder(_examples_generator()).state_dict())
    assert d_keys == list(_Holder(_examples_discriminator()).state_dict())


def test_pytorch_examples_state_dicts_load_strictly_and_give_the_same_outputs():
    torch.manual_seed(123)
    ref_g = _Holder(_examples_generator())
    ref_d = _Holder(_examples_discriminator())
    _randomise_bn_stats(ref_g, 1)
    _randomise_bn_stats(ref_d, 2)

    G = DCGANGenerator(image_size=64, channels=3, nz=100, ngf=64)
    D = DCGANDiscriminator(image_size=64, channels=3, ndf=64)
    assert not torch.equal(G.main[0].weight, ref_g.main[0].weight)  # different before loading
    G.load_state_dict(ref_g.state_dict(), strict=True)
    D.load_state_dict(ref_d.state_dict(), strict=True)

    for net in (ref_g, ref_d, G, D):
        net.eval()
    z = torch.randn(4, 100, 1, 1)  # the examples' noise shape; ganforge also takes [N, nz]
    with torch.no_grad():
        ref_images = ref_g.main(z)
        images = G(z)
        # G's first layer runs as a matrix product (LatentConvTranspose2d), the examples' as a deconvolution:
        # the same sums in another order, so equal within float32 rounding, not bit for bit
        torch.testing.assert_close(images, ref_images, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(G(z.view(4, 100)), images, rtol=0, atol=0)
        ref_prob = ref_d.main(ref_images).view(-1, 1).squeeze(1)  # examples' D output: [N] probabilities
        logits = D(images)
        assert logits.shape == ref_prob.shape == (4,)
        torch.testing.assert_close(torch.sigmoid(logits), ref_prob, rtol=1e-6, atol=1e-6)


def test_latent_transposed_convolution_is_the_deconvolution_it_replaces():
    from ganforge.models.layers import LatentConvTranspose2d

    torch.manual_seed(0)
    for bias in (False, True):
        plain = nn.ConvTranspose2d(10, 6, 7, 1, 0, bias=bias)
        latent = LatentConvTranspose2d(10, 6, 7, 1, 0, bias=bias)
        latent.load_state_dict(plain.state_dict())
        z = torch.randn(5, 10, 1, 1, requires_grad=True)
        out, ref = latent(z), plain(z)
        assert out.shape == ref.shape == (5, 6, 7, 7)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        (g_out,), (g_ref,) = (torch.autograd.grad(o.square().sum(), z) for o in (out, ref))
        torch.testing.assert_close(g_out, g_ref, rtol=1e-5, atol=1e-5)
    x = torch.randn(2, 10, 3, 3)  # not a 1x1 input: the deconvolution itself
    assert torch.equal(latent(x), nn.functional.conv_transpose2d(x, latent.weight, latent.bias))
    # the presets train in channels_last: the weight is then [nz, k, k, C] in memory, multiplied as it lies,
    # and the output comes out channels_last too
    latent = latent.to(memory_format=torch.channels_last)
    plain = plain.to(memory_format=torch.channels_last)
    z = torch.randn(5, 10, 1, 1, requires_grad=True)
    out, ref = latent(z), plain(z)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    (g_out, w_out), (g_ref, w_ref) = (torch.autograd.grad(o.square().sum(), (z, n.weight))
                                      for o, n in ((out, latent), (ref, plain)))
    torch.testing.assert_close(g_out, g_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w_out, w_ref, rtol=1e-5, atol=1e-5)
    assert w_out.is_contiguous(memory_format=torch.channels_last)  # Adam keeps the weight's layout


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_full_map_convolution_is_the_convolution_it_replaces(layout):
    """D's last layer (kernel = its whole input map) runs as a matrix product: the same outputs and gradients
    as the convolution, in both layouts, including the gradient of an input-gradient penalty (R1)."""
    from ganforge.models.layers import FullMapConv2d

    torch.manual_seed(0)
    for bias, out_ch in ((False, 1), (True, 3)):
        plain = nn.Conv2d(8, out_ch, 5, 1, 0, bias=bias).to(memory_format=layout)
        full = FullMapConv2d(8, out_ch, 5, 1, 0, bias=bias).to(memory_format=layout)
        full.load_state_dict(plain.state_dict())
        x = torch.randn(6, 8, 5, 5).contiguous(memory_format=layout).requires_grad_(True)
        grads = []
        for net in (full, plain):
            out = net(x)
            assert out.shape == (6, out_ch, 1, 1)
            (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
            penalty = gx.square().sum()  # R1's double backward
            grads.append((out, gx, *torch.autograd.grad(penalty, [p for p in net.parameters()])))
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    x = torch.randn(2, 8, 7, 7)  # a larger map: the convolution itself
    assert torch.equal(full(x), nn.functional.conv2d(x, full.weight, full.bias))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_unet_innermost_stages_are_the_convolutions_they_replace(layout):
    """The U-Net's innermost stages at the smallest image size: 2x2 -> 1x1 (kernel 4, stride 2, padding 1: the
    input meets the kernel's central 2x2 taps) and back 1x1 -> 2x2, as matrix products; larger maps convolve."""
    from ganforge.models.layers import FullMapConv2d, LatentConvTranspose2d

    torch.manual_seed(0)
    pairs = ((FullMapConv2d(6, 5, 4, 2, 1, bias=True), nn.Conv2d(6, 5, 4, 2, 1, bias=True), (3, 6, 2, 2)),
             (LatentConvTranspose2d(5, 6, 4, 2, 1, bias=False), nn.ConvTranspose2d(5, 6, 4, 2, 1, bias=False),
              (3, 5, 1, 1)))
    for fast, plain, shape in pairs:
        fast.load_state_dict(plain.state_dict())
        fast, plain = fast.to(memory_format=layout), plain.to(memory_format=layout)
        x = torch.randn(shape).contiguous(memory_format=layout).requires_grad_(True)
        out, ref = fast(x), plain(x)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        (gx, gw), (rx, rw) = (torch.autograd.grad(o.square().sum(), (x, n.weight)) for o, n in ((out, fast),
                                                                                                (ref, plain)))
        torch.testing.assert_close(gx, rx, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gw, rw, rtol=1e-5, atol=1e-5)
        big = torch.randn(shape[0], shape[1], 4 * shape[2], 4 * shape[3])  # a larger image: the layer itself
        assert torch.equal(fast(big), type(plain).forward(fast, big))


def test_dcgan_initialisation_statistics():
    torch.manual_seed(0)
    nets = build_model("dcgan", {"image_size": 64, "channels": 3})
    for name, net in nets.items():
        conv = torch.cat([m.weight.detach().flatten() for m in net.modules()
                          if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
        bn_w = torch.cat([m.weight.detach() for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
        bn_b = torch.cat([m.bias.detach() for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
        assert conv.std().item() == pytest.approx(0.02, rel=0.01), name
        assert abs(conv.mean().item()) < 2e-4, name
        assert bn_w.mean().item() == pytest.approx(1.0, abs=0.005), name
        assert bn_w.std().item() == pytest.approx(0.02, rel=0.25), name
        assert torch.count_nonzero(bn_b).item() == 0, name


def test_dcgan_initialisation_is_seeded():
    torch.manual_seed(7)
    a = build_model("dcgan", {"image_size": 28, "channels": 1, "ngf": 8, "ndf": 8})
    torch.manual_seed(7)
    b = build_model("dcgan", {"image_size": 28, "channels": 1, "ngf": 8, "ndf": 8})
    for name in ("G", "D"):
        for (ka, va), (kb, vb) in zip(a[name].state_dict().items(), b[name].state_dict().items(), strict=True):
            assert ka == kb
            assert torch.equal(va, vb), ka


def test_mlp_gan_builds_and_maps_noise_to_images():
    nets = build_model("gan")
    G, D = nets["G"], nets["D"]
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 1, 28, 28)
    assert x.min().item() >= -1.0 and x.max().item() <= 1.0
    assert D(x).shape == (5,)
    g = (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
    d = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 1 + 1)
    assert count_parameters(G) == g
    assert count_parameters(D) == d
    assert ganforge.info("gan") == {"G": g, "D": d}


def test_mlp_gan_options():
    nets = build_model("gan", {"image_size": 16, "channels": 3, "nz": 8, "g_hidden": [32], "d_hidden": [16],
                               "dropout": 0.0})
    assert nets["G"](torch.randn(2, 8)).shape == (2, 3, 16, 16)
    assert not any(isinstance(m, nn.Dropout) for m in nets["D"].modules())
    with pytest.raises(GanforgeError, match="1.5"):
        build_model("gan", {"dropout": 1.5})


def test_info_returns_the_same_counts():
    assert ganforge.info("dcgan", {"image_size": 64, "channels": 3}) == {"G": 3_576_704, "D": 2_765_568}
    assert ganforge.info("dcgan", {"arch": "tutorial", "image_size": 28, "channels": 1}) == {
        "G": 2_305_472, "D": 212_865}
    nets = build_model("dcgan", {"image_size": 28, "channels": 1, "ngf": 16, "ndf": 16})
    assert ganforge.info("dcgan", {"image_size": 28, "channels": 1, "ngf": 16, "ndf": 16}) == {
        name: count_parameters(net) for name, net in nets.items()}


def test_unknown_model_option_is_named():
    with pytest.raises(GanforgeError) as err:
        build_model("dcgan", {"image_size": 64, "ngff": 32})
    assert "'ngff'" in str(err.value)
    assert "ngf" in str(err.value).split("options are", 1)[1]
    with pytest.raises(GanforgeError, match="'hidden'"):
        ganforge.info("gan", {"hidden": [10]})


def test_unknown_arch_and_non_positive_widths():
    with pytest.raises(GanforgeError, match="'resnet'"):
        build_model("dcgan", {"arch": "resnet"})
    with pytest.raises(GanforgeError, match="ngf .*got 0"):
        build_model("dcgan", {"ngf": 0})


def test_unknown_model_lists_the_registered_ones():
    assert {"dcgan", "gan"} <= set(MODELS.names())
    with pytest.raises(GanforgeError, match="'dcgna'.*dcgan, fast-style, gan"):
        build_model("dcgna")
