"""CycleGAN (Zhu et al. 2017): unpaired translation between two domains, G_A: A -> B and G_B: B -> A kept
each other's inverse by the cycle losses, as junyanz/pytorch-CycleGAN-and-pix2pix builds it. Reference
checkpoints: its ``latest_net_G_A.pth`` / ``latest_net_G_B.pth``."""

from __future__ import annotations

from torch import nn

from ..data.unaligned import translation_split
from ..errors import GanforgeError
from ..models.cyclegan import CYCLEGAN, generator_from_reference
from ..pipelines import CycleGANPipeline
from ..tasks.cyclegan import CycleGANTask
from .base import Family, ReferenceFiles, ReferenceImporter
from .data import held_out_pairs, unaligned_data
from .reference import is_two_way, sibling_G_B


def _load_reference(files: ReferenceFiles, state: dict) -> CycleGANPipeline:
    """G_A (``path``) and/or G_B (``path_B``, or ``latest_net_G_B.pth`` found beside ``latest_net_G_A.pth``);
    ``input_nc`` / ``output_nc`` are the channels of domains A and B, read from the weights when not given."""
    o = {"netG": "resnet_9blocks", "norm": "instance", **{k: v for k, v in files.options.items() if v is not None}}
    path_A, path_B, found = files.path, files.path_B, None
    if path_A is not None and path_A.name.endswith("net_G_B.pth") and path_B is None:
        path_A, path_B = None, path_A  # G_B alone: B -> A
    elif path_A is not None and path_B is None:
        path_B = found = sibling_G_B(path_A)
    a_in, b_in, ngf = o.get("input_nc"), o.get("output_nc"), o.get("ngf")
    nets: dict[str, nn.Module] = {}
    if path_A is not None:
        nets["G_A"] = generator_from_reference(state, o["netG"], o["norm"], a_in, b_in, ngf)
    if path_B is not None:
        nets["G_B"] = generator_from_reference(state if path_A is None else path_B, o["netG"], o["norm"], b_in, a_in,
                                               ngf)
    first = nets.get("G_A")
    a_nc = first.input_nc if first is not None else nets["G_B"].output_nc
    b_nc = first.output_nc if first is not None else nets["G_B"].input_nc
    if "G_A" in nets and "G_B" in nets and (nets["G_B"].input_nc, nets["G_B"].output_nc) != (b_nc, a_nc):
        raise GanforgeError(f"G_A maps {a_nc} to {b_nc} channels but G_B maps {nets['G_B'].input_nc} to "
                            f"{nets['G_B'].output_nc}; give the G_A and G_B of one CycleGAN.")
    G = first if first is not None else nets["G_B"]
    width = G.stem.conv.out_channels if hasattr(G, "stem") else G.down[0].conv.out_channels
    cfg = CYCLEGAN.config({"netG": o["netG"], "norm": o["norm"], "input_nc": int(a_nc), "output_nc": int(b_nc),
                           "ngf": int(width), "image_size": 256})
    record = {"from_reference": str(path_A) if path_A is not None else None,
              "from_reference_B": str(path_B) if path_B is not None else None,
              "netG": o["netG"], "norm": o["norm"], "input_nc": int(a_nc), "output_nc": int(b_nc),
              **({"found_G_B": str(found)} if found is not None else {})}
    for net in nets.values():
        net.to(files.device).eval()
    return CycleGANPipeline("cyclegan", cfg, nets, {}, {"mode": files.mode, "seed": files.seed, "record": record},
                            files.device)


def _read_split(source, split, root, data_direction, direction, derive, size, n, with_total=False):
    """A split of two unaligned domains: the input domain's images of ``direction`` (targets when paired)."""
    return translation_split(source, split, root, data_direction or "AtoB", direction, size, n,
                             with_total=with_total)


FAMILY = Family(
    name="cyclegan",
    models=(CYCLEGAN,),
    task=CycleGANTask,
    pipeline=CycleGANPipeline,
    offers=frozenset({"translate", "cycle", "export"}),
    load_data=unaligned_data,
    held_out=held_out_pairs,
    reference=ReferenceImporter("junyanz CycleGAN generators (latest_net_G_A.pth / latest_net_G_B.pth)",
                                lambda files, state: is_two_way(files), _load_reference),
    read_split=_read_split,
    description="unpaired translation between two domains (two generators, cycle losses)",
)
