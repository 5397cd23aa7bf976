"""Translation with a trained StarGAN generator: official-style grids and single images.

A grid row is one input image followed by its translation to each target (one column per target
attribute combination), as the official ``test`` mode writes them. The input images' own labels
come from the run's discriminator (its classification head) when the run has one: a user's photo
has no label row, and "flip Male" needs to know what the image is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from ganforge.data.celeba import CROP_SIZE
from ganforge.data.images import IMAGE_EXTENSIONS, DataError, decode_file, to_tensor
from ganforge.load import LoadedGenerator, generator_from_opened
from ganforge.models.stargan.labels import Conditioning, conditioning_for_model
from ganforge.models.stargan.networks import StarganDiscriminator
from ganforge.run.store import OpenedRun, open_run


@torch.no_grad()
def translation_grid(generator: nn.Module, images: torch.Tensor, targets: Sequence[tuple[str, torch.Tensor]],
                     device: torch.device) -> tuple[torch.Tensor, int]:
    """(images in row order: input, then one translation per target; images per row)."""
    x = images.to(device)
    columns = [images.float().cpu()] + [generator(x, c.to(device)).float().cpu() for _, c in targets]
    grid = torch.stack(columns, 1).flatten(0, 1)  # (N * (1 + T), C, H, W), row-major
    return grid, 1 + len(targets)


@dataclass
class Translator:
    generator: LoadedGenerator
    discriminator: nn.Module | None
    cond: Conditioning
    crop_size: int | None

    @property
    def image_size(self) -> int:
        return self.generator.model_config.image_size

    @torch.no_grad()
    def source_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The inputs' labels (as the first dataset's conditioning) read by the discriminator's class
        head; zeros without a discriminator."""
        space = self.cond.parts[0].space
        n = images.shape[0]
        if self.discriminator is None:
            return torch.zeros(n, space.dim)
        device = next(self.discriminator.parameters()).device
        _, logits = self.discriminator(images.to(device))
        logits = self.cond.logits(0, logits.float().cpu())
        if space.kind == "classes":
            return space.condition(logits.argmax(1))
        return (logits > 0).float()


def open_translator(opened: OpenedRun | str | Path, weights: str = "ema", device: str = "cpu") -> Translator:
    """A StarGAN model source (an ``OpenedRun``, or a path to open), ready to translate."""
    if not isinstance(opened, OpenedRun):
        opened = open_run(opened)
    return translator_for(generator_from_opened(opened, weights, device), device)


def translator_for(gen: LoadedGenerator, device: str | torch.device = "cpu") -> Translator:
    """A loaded StarGAN generator with what translating needs: its run's discriminator (to read the
    inputs' own labels) and preprocessing, where the model came from a checkpoint."""
    if gen.opened is None or gen.opened.record is None:  # an exported generator: no discriminator, no data config
        return Translator(gen, None, conditioning_for_model(gen.model_config), None)
    state = gen.opened.record
    disc = None
    if "D" in state["networks"]:
        disc = StarganDiscriminator(gen.model_config)
        disc.load_state_dict(state["networks"]["D"])
        disc = disc.to(device).eval().requires_grad_(False)
    # Inputs are preprocessed as the run's training images were (its data loader's crop).
    data = state["config"].get("data", {})
    crop = data.get("crop_size") or (CROP_SIZE if data.get("name") in ("celeba", "celeba_rafd") else None)
    return Translator(gen, disc, conditioning_for_model(gen.model_config), crop)


@torch.no_grad()
def translate_images(gen: LoadedGenerator, images: torch.Tensor, targets: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """``images`` (N, C, H, W) in [-1, 1] at the model's size, translated to each of ``targets`` (as
    ``--attrs`` takes them: ``Blond_Hair``, ``Male=0,Young=1``; default: the official targets, one per
    attribute). Returns {target: (N, C, H, W)} on the CPU."""
    size = gen.model_config.image_size
    if images.dim() != 4 or tuple(images.shape[-2:]) != (size, size):
        raise ValueError(f"images must be (N, C, {size}, {size}) in [-1, 1] for this model; got {tuple(images.shape)}")
    device = next(gen.parameters()).device
    translator = translator_for(gen, device)
    cond = translator.cond
    source_c = translator.source_labels(images)
    chosen = ([(spec, cond.parse_target(spec, 0, source_c)) for spec in targets] if targets
              else cond.official_targets(0, source_c))
    grid, per_row = translation_grid(gen, images, chosen, device)
    columns = grid.reshape(len(images), per_row, *grid.shape[1:])
    return {name: columns[:, k + 1] for k, (name, _) in enumerate(chosen)}


def input_files(source: str | Path) -> list[Path]:
    """One image file, or every image under a folder (sorted)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise DataError(f"--input '{source}' is neither an image file nor a folder")
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise DataError(f"--input '{source}' holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def translate_files(translator: Translator, source: str | Path, out_dir: str | Path,
                    attrs: Sequence[str] = (), batch_size: int = 16, singles: bool = True) -> list[Path]:
    """Translate every image of ``source``; write ``grid-NNNN.png`` per batch and, with ``singles``,
    ``<stem>/<column>.png`` per image. ``attrs``: one target per entry (see ``LabelSpace.parse_target``);
    empty: the official targets, one per attribute. Returns the grid paths."""
    from ganforge.sample.grid import GridLabels, save_grid, save_images

    files = input_files(source)
    out = Path(out_dir)
    cond, size = translator.cond, translator.image_size
    device = next(translator.generator.parameters()).device
    for spec in attrs:  # fail on a bad --attrs before any image is read
        cond.parse_target(spec, 0, torch.zeros(1, cond.parts[0].space.dim))
    grids, names = [], []
    for b, start in enumerate(range(0, len(files), batch_size)):
        chunk = files[start:start + batch_size]
        images = torch.stack([to_tensor(decode_file(f, 3, size, translator.crop_size), size, "center", False, None)
                              for f in chunk])
        source_c = translator.source_labels(images)
        targets = ([(spec, cond.parse_target(spec, 0, source_c)) for spec in attrs] if attrs
                   else cond.official_targets(0, source_c))
        grid, nrow = translation_grid(translator.generator, images, targets, device)
        names = ["input"] + [name for name, _ in targets]
        grids.append(save_grid(grid, out / f"grid-{b + 1:04d}.png", nrow,
                               GridLabels(columns=names, rows=[f.name for f in chunk])))
        if singles:
            per_row = grid.reshape(len(chunk), nrow, *grid.shape[1:])
            for f, row in zip(chunk, per_row):
                for name, img in zip(names, row):
                    save_images(img[None], out / f.stem, prefix=safe_column(name))
    (out / "columns.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return grids


def safe_column(name: str) -> str:
    """A file-name-safe form of a column title such as ``Male=0,Young=1``."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
