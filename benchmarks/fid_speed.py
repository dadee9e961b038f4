"""Time to compute FID on this machine, and where the time goes.

- fmnist: N generated 28x28 grayscale images (a DCGAN generator, streamed in batches) against N
  Fashion-MNIST training images, features from ganforge's own classifier.
- inception: N generated 64x64 RGB images, resized to 299 inside the FID Inception-v3. The real
  TF-ported weights cannot be downloaded here, so the network gets random weights: the compute is
  the same, the FID value is meaningless.

The generated side is streamed (one batch of images alive at a time); the reference side is timed
once uncached and once from the on-disk cache. Prints one line per phase.

    python benchmarks/fid_speed.py                      # fmnist 10k, inception 10k
    python benchmarks/fid_speed.py --n-inception 1000   # shorter
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import ganforge
from ganforge.metrics.evaluation import batches_from_array, dataset_features, extract, get_extractor
from ganforge.metrics.fid import fid_from_features
from ganforge.viz import to_uint8


def generated_batches(G, n: int, nz: int, batch: int, timer: dict):
    g = torch.Generator().manual_seed(0)
    for start in range(0, n, batch):
        t = time.perf_counter()
        with torch.no_grad():
            x = to_uint8(G(torch.randn(min(batch, n - start), nz, generator=g)))
        timer["generate"] += time.perf_counter() - t
        yield x


class Timed:
    """Wrap an extractor to time its forward calls."""

    def __init__(self, ex, timer):
        self.ex, self.timer = ex, timer

    def parameters(self):
        return self.ex.parameters()

    def __call__(self, x):
        t = time.perf_counter()
        out = self.ex(x)
        self.timer["features"] += time.perf_counter() - t
        return out


def run(name: str, ex, G, nz: int, n: int, batch: int, reference) -> None:
    timer = {"generate": 0.0, "features": 0.0}
    t0 = time.perf_counter()
    fake = extract(generated_batches(G, n, nz, batch, timer), Timed(ex, timer))
    t_gen_side = time.perf_counter() - t0
    t_ref, real = reference()
    t = time.perf_counter()
    fid = fid_from_features(real.features, fake.features)
    t_fid = time.perf_counter() - t
    print(f"{name}: N={n}, feature dim {fake.features.shape[1]}")
    print(f"  generated side {t_gen_side:7.1f} s  (generator {timer['generate']:.1f} s, "
          f"features {timer['features']:.1f} s = {n / max(timer['features'], 1e-9):.0f} img/s, "
          f"rest {t_gen_side - timer['generate'] - timer['features']:.1f} s)")
    for label, secs in t_ref:
        print(f"  reference side {secs:7.1f} s  ({label})")
    print(f"  statistics + Frechet distance {t_fid:.2f} s")
    print(f"  total with cached reference {t_gen_side + t_fid:.1f} s; FID = {fid:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-fmnist", type=int, default=10000)
    p.add_argument("--n-inception", type=int, default=10000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    cache = tempfile.mkdtemp()
    os.environ["XDG_CACHE_HOME"] = cache

    if args.n_fmnist:
        ex = get_extractor("fmnist")
        G = ganforge.build_model("dcgan", {"image_size": 28, "channels": 1})["G"].eval()

        def reference():
            times = []
            for label in ("uncached", "from cache"):
                t = time.perf_counter()
                real, _ = dataset_features("fashion-mnist", "train", args.n_fmnist, ex)
                times.append((label, time.perf_counter() - t))
            return times, real

        run("fmnist", ex, G, 100, args.n_fmnist, args.batch, reference)

    if args.n_inception:
        from ganforge.metrics.inception import FIDInceptionV3

        weights = os.path.join(cache, "random-inception.pth")
        torch.save(FIDInceptionV3().state_dict(), weights)
        ex = get_extractor("inception", weights)
        G = ganforge.build_model("dcgan", {"image_size": 64, "channels": 3})["G"].eval()

        def reference():
            m = min(args.n_inception, 2500)  # the reference costs the same per image; cached after the first run
            real_images = torch.randint(0, 256, (m, 3, 64, 64), dtype=torch.uint8)
            t = time.perf_counter()
            real = extract(batches_from_array(real_images, args.batch), ex)
            return [(f"{m} random reference images, uncached", time.perf_counter() - t)], real

        run("inception (random weights)", ex, G, 100, args.n_inception, args.batch, reference)


if __name__ == "__main__":
    main()
