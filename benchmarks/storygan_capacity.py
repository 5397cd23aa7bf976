"""Can StoryGAN's generator draw the shapes stories at all? A capacity probe for its shapes target.

Not a test, and not StoryGAN training. The ``storygan/shapes`` generator (any width: ``--gf``) is
fitted by plain regression, L1 between its frames and the ground-truth frames of the same
descriptions, with no discriminator; every ``--every`` steps it is scored by the same ``story``
metrics and stories as ``benchmarks/storygan_shapes.py`` (object_acc per frame and per slot,
count_acc, in_place, ssim; ``--n`` training descriptions, fixed noise).

The descriptions fix every object (shape, colour, size, position) but not the background's gray
level, so the regression target is deterministic up to the background, which the oracle ignores.
If the regression reaches the 80% object accuracy targeted for the GAN, the generator at
that width has the capacity, and what holds the GAN back is its training; if the regression
stalls below it, the width itself is too small.

    .venv/bin/python benchmarks/storygan_capacity.py --steps 6000 --every 1000          # preset width 24
    .venv/bin/python benchmarks/storygan_capacity.py --gf 48 --steps 3000 --every 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ganforge.presets import load_config
from ganforge.data import build_dataset
from ganforge.metrics.evaluate import Evaluator
from ganforge.models.storygan.evaluate import StoryganEvaluation
from ganforge.models.storygan.networks import StoryganGenerator, init_weights
from storygan_shapes import object_columns  # benchmarks/storygan_shapes.py


def story_cache(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every story rendered once: uint8 frames (N, T, 3, 64, 64) and descriptions (N, T, text_dim)."""
    items = [dataset.get(i) for i in range(len(dataset))]
    frames = torch.stack([((it["images"] + 1) * 127.5).round().to(torch.uint8) for it in items])
    return frames, torch.stack([it["descriptions"] for it in items])


def as_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames from :func:`story_cache` back to the generator's range [-1, 1]."""
    return frames.float() / 127.5 - 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gf", type=int, default=24, help="model.gf_dim (the preset's 24; official CLEVR 192)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--every", type=int, default=1000, help="score every this many steps")
    p.add_argument("--batch", type=int, default=24, help="stories per step (the preset's story batch)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam lr, betas (0.5, 0.999) as StoryGAN's")
    p.add_argument("--n", type=int, default=200, help="stories per evaluation")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strip", help="at the end, save 8 training stories here (generated | ground truth)")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    cfg = load_config("storygan/shapes", [f"model.gf_dim={args.gf}"])
    dataset = build_dataset(cfg.data, cfg.runtime.seed)
    t0 = time.perf_counter()
    frames, descriptions = story_cache(dataset)
    print(f"# {len(dataset)} stories rendered in {time.perf_counter() - t0:.0f} s; gf_dim {args.gf}, "
          f"batch {args.batch}, lr {args.lr}, {args.precision}, {torch.get_num_threads()} threads")

    G = StoryganGenerator(cfg.model)
    init_weights(G)
    G = G.to(memory_format=torch.channels_last)
    print(f"# G parameters: {sum(t.numel() for t in G.parameters()):,}")
    opt = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
    ev = Evaluator(dataset, "story", args.n, batch_size=50, family_eval=StoryganEvaluation(dataset))
    rng = np.random.default_rng(args.seed)
    use_bf16 = args.precision == "bf16"
    print("step | minutes | L1 | object_acc | frame 1 | frame 2 | frame 3 | frame 4 | slot 1 | slot 2 | slot 3 "
          "| slot 4 | count_acc | in_place | ssim")
    t0, losses = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        idx = torch.from_numpy(rng.choice(len(dataset), args.batch, replace=False))
        target = as_images(frames[idx])
        noise = torch.randn(args.batch, cfg.model.video_len, cfg.model.noise_dim)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            fake = G.story(descriptions[idx], noise).images
        loss = (fake.float() - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.every == 0 or step == args.steps:
            m = ev.evaluate_generator(G).metrics  # in eval mode and without gradients; G is back in train mode after
            print(f"{step} | {(time.perf_counter() - t0) / 60:.1f} | {np.mean(losses[-100:]):.4f} | "
                  f"{m['object_acc']:.3f} | {object_columns(m)} | {m['count_acc']:.3f} | {m['in_place']:.3f} | "
                  f"{m['ssim']:.3f}", flush=True)
    if args.strip:
        from ganforge.sample import save_grid
        from ganforge.sample.story import story_strips

        G.eval()
        with torch.no_grad():
            fake = G(descriptions[:8], torch.randn(8, cfg.model.video_len, cfg.model.noise_dim)).float()
        images, per_row = story_strips(fake, as_images(frames[:8]))
        print(f"# strip: {save_grid(images, args.strip, nrow=per_row)}")


if __name__ == "__main__":
    main()
