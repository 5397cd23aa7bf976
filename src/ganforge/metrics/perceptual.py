"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, with its backbone loaded offline.

The package ships its calibrated linear layers; the backbone (torchvision AlexNet or VGG16 trained on
ImageNet) is normally downloaded by torchvision. Here it comes from the weights registry instead
(``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``: checked, never downloaded), and the package
is built with a random backbone that these weights then replace.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

BACKBONES = {"alex": ("alexnet", "alexnet"), "vgg": ("vgg16", "vgg16")}  # lpips name -> (registry, torchvision)


def build_lpips(net: str = "alex", backbone_path: str | Path | None = None, allow_nonstandard: bool = False,
                backbone_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """An ``lpips.LPIPS`` in eval mode with the registry's backbone (or ``backbone_state``)."""
    import lpips
    import torchvision

    from ganforge.metrics.weights import load_weights

    if net not in BACKBONES:
        raise ValueError(f"LPIPS net '{net}' is not one of {', '.join(BACKBONES)}")
    registry_name, tv_name = BACKBONES[net]
    if backbone_state is None:
        backbone_state, _ = load_weights(registry_name, backbone_path, allow_nonstandard)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lpips passes torchvision's deprecated `pretrained=`
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    backbone = getattr(torchvision.models, tv_name)()
    backbone.load_state_dict(backbone_state)
    # lpips slices the torchvision `features` Sequential, keeping each layer's index as its name.
    for part in model.net.children():
        for index, layer in part.named_children():
            layer.load_state_dict(backbone.features[int(index)].state_dict())
    model.eval().requires_grad_(False)
    return model


@torch.no_grad()
def lpips_distance(model: nn.Module, a: torch.Tensor, b: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Per-pair LPIPS between image batches in [-1, 1], shape (N,)."""
    if a.shape != b.shape:
        raise ValueError(f"LPIPS compares images pairwise; got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    device = next(model.parameters()).device
    out = [model(x.to(device), y.to(device)).flatten() for x, y in zip(a.split(batch_size), b.split(batch_size))]
    return torch.cat(out).cpu()


def mean_pairwise_lpips(model: nn.Module, outputs: torch.Tensor | Sequence[torch.Tensor]) -> float:
    """Diversity, as the reference-guided translation papers measure it: the mean over output pairs (i < j) of the LPIPS between
    output i and output j. ``outputs``: K outputs of one input, (K, C, H, W); or K batches (N, C, H, W)
    of outputs of the same N inputs, where each pair's LPIPS is averaged over the batch (the official
    ``calculate_lpips_given_images``; pair by pair, so memory stays at two batches)."""
    if len(outputs) < 2:
        raise ValueError("diversity needs at least two images")
    if isinstance(outputs, torch.Tensor):
        i, j = torch.triu_indices(len(outputs), len(outputs), offset=1)
        return lpips_distance(model, outputs[i], outputs[j]).mean().item()
    pairs = [lpips_distance(model, outputs[i], outputs[j]).mean().item()
             for i in range(len(outputs) - 1) for j in range(i + 1, len(outputs))]
    return sum(pairs) / len(pairs)
