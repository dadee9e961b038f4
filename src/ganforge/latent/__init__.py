"""Latent-space tools: interpolation, vector arithmetic, dimension and PCA sweeps, truncation.

    import ganforge
    from ganforge import latent
    model = ganforge.load("runs/demo")
    latent.interpolate(model, [1, 2, 3], steps=8, gif=True, out="pictures")
    latent.arithmetic(model, "a - b + c", {"a": "seeds:1,5,9", "b": "grid:7,12", "c": "class:Sandal"},
                      out="pictures")
    latent.sweep_dimension(model, 5, seeds=[0, 1], out="pictures")
    latent.sweep_pca(model, 6, seeds=[0], out="pictures")
    latent.truncation(model, [None, 2, 1, 0.5, 0.25], n=10, out="pictures")

**Seeds.** One seed gives one latent vector, ``z = torch.randn(nz, generator=torch.Generator().manual_seed(seed))``
(:func:`z_from_seeds`); every tool builds its latents from seeds this way, so a picture is redrawn exactly
from the seeds it records.

**Records.** With ``out`` (a folder) each tool writes ``TOOL.png`` (``TOOL.gif`` too for animated
interpolations) and ``TOOL.json``: the tool, the checkpoint folder, its step, whether EMA weights were
used, the seeds, classes, parameters and derived numbers. :func:`regenerate` redraws the picture from
that JSON alone (byte-identical on the same device and PyTorch build). Every tool returns a
:class:`LatentFigure` (uint8 images, the latents they came from, the PIL picture, the record).

**Conditional models** (``model.num_classes > 0``) need a class for every image. ``class_`` (a
class name, case-insensitive, or an index) fixes it for every image; without it the class of the
image of seed ``s`` is ``s % num_classes`` (recorded). Class interpolation feeds the generator soft
labels, ``inputs["y_soft"]`` = float [N, num_classes] blends of one-hot vectors; hard classes are
``inputs["y"]`` = int64 [N]. Class options on an unconditional model are an error.

Tools:

- :func:`interpolate`: paths through two or more seeds' latents (rows = paths), linear or spherical;
  :func:`interpolate_classes`: a fixed latent while the class label blends from class to class.
- :func:`arithmetic`: Radford et al. (2015) figure 7 - means of groups of latents combined by an
  expression such as ``a - b + c``; the result image plus noisy variants.
- :func:`sweep_dimension`: one latent coordinate over ``[-radius, radius]``; :func:`sweep_pca`: the same
  along GANSpace directions (:func:`pca_directions`).
- :func:`truncation`: the BigGAN truncation trick at several thresholds with a diversity number (and,
  for one-channel images, the Fashion-MNIST classifier's confidence) per row.
- :func:`project`: a real image's latent by optimisation (GAN inversion), saved as ``project.npz``;
  every tool takes such a file where it takes a seed, so a photo is interpolated and edited like a sample.

The package: ``vectors`` (latents from seeds, slerp / lerp paths, sweeps, expressions), ``groups``
(arithmetic operand groups), ``pca`` (GANSpace directions), ``render`` (classes and images of latents
with a loaded model), ``tools`` (the tools above), ``figure`` (:class:`LatentFigure` and how it is
written), ``records`` (:func:`read_record`, :func:`regenerate`). The drawing is in
:mod:`ganforge.viz.latent`.
"""

from ..data import resolve_class
from .figure import LatentFigure
from .groups import GroupLatents, GroupSpec, group_latents, parse_group, select_by_class
from .pca import PCADirections, default_layer, pca_directions
from .project import load_projection, project
from .records import TOOLS, read_record, regenerate
from .render import fmnist_extractor, model_class_names, num_classes, render
from .tools import arithmetic, diversity, interpolate, interpolate_classes, sweep_dimension, sweep_pca, truncation
from .vectors import Z_RULE, combine, interpolation_path, lerp, parse_expression, slerp, sweep_latents, z_from_seeds

__all__ = [
    "TOOLS", "Z_RULE", "GroupLatents", "load_projection", "project",
    "GroupSpec", "LatentFigure", "PCADirections", "arithmetic", "combine",
    "default_layer", "diversity", "fmnist_extractor", "group_latents", "interpolate", "interpolate_classes",
    "interpolation_path", "lerp", "model_class_names", "num_classes", "parse_expression", "parse_group",
    "pca_directions", "read_record", "regenerate", "render", "resolve_class", "select_by_class", "slerp",
    "sweep_dimension", "sweep_latents", "sweep_pca", "truncation", "z_from_seeds",
]
