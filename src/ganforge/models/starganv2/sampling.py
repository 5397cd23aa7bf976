"""StarGAN v2's sample sheets, laid out as the official ``core/utils.py`` lays them out."""

from __future__ import annotations

import torch

from ganforge.models.starganv2.translator import Starganv2Translator


@torch.no_grad()
def reference_grid(net: Starganv2Translator, sources: torch.Tensor, refs: torch.Tensor, ref_domains: torch.Tensor,
                   device: torch.device) -> tuple[torch.Tensor, int]:
    """The reference-guided grid (``translate_using_reference``): a blank (white) corner and the sources
    across the top; below, one row per reference: the reference, then every source in its style.
    Returns (images row-major in [-1, 1], images per row)."""
    x = sources.to(device)
    masks = net.masks(x)
    rows = [torch.cat([torch.ones_like(sources[:1]), sources.float().cpu()])]
    for ref, y in zip(refs, ref_domains):
        s = net.style_encoder(ref[None].to(device), y[None].to(device)).expand(len(x), -1)
        fakes = net.generator(x, s, masks).float().cpu()
        rows.append(torch.cat([ref[None].float().cpu(), fakes]))
    return torch.cat(rows), len(sources) + 1


@torch.no_grad()
def latent_grid(net: Starganv2Translator, sources: torch.Tensor, latents: torch.Tensor, num_domains: int,
                device: torch.device) -> tuple[torch.Tensor, int]:
    """The latent-guided sheet (``translate_using_latent``, psi 1): the sources as the first row, then one
    row per (domain, latent code): every source translated to that domain with that code."""
    x = sources.to(device)
    masks = net.masks(x)
    rows = [sources.float().cpu()]
    for domain in range(num_domains):
        y = torch.full((len(x),), domain, dtype=torch.long, device=device)
        for z in latents:
            s = net.mapping_network(z[None].to(device).expand(len(x), -1), y)
            rows.append(net.generator(x, s, masks).float().cpu())
    return torch.cat(rows), len(sources)
