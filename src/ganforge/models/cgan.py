"""Class-conditional GANs in a DCGAN backbone: cGAN (Mirza & Osindero 2014), projection D (Miyato &
Koyama 2018) and ACGAN (Odena et al. 2017).

Generator (all variants): the label enters as a one-hot vector concatenated to z, as in Mirza &
Osindero, so G is the DCGAN generator with ``nz + num_classes`` input channels. With ``g_cond="cbn"`` every
batch norm of G also takes its scale and shift from the label (conditional batch norm, de Vries et al. 2017, as
in the generators of Miyato & Koyama 2018). G also accepts a soft label (a float [N, K] blend of one-hot rows),
which the latent tools use to move between classes.

Self-conditioned (``clusters=K``, Liu et al. 2020): the labels are K k-means clusters of the training images
(found before training by ``data/clusters.py``), not anyone's classes, and the model draws each sample's cluster
by its share of the training images: a conditional GAN's easier game for data without labels, sampled as an
unconditional GAN is.

Discriminator, by ``cond``:

* ``concat``: the paper's input concatenation: K label planes (one-hot, broadcast over the image)
  are stacked onto the image channels, then the DCGAN discriminator; returns logits [N].
* ``projection``: the DCGAN discriminator body phi(x) [N, ch, b, b], the unconditional head (its last
  convolution) plus the projection term sum_{c,h,w} embed(y)_c * phi(x)_{c,h,w}; returns logits [N].
* ``acgan``: the unconditional DCGAN discriminator plus an auxiliary classifier head on the same
  features; returns (logits [N], class logits [N, K]); the task adds the classification losses.

``classifier=True`` puts the same classifier head beside a concat or projection D: D then returns (its
conditional logits [N], class logits [N, K]), and the task adds ACGAN's losses weighted by ``cls_weight``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec, init_normal_
from .dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator, _base_and_ups, spectral_normalize
from .layers import FullMapConv2d, is_channels_last

CONDITIONINGS = ("concat", "projection", "acgan")
G_CONDITIONINGS = ("concat", "cbn")


def label_matrix(y: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Labels as float [N, K]: int64 [N] class indices become one-hot rows; float [N, K] pass through."""
    if y.dim() == 1 and not torch.is_floating_point(y):
        if not torch.compiler.is_compiling() and y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise GanforgeError(f"Class labels must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}.")
        return F.one_hot(y, num_classes).to(dtype)
    if y.dim() == 2 and y.shape[1] == num_classes:
        return y.to(dtype)
    raise GanforgeError(f"Labels must be int64 [N] or float [N, {num_classes}], got shape {tuple(y.shape)}.")


@dataclass
class CGANConfig(DCGANConfig):
    image_size: int = 28
    channels: int = 1
    num_classes: int = 0  # number of classes; 0 = take it from the training data's labels
    cond: str = "projection"  # how D sees the label: concat (Mirza & Osindero) | projection | acgan
    # how G sees the label: concat (a one-hot vector beside z, Mirza & Osindero) | cbn (the same, and every batch
    # norm's scale and shift chosen by the label: conditional batch norm, de Vries et al. 2017, as in the
    # generators of Miyato & Koyama 2018)
    g_cond: str = "concat"
    # an auxiliary classifier head on D's features beside a concat or projection D (an acgan D always has one):
    # D also returns class logits, and the task adds ACGAN's classification losses, weighted by task.cls_weight
    classifier: bool = False
    # > 0: self-conditioned (Liu et al. 2020): the labels are this many k-means clusters of the training images,
    # found before training (data/clusters.py), not the data's classes, and samples draw each image's cluster by
    # its share of the data, so the model samples the whole data set as an unconditional GAN does
    clusters: int = 0
    cluster_sizes: list[int] = field(default_factory=list)  # training images per cluster (filled from the data)

    needs_labels = True  # class attribute (not an option): training data must be labelled (or clustered)

    def validate(self) -> None:
        if self.arch != "examples":
            raise GanforgeError("cgan uses the pytorch/examples DCGAN backbone; leave arch at 'examples'.")
        super().validate()
        if self.cond not in CONDITIONINGS:
            raise GanforgeError(f"Unknown cgan conditioning {self.cond!r}; choose one of: {', '.join(CONDITIONINGS)}.")
        if self.g_cond not in G_CONDITIONINGS:
            raise GanforgeError(f"Unknown cgan generator conditioning g_cond={self.g_cond!r}; choose one of: "
                                f"{', '.join(G_CONDITIONINGS)}.")
        if self.num_classes < 0:
            raise GanforgeError(f"cgan option num_classes must be positive, got {self.num_classes}.")
        if self.clusters < 0 or self.clusters == 1:
            raise GanforgeError(f"cgan option clusters must be 0 (the data's labels) or at least 2, "
                                f"got {self.clusters}.")
        if self.clusters and self.num_classes and self.num_classes != self.clusters:
            raise GanforgeError(f"cgan options num_classes={self.num_classes} and clusters={self.clusters} disagree; "
                                "leave num_classes out, it follows the clusters.")
        if self.cluster_sizes and (len(self.cluster_sizes) != self.clusters or min(self.cluster_sizes) < 1):
            raise GanforgeError(f"cgan option cluster_sizes must hold one positive count per cluster "
                                f"({self.clusters}); leave it out, it is filled from the data.")

    @property
    def has_classifier(self) -> bool:
        """Whether D has a classifier head (acgan, or classifier=True), so returns class logits too."""
        return self.cond == "acgan" or self.classifier

    def label_prior(self) -> torch.Tensor | None:
        """float32 [K]: the share of the training images in each cluster, by which a self-conditioned model draws
        its labels; None when the labels are the data's classes (drawn uniformly)."""
        if not self.clusters or not self.cluster_sizes:
            return None
        sizes = torch.tensor(self.cluster_sizes, dtype=torch.float64)
        return (sizes / sizes.sum()).float()


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-channel scale and shift are the label's (de Vries et al. 2017): the batch is
    normalised without affine parameters, then scaled by ``labels @ gain`` and shifted by ``labels @ bias``
    (one row of each per class; a soft label blends the rows). Gains start at N(1, 0.02), biases at 0, as a
    DCGAN batch norm's do. The running statistics are those of an ordinary batch norm (``self.bn``), so the EMA
    generator's re-estimation finds them."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Parameter(torch.empty(num_classes, channels).normal_(1.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(num_classes, channels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        gain, bias = (labels.to(h.dtype) @ w.to(h.dtype) for w in (self.gain, self.bias))
        return h * gain[:, :, None, None] + bias[:, :, None, None]


