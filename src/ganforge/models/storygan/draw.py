"""`ganforge story`: strips of stories drawn from descriptions, or from the run's own data with the
ground truth beside them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ganforge.load import generator_from_opened
from ganforge.models.storygan.story import draw_stories, read_descriptions
from ganforge.sample.grid import GridLabels, save_grid, save_images
from ganforge.sample.noise import output_base
from ganforge.sample.story import story_strips


def story_command(opened: Any, args: argparse.Namespace) -> int:
    """Draw the stories ``args`` names and write one strip row per story."""
    gen = generator_from_opened(opened, args.weights, args.device)
    m = gen.model_config
    truth = None
    if args.from_data is not None:
        descriptions, truth, name = stories_from_data(args.source, args.from_data, args.overrides)
    else:
        if args.overrides:
            raise ValueError(f"key=value overrides ({', '.join(args.overrides)}) only apply with --from-data")
        descriptions = torch.from_numpy(read_descriptions(args.descriptions, m.video_len, m.text_dim, args.text_encoder))
        name = Path(args.descriptions).stem
    stories = draw_stories(gen, descriptions, args.seed, args.device)
    images, per_row = story_strips(stories, truth)
    out = Path(args.out or output_base(args.source) / "samples" / f"story-{name}-seed{args.seed}.png")
    frames = [f"generated {t + 1}" for t in range(m.video_len)]
    if truth is not None:
        frames += [f"ground truth {t + 1}" for t in range(m.video_len)]
    save_grid(images, out, nrow=per_row, labels=GridLabels(
        title=f"one story per row ({gen.weights} weights, step {opened.step}, seed {args.seed})", columns=frames))
    if args.frames:
        save_images(stories.flatten(0, 1), out.with_suffix(""), prefix="frame")
    beside = " (generated | ground truth)" if truth is not None else ""
    print(f"drew {len(stories)} stories of {m.video_len} frames: {out}{beside}")
    return 0


def stories_from_data(source: str, count: int, overrides: list[str]) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Descriptions and ground-truth frames of the first ``count`` stories of the run's data, and a name
    that says which stories (so drawing another range or split does not overwrite the strip)."""
    from ganforge.config import load_yaml
    from ganforge.data import build_dataset
    from ganforge.presets import resolve_with_overrides
    from ganforge.run.store import run_config_path

    cfg_path = run_config_path(source)  # --from-data reads the run's config
    cfg = resolve_with_overrides(load_yaml(cfg_path.read_text(encoding="utf-8")), overrides)
    data = build_dataset(cfg.data, cfg.runtime.seed)
    items = [data.get(i) for i in range(min(count, len(data)))]
    name = f"{cfg.data.name}{len(items)}"
    story_range, split = getattr(cfg.data, "story_range", []), getattr(cfg.data, "split", "train")
    if story_range:
        name += f"-stories{story_range[0]}-{story_range[1]}"
    if split != "train":
        name += f"-{split}"
    return (torch.stack([it["descriptions"] for it in items]), torch.stack([it["images"] for it in items]), name)
