"""R3GAN's training speed against brownvc/R3GAN's own code on this CPU, the same preset and batch.

Not a test. Times, in separate processes one after the other:

- the official iteration: ``training/training_loop.py``'s body (a D phase and a G phase, each
  ``R3GANLoss.accumulate_gradients`` then Adam, the EMA update), with the networks, loss, Adam and
  ``AugmentPipe`` its ``train.py`` builds for ``--preset`` (bf16 stages; augmentation at the given
  probability), on random batches, the official code's reference operators (its CUDA ones have no CPU
  build), the first iteration left out;
- ``ganforge bench`` on the same preset and batch, the built-in shapes class view as data.

    .venv/bin/python benchmarks/speed_r3gan.py --official /tmp/R3GAN --batch 16 --steps 3

The official code needs ``requests``, ``psutil``, ``click`` and ``setuptools<81`` importable
(``--pythonpath`` adds a folder that has them). Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = {  # train.py's presets: G widths, cardinalities, blocks, FP16Stages, classes, augmentation p at the end
    "cifar10": ([768] * 4, [96] * 4, [2] * 4, [-1, -2, -3], 10, 0.55),
    "ffhq64": ([768] * 4 + [384], [96] * 4 + [48], [2] * 5, [-1, -2, -3, -4], 0, 0.3),
}
OURS = {"cifar10": ["data.name=shapes", "data.view=class", "model.num_classes=18"],
        "ffhq64": ["data.name=shapes", "data.image_size=64"]}


def official(preset: str, batch: int, steps: int, aug_p: float) -> dict:
    """Seconds per official iteration (iterations 2..steps+1), run in this process."""
    import torch

    import R3GAN.FusedOperators as fused
    import R3GAN.Networks as networks
    import R3GAN.Resamplers as resamplers
    from training.augment import AugmentPipe
    from training.loss import R3GANLoss
    from training.networks import Discriminator, Generator

    networks.BiasedActivation = fused.BiasedActivationReference
    networks.InterpolativeUpsampler = resamplers.InterpolativeUpsamplerReference
    networks.InterpolativeDownsampler = resamplers.InterpolativeDownsamplerReference
    widths, cards, blocks, fp16, classes, _ = PRESETS[preset]
    res = 4 * 2 ** (len(widths) - 1)
    g_kw = dict(NoiseDimension=64, WidthPerStage=widths, CardinalityPerStage=cards, BlocksPerStage=blocks,
                ExpansionFactor=2, FP16Stages=fp16, c_dim=classes, img_resolution=res)
    d_kw = dict(WidthPerStage=widths[::-1], CardinalityPerStage=cards[::-1], BlocksPerStage=blocks[::-1],
                ExpansionFactor=2, FP16Stages=[x + len(fp16) for x in fp16], c_dim=classes, img_resolution=res)
    if classes:
        g_kw["ConditionEmbeddingDimension"], d_kw["ConditionEmbeddingDimension"] = 64, widths[0]
    G, D = Generator(**g_kw).train().requires_grad_(False), Discriminator(**d_kw).train().requires_grad_(False)
    G_ema = __import__("copy").deepcopy(G).eval()
    pipe = AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=0.5,
                       contrast=0.5, lumaflip=0.5, hue=0.5, saturation=0.5, cutout=1).train().requires_grad_(False)
    pipe.p.copy_(torch.tensor(aug_p))
    loss = R3GANLoss(G, D, pipe if aug_p > 0 else None)
    opts = {"D": torch.optim.Adam(D.parameters(), betas=[0.0, 0.0], eps=1e-8),
            "G": torch.optim.Adam(G.parameters(), betas=[0.0, 0.0], eps=1e-8)}
    times = []
    for it in range(steps + 1):
        start = time.perf_counter()
        for name, module in (("D", D), ("G", G)):
            real = torch.rand(batch, 3, res, res) * 2 - 1
            c = torch.nn.functional.one_hot(torch.randint(classes, (batch,)), classes).float() if classes \
                else torch.zeros(batch, 0)
            opts[name].zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(name, real, c, torch.randn(batch, 64), 0.05, 1.0)
            module.requires_grad_(False)
            for group in opts[name].param_groups:
                group["lr"], group["betas"] = 2e-4, (0, 0.9)
            params = [p for p in module.parameters() if p.grad is not None]
            flat = torch.cat([p.grad.flatten() for p in params])  # the loop's gradient flattening
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad = g.reshape(p.shape)
            opts[name].step()
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, 0.999))
        if it:
            times.append(time.perf_counter() - start)
    return {"s_per_iteration": times, "peak_rss_gib": _peak_rss_gib()}


def _peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def ours(preset: str, batch: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([sys.executable, "-m", "ganforge", "bench", f"r3gan/{preset}", *OURS[preset],
                        f"train.batch_size={batch}", "data.num_workers=0", "--steps", str(steps), "--warmup", "1",
                        "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", type=Path, help="a checkout of brownvc/R3GAN (omit: ganforge only)")
    parser.add_argument("--pythonpath", default="", help="a folder with the official code's imports")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cifar10")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--aug-p", type=float, default=None, help="augmentation probability (default: the "
                                                                  "preset's final value)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    aug_p = PRESETS[args.preset][5] if args.aug_p is None else args.aug_p
    if args.child:
        sys.path[:0] = [str(args.official), *filter(None, [args.pythonpath])]
        print(json.dumps(official(args.preset, args.batch, args.steps, aug_p)))
        return
    rows = {}
    if args.official:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run([sys.executable, __file__, "--child", "--official", str(args.official.resolve()),
                               "--pythonpath", args.pythonpath, "--preset", args.preset, "--batch", str(args.batch),
                               "--steps", str(args.steps), "--aug-p", str(aug_p)],
                              check=True, capture_output=True, text=True, env=env)
        rows["official"] = json.loads(done.stdout.strip().splitlines()[-1])
    rows["ganforge"] = ours(args.preset, args.batch, args.steps)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
