"""sync_bn=true: PyTorch's SyncBatchNorm on the trained networks under torchrun on CUDA; refused on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge
from conftest import tiny_config
from ganforge.models import count_parameters
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.train.distributed import convert_sync_bn


@pytest.mark.parametrize("make", [lambda: DCGANGenerator(image_size=32, channels=3, nz=16, ngf=8),
                                  lambda: DCGANDiscriminator(image_size=32, channels=3, ndf=8)])
def test_conversion_keeps_parameters_and_state_dict_keys(make):
    torch.manual_seed(0)
    net = make()
    before = net.state_dict()
    batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert batch_norms > 0
    count = count_parameters(net)
    converted = convert_sync_bn(net)
    kinds = [type(m) for m in converted.modules()]
    assert kinds.count(nn.SyncBatchNorm) == batch_norms
    assert not any(t in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d) for t in kinds)
    assert count_parameters(converted) == count
    after = converted.state_dict()
    assert list(after) == list(before)  # a checkpoint of either loads into the other
    for k in before:
        assert torch.equal(after[k], before[k]), k
    fresh = make()
    fresh.load_state_dict(after)  # a sync_bn run's weights load into the plain network (sampling, export)
    convert_sync_bn(make()).load_state_dict(before)


def test_sync_bn_is_refused_on_the_cpu_before_anything_is_written(idx_root, tmp_path, monkeypatch):
    said = "sync_bn=true needs CUDA GPUs (PyTorch's SyncBatchNorm runs on GPUs only), but the device is cpu"
    with pytest.raises(ganforge.GanforgeError, match=said.replace("(", r"\(").replace(")", r"\)")):
        tiny_config(idx_root, sync_bn=True, device="cpu")
    cfg = tiny_config(idx_root, device="auto")
    cfg.sync_bn = True  # auto, on a machine without CUDA: the trainer refuses the device it found
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ganforge.GanforgeError, match=said.replace("(", r"\(").replace(")", r"\)")):
        ganforge.train(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()