class ConditionalGenerator(nn.Module):
    """(z [N, nz], labels int64 [N] or float [N, K]) -> images [N, C, S, S] in [-1, 1].

    ``g_cond="cbn"`` also gives the label to every batch norm (:class:`ConditionalBatchNorm2d`) in place of
    the DCGAN generator's own."""

    def __init__(self, image_size: int, channels: int, nz: int, ngf: int, num_classes: int,
                 g_cond: str = "concat") -> None:
        super().__init__()
        self.nz, self.num_classes = nz, num_classes
        self.net = DCGANGenerator(image_size, channels, nz + num_classes, ngf)
        self.cbn = g_cond == "cbn"
        if self.cbn:
            for i, m in enumerate(self.net.main):
                if isinstance(m, nn.BatchNorm2d):
                    self.net.main[i] = ConditionalBatchNorm2d(m.num_features, num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        labels = label_matrix(y, self.num_classes, z.dtype)
        h = torch.cat([z, labels], dim=1)
        if not self.cbn:
            return self.net(h)
        h = h.view(h.shape[0], -1, 1, 1)
        for m in self.net.main:
            h = m(h, labels) if isinstance(m, ConditionalBatchNorm2d) else m(h)
        return h


def projection_term(h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """sum_{c,h,w} e[n, c] * h[n, c, h, w] -> [N], multiplied in h's memory order: for channels_last features the
    product runs over (n, h, w, c), so the gradient it sends back is channels_last like the head's. (Multiplied
    in (n, c, h, w) order its gradient comes back contiguous, and the leaky ReLU's backward below it, meeting
    two layouts, took 7x as long.)"""
    if is_channels_last(h):
        return (h.permute(0, 2, 3, 1) * e[:, None, None, :]).sum(dim=(1, 2, 3))
    return (h * e[:, :, None, None]).sum(dim=(1, 2, 3))


class ConditionalDiscriminator(nn.Module):
    """(images [N, C, S, S], labels) -> logits [N], or (logits [N], class logits [N, K]) with a classifier head
    (``classifier``: what :attr:`CGANConfig.has_classifier` says)."""

    def __init__(self, image_size: int, channels: int, ndf: int, num_classes: int, cond: str,
                 norm: str = "batch", classifier: bool = False) -> None:
        super().__init__()
        self.num_classes, self.cond = num_classes, cond
        in_ch = channels + (num_classes if cond == "concat" else 0)
        d = DCGANDiscriminator(image_size, in_ch, ndf, norm)
        self.body = d.main[:-1]  # phi(x): [N, ch, b, b]
        self.head = d.main[-1]  # the unconditional output convolution (b x b -> 1)
        ch = self.head.in_channels
        base, _ = _base_and_ups(image_size)
        if cond == "projection":
            self.embed = nn.Embedding(num_classes, ch)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if classifier:
            self.classifier = FullMapConv2d(ch, num_classes, base, 1, 0)
            init_normal_(self.classifier)
        if norm == "spectral":  # the body and head are normalised already (DCGANDiscriminator)
            for name in ("embed", "classifier"):
                if hasattr(self, name):
                    spectral_normalize(getattr(self, name))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        embed = self.embed.weight if self.cond == "projection" else None
        if self.cond == "concat":
            onehot = label_matrix(y, self.num_classes, x.dtype)
            planes = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, planes], 1)
        h = self.body(x)
        out = self.head(h).view(-1)
        if self.cond == "projection":
            e = label_matrix(y, self.num_classes, h.dtype) @ embed.to(h.dtype)  # [N, ch]
            out = out + projection_term(h, e)
        if hasattr(self, "classifier"):
            return out, self.classifier(h).flatten(1)
        return out


def build_cgan(cfg: CGANConfig) -> dict[str, nn.Module]:
    k = cfg.num_classes or cfg.clusters
    if k < 1:
        raise GanforgeError("cgan needs the number of classes; train on labelled data (a dataset with labels or "
                            "a folder with one subfolder per class), set model.num_classes, or set model.clusters "
                            "for unlabelled data.")
    return {
        "G": ConditionalGenerator(cfg.image_size, cfg.channels, cfg.nz, cfg.ngf, k, cfg.g_cond),
        "D": ConditionalDiscriminator(cfg.image_size, cfg.channels, cfg.ndf, k, cfg.cond, cfg.d_norm,
                                       cfg.has_classifier),
    }


CGAN = ModelSpec("cgan", CGANConfig, build_cgan,
    "class-conditional DCGAN: D by concat (Mirza & Osindero), projection, or acgan")
