"""StarGAN v2's sample sheets, laid out as the official ``core/utils.py`` lays them out."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.runtime.progress import progress
from ganforge.models.starganv2.translator import Starganv2Translator

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------------
# videos (the official video_ref: each reference's style morphs into the next one's)

TAIL_FRAMES = 10  # frames held at the end of each transition, and of the video


def alphas() -> list[float]:
    """The official interpolation schedule: 0, a sigmoid from -5 to 5 in steps of 0.5, then 1 held
    for 10 frames (31 frames)."""
    return [0.0] + [1.0 / (1.0 + math.exp(-a)) for a in np.arange(-5, 5, 0.5)] + [1.0] * TAIL_FRAMES


@torch.no_grad()
def interpolation_frames(net: Starganv2Translator, x: torch.Tensor, s_prev: torch.Tensor, s_next: torch.Tensor,
                         masks) -> torch.Tensor:
    """(T, 3, 2H, N*W): each source above its translation, with the style moving from s_prev to s_next."""
    frames = []
    for alpha in alphas():
        s = torch.lerp(s_prev, s_next, alpha).expand(len(x), -1)
        fake = net.generator(x, s, masks)
        columns = torch.cat([x, fake], dim=2).float().cpu()  # (N, 3, 2H, W)
        frames.append(torch.cat(list(columns), dim=2))  # side by side
    return torch.stack(frames)


def slide(prev: torch.Tensor, nxt: torch.Tensor, margin: int = 32) -> torch.Tensor:
    """(T, 3, 2H, W + margin): the next reference slides down over the previous one (the official
    ``slide``), on a black canvas."""
    _, h, w = prev.shape
    merged = torch.cat([prev, nxt], dim=1).float().cpu()  # (3, 2H, W)
    canvas = -torch.ones(len(alphas()), 3, 2 * h, w + margin)
    for t, alpha in enumerate(alphas()):
        top = int(h * (1 - alpha))
        canvas[t, :, top:, :w] = merged[:, :2 * h - top]
    return canvas


@torch.no_grad()
def reference_video(net: Starganv2Translator, sources: torch.Tensor, refs: torch.Tensor, ref_domains: torch.Tensor,
                    device: torch.device) -> torch.Tensor:
    """The frames (T, 3, 2H, W + 32 + N*W) in [-1, 1] of the official ``video_ref``: for each pair of
    consecutive references of the same domain, the slide and the interpolation side by side."""
    x = sources.to(device)
    masks = net.masks(x)
    styles = net.style_encoder(refs.to(device), ref_domains.to(device))
    clips = []
    for k in progress(range(1, len(refs)), desc="video: morphing between references", unit="pair"):
        if ref_domains[k] != ref_domains[k - 1]:  # no morphing across domains
            continue
        inter = interpolation_frames(net, x, styles[k - 1:k], styles[k:k + 1], masks)
        clips.append(torch.cat([slide(refs[k - 1], refs[k]), inter], dim=3))
    if not clips:
        raise ValueError("the video needs two references of the same domain in a row")
    clips.append(clips[-1][-1:].expand(TAIL_FRAMES, -1, -1, -1))
    return torch.cat(clips)


def write_video(frames: torch.Tensor, path: Path, fps: int = 15) -> Path:
    """Write frames in [-1, 1] as an H.264 ``.mp4`` through imageio-ffmpeg (the official playback
    speed: 30 fps slowed 2x, i.e. 15), or as a ``.gif`` beside it when no encoder is available; returns
    the file written."""
    arr = ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import imageio_ffmpeg

        h, w = arr.shape[1:3]
        writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=2, ffmpeg_log_level="error")
        writer.send(None)
        for frame in progress(arr, desc=f"encoding '{path.name}'", unit="frame"):
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        return path
    except (ImportError, RuntimeError, OSError) as err:
        gif = path.with_suffix(".gif")
        log.warning("no usable ffmpeg for '%s' (%s: %s; pip install imageio-ffmpeg): writing '%s' instead",
                    path, type(err).__name__, err, gif)
        images = [Image.fromarray(frame) for frame in arr]
        images[0].save(gif, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return gif


def _folder_images(root: Path, size: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` images under ``root`` (recursive, sorted), resized to size x size (the official
    test transform)."""
    from ganforge.data.domains import read_square
    from ganforge.data.image_folder import build_index

    return torch.stack([read_square(root / f, size) for f in build_index(root, option="--src").files[:limit]])


