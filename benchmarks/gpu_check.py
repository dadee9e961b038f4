"""Checks that need GPUs (not part of the test suite; run on a machine with CUDA):

    python benchmarks/gpu_check.py

sync_bn: two NCCL processes under torchrun, each with half of a batch, against one process with the
whole batch. With ``sync_bn`` (PyTorch's SyncBatchNorm) a DCGAN discriminator's outputs and DDP-averaged
gradients must equal the single process's (TF32 off, tolerance 1e-4); without it each process normalises
by its own half, and the outputs differ (printed as the contrast). Then ``ganforge train ... sync_bn=true``
runs 20 steps under torchrun on a folder of generated images. NCCL refuses two ranks on one GPU, so the
check needs 2 GPUs; with fewer it says so and stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

BATCH = 16  # the whole batch; each of the two processes takes half
TOLERANCE = 1e-4


def sync_bn_worker() -> None:
    """One of two torchrun processes: outputs and gradients of half the batch, with and without sync_bn."""
    import torch.distributed as dist
    from torch import nn

    from ganforge.models.dcgan import DCGANDiscriminator
    from ganforge.train.distributed import convert_sync_bn

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    dist.init_process_group("nccl")
    rank, device = dist.get_rank(), torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    x = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    half = x.chunk(2)[rank]
    for sync in (True, False):
        torch.manual_seed(0)
        plain = DCGANDiscriminator(image_size=32, channels=3, ndf=16).to(device)
        net = DCGANDiscriminator(image_size=32, channels=3, ndf=16).to(device)
        net.load_state_dict(plain.state_dict())
        if sync:
            net = convert_sync_bn(net)
        ddp = nn.parallel.DistributedDataParallel(net, device_ids=[device.index])
        out = ddp(half)
        out.mean().backward()
        outs = [torch.empty_like(out) for _ in range(2)]
        dist.all_gather(outs, out.detach())
        if rank == 0:  # the single process with the whole batch
            ref = plain(x)
            ref.mean().backward()
            d_out = (torch.cat(outs) - ref.detach()).abs().max().item()
            pairs = zip(net.parameters(), plain.parameters(), strict=True)
            d_grad = max((p.grad - q.grad).abs().max().item() for p, q in pairs)
            ok = d_out <= TOLERANCE and d_grad <= TOLERANCE
            if sync:
                print(f"sync_bn, 2 NCCL processes vs 1 process with the whole batch: outputs differ by at most "
                      f"{d_out:.2e}, gradients by {d_grad:.2e} (tolerance {TOLERANCE:.0e}): {'OK' if ok else 'FAIL'}")
                if not ok:
                    sys.exit(1)
            else:
                print(f"without sync_bn (each process its own half's statistics): outputs differ by {d_out:.2e}")
    dist.destroy_process_group()


def write_images(folder: Path, n: int = 256) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def main() -> int:
    gpus = torch.cuda.device_count()
    if gpus < 2:
        print(f"sync_bn: not checked: it needs 2 GPUs for 2 NCCL processes (NCCL refuses two ranks on one GPU); "
              f"this machine has {gpus}.")
        return 0
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    rc = subprocess.call([*run, __file__, "--sync-bn-worker"])
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp) / "images")
        train = subprocess.call([*run, "-m", "ganforge", "train", "dcgan", "--data", f"{tmp}/images", "--out",
                                 f"{tmp}/run", "--steps", "20", "--batch-size", "8", "--device", "cuda",
                                 "--no-progress", "sync_bn=true", "sample_every=0", "ckpt_every=0"])
        print(f"ganforge train sync_bn=true under torchrun (2 processes, 20 steps): exit status {train}"
              f"{'' if train else ', ' + str(sorted(p.name for p in Path(tmp, 'run/checkpoints').iterdir()))}")
    return rc or train


if __name__ == "__main__":
    if "--sync-bn-worker" in sys.argv:
        sync_bn_worker()
    else:
        sys.exit(main())
