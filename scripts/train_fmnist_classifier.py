"""Train the ``fmnist`` extractor's classifier and write the weights that ship with ganforge.

    .venv/bin/python scripts/train_fmnist_classifier.py                  # the shipped weights
    .venv/bin/python scripts/train_fmnist_classifier.py --epochs 2 --out /tmp/fmnist.safetensors

Trains :class:`ganforge.metrics.fmnist.FashionClassifier` on the Fashion-MNIST train split (60k),
evaluates on the test split (10k) after every epoch and writes the final weights (float32
safetensors, metadata: test accuracy, epochs, seed, torch version, ...) atomically to ``--out``
(default: ``src/ganforge/metrics/weights/fmnist_classifier.safetensors``).

Recipe: AdamW (weight decay 5e-4), one-cycle learning rate (peak 3e-3), label smoothing 0.1,
batch 128; augmentation: random horizontal flips (random shifts by ``--shift`` pixels are off by
default: in this short schedule they cost more in fit than they gain in generalisation). Everything
random comes from one ``torch.Generator`` seeded with ``--seed`` (data order, augmentation) plus
``torch.manual_seed(seed)`` (initialisation, dropout), so a rerun on the same machine and torch
version gives the same weights (one CPU thread by default: faster than two on a shared 2-core
machine, and the thread count can change the float sums). The convolutions run in channels-last
layout under bf16 autocast (``--precision``; the weights and optimiser stay float32, and the saved
weights are float32).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge import load_dataset
from ganforge.metrics.fmnist import WEIGHTS_FILE, FashionClassifier


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1, 28, 28] -> float [N, 1, 28, 28] in [-1, 1] (as the extractor prepares 28x28 gray images)."""
    return images.float() / 127.5 - 1.0


def augment(x: torch.Tensor, gen: torch.Generator, shift: int = 0, resample: float = 0.0) -> torch.Tensor:
    """Augment a batch x [N, 1, 28, 28] in [-1, 1]: random horizontal flips; random shifts by up to ``shift``
    pixels (black fill); for a random ``resample`` fraction of the images, the round trip that images of
    another size take in the extractor: resized to a random size in 32..64 (nearest, bilinear or bicubic),
    then back to 28x28 by bilinear antialiased interpolation. This keeps the classifier's predictions
    stable for generators that work at a larger size (mild blur otherwise costs several points)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        rows = (dy.view(n, 1) + torch.arange(h)).view(n, 1, h, 1)
        cols = (dx.view(n, 1) + torch.arange(w)).view(n, 1, 1, w)
        x = padded[torch.arange(n).view(n, 1, 1, 1), torch.zeros(1, 1, 1, 1, dtype=torch.long), rows, cols]
    if resample > 0:
        pick = (torch.rand(n, generator=gen) < resample).nonzero().squeeze(1)
        size = int(torch.randint(32, 65, (1,), generator=gen))
        mode = ("nearest", "bilinear", "bicubic")[int(torch.randint(0, 3, (1,), generator=gen))]
        if len(pick) > 0:
            y = F.interpolate(x[pick], size=(size, size), mode=mode,
                              **({} if mode == "nearest" else {"align_corners": False}))
            y = F.interpolate(y, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            x = x.clone()
            x[pick] = y.clamp(-1.0, 1.0)
    return x


@torch.no_grad()
def accuracy(model: FashionClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for xb, yb in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        correct += (model(to_input(xb)).argmax(1) == yb).sum().item()
    return correct / len(labels)


def save_atomic(model: FashionClassifier, out: Path, metadata: dict[str, str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)  # safetensors creates its files owner-only; the package file must be readable by all
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--shift", type=int, default=0, help="augmentation: random shifts by up to this many pixels")
    p.add_argument("--resample", type=float, default=0.3,
                   help="augmentation: fraction of images resized to 32..64 pixels and back (see augment)")
    p.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    p.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files (default: search)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                   help="autocast dtype for matmuls and convolutions (CPU)")
    p.add_argument("--min-accuracy", type=float, default=0.93,
                   help="exit with an error, writing nothing, when the final test accuracy is below this")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train = load_dataset("fashion-mnist", root=args.data_root, split="train")
    test = load_dataset("fashion-mnist", root=args.data_root, split="test")
    model = FashionClassifier().to(memory_format=torch.channels_last)
    n_params = sum(t.numel() for t in model.parameters())
    steps_per_epoch = len(train) // args.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext())
    print(f"FashionClassifier: {n_params} parameters; {len(train)} train / {len(test)} test images; "
          f"{args.epochs} epochs x {steps_per_epoch} steps of {args.batch_size}; {torch.get_num_threads()} threads; "
          f"{args.precision}", flush=True)

    start = time.perf_counter()
    acc = 0.0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train), generator=gen)[:steps_per_epoch * args.batch_size]
        total_loss = 0.0
        for idx in order.view(steps_per_epoch, args.batch_size):
            x = augment(to_input(train.images[idx]), gen, args.shift, args.resample)
            x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                loss = F.cross_entropy(model(x), train.labels[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item()
        acc = accuracy(model, test.images, test.labels)
        print(f"epoch {epoch + 1:2d}/{args.epochs}  loss {total_loss / steps_per_epoch:.4f}  "
              f"test accuracy {acc:.4f}  {time.perf_counter() - start:.0f}s", flush=True)

    seconds = time.perf_counter() - start
    if acc < args.min_accuracy:
        print(f"Test accuracy {acc:.4f} is below --min-accuracy {args.min_accuracy}; nothing written.", file=sys.stderr)
        return 1
    metadata = {"model": "FashionClassifier", "test_accuracy": f"{acc:.4f}", "epochs": str(args.epochs),
                "seed": str(args.seed), "batch_size": str(args.batch_size), "lr": str(args.lr),
                "shift": str(args.shift), "resample": str(args.resample), "precision": args.precision,
                "threads": str(torch.get_num_threads()), "torch": torch.__version__,
                "train_seconds": f"{seconds:.0f}", "script": "scripts/train_fmnist_classifier.py"}
    save_atomic(model, args.out, metadata)
    print(f"final test accuracy {acc:.4f} after {args.epochs} epochs in {seconds:.0f}s; wrote {args.out} "
          f"({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