def sample_from_folders(net: Starganv2Translator, src: str | Path, ref: str | Path, out: str | Path, limit: int = 32,
                        per_domain: int = 10, seed: int = 0, device: str | torch.device = "cpu",
                        video: bool = True) -> dict[str, Path]:
    """The official sample mode: ``reference.png`` (sources across the top, a row per reference),
    ``latent.png`` (``per_domain`` latent codes per domain) and ``video_ref.mp4`` (GIF without an
    encoder). ``ref`` holds one sub-folder per domain, in the order the model was trained on (sorted
    names, as ImageFolder orders them)."""
    from ganforge.data.domains import DomainFolderDataset
    from ganforge.sample.grid import GridLabels, save_grid

    cfg = net.model_config
    size, device = cfg.image_size, torch.device(device)
    refs_data = DomainFolderDataset(ref, image_size=size, augment=False, option="--ref (one sub-folder per domain)")
    if refs_data.num_classes != cfg.num_domains:
        raise ValueError(f"--ref '{ref}' has {refs_data.num_classes} domain folders ({', '.join(refs_data.domains)}); "
                         f"the model has {cfg.num_domains} domains")
    # References from every domain for the grid (as many of each as fit in ``limit``), grouped by domain.
    share = -(-limit // cfg.num_domains)
    picks = [int(i) for members in refs_data.by_domain for i in members[:share]][:limit]
    # The video morphs between consecutive references of one domain, so it takes at least two of each
    # domain that has two, whatever ``limit``: a small --n still gets its video.
    video_picks = [int(i) for members in refs_data.by_domain if len(members) > 1 for i in members[:max(2, share)]]
    if video and not video_picks:
        raise ValueError(f"--ref '{ref}': the video morphs between two references of one domain, and no domain "
                         f"folder ({', '.join(refs_data.domains)}) holds two images; add one, or pass --no-video")

    def references(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.stack([refs_data.load(i, None) for i in indices]),
                torch.tensor([int(refs_data.labels[i]) for i in indices]))

    refs, ref_domains = references(picks)
    sources = _folder_images(Path(src), size, limit)
    net = net.to(device).eval()
    out = Path(out)
    grid, per_row = reference_grid(net, sources, refs, ref_domains, device)
    names = refs_data.domains
    written = {"reference": save_grid(grid, out / "reference.png", per_row, GridLabels(
        title="reference-guided: each row shows the sources (top row) in the style of its reference (left)",
        rows=["sources"] + [f"ref: {names[int(d)]}" for d in ref_domains]))}
    latents = torch.randn(per_domain, cfg.latent_dim, generator=torch.Generator().manual_seed(seed))
    grid, per_row = latent_grid(net, sources, latents, cfg.num_domains, device)
    written["latent"] = save_grid(grid, out / "latent.png", per_row, GridLabels(
        title=f"latent-guided: each row shows the sources (top row) in one domain with a random style code (seed {seed})",
        rows=["sources"] + [f"{name} z{k + 1}" for name in names for k in range(per_domain)]))
    if video:
        frames = reference_video(net, sources, *references(video_picks), device)
        written["video"] = write_video(frames, out / "video_ref.mp4")
    return written



@torch.no_grad()
def translate_images(gen: torch.nn.Module, images: torch.Tensor, domain: int, reference: torch.Tensor | None = None,
                     seed: int = 0) -> torch.Tensor:
    """``images`` (N, 3, H, W) in [-1, 1] at the model's size, translated into ``domain`` (its index,
    domains in sorted folder order): in the style of ``reference`` (one image, or one per input, of
    that domain) when given, else with random style codes drawn from ``seed``. (N, 3, H, W) on the CPU."""
    cfg = gen.model_config
    size = cfg.image_size
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(f"images must be (N, 3, {size}, {size}) in [-1, 1] for this model; got {tuple(images.shape)}")
    if not 0 <= int(domain) < cfg.num_domains:
        raise ValueError(f"domain={domain}: this model has domains 0..{cfg.num_domains - 1}")
    device = next(gen.parameters()).device
    x = images.to(device)
    y = torch.full((len(x),), int(domain), dtype=torch.long, device=device)
    if reference is None:
        z = torch.randn(len(x), cfg.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
        return gen.net(x, y, z).float().cpu()
    ref = reference[None] if reference.dim() == 3 else reference
    if len(ref) not in (1, len(x)) or tuple(ref.shape[1:]) != (3, size, size):
        raise ValueError(f"reference must be one (3, {size}, {size}) image or {len(x)} of them; got {tuple(reference.shape)}")
    return gen.net.reference(x, ref.to(device).expand(len(x), -1, -1, -1), y).float().cpu()
