"""Training speed of every family at the official code's default architecture and batch.

Not a test. Each row is ``ganforge bench`` on a shipped preset whose architecture and batch are the
official defaults, fed by the built-in shapes data at the same image size (no download, and the data
does not change the network or its cost). Prints one markdown row per (family, precision) with
s/iteration as the official loop counts it, images/s, counted GFLOP/s and its fraction of the
device's measured matrix-product peak in that precision, and peak memory.

    .venv/bin/python benchmarks/speed.py                        # every family, fp32 and bf16
    .venv/bin/python benchmarks/speed.py --only stargan --precisions bf16 --steps 2
    .venv/bin/python benchmarks/speed.py --only biggan --precisions bf16 runtime.channels_last=true
    python benchmarks/speed.py --in-process --workers 8 --steps 10 --warmup 3 runtime.device=cuda \
        --variants 'runtime.channels_last=false;runtime.channels_last=true'    # a GPU, every family

Run it with nothing else on the machine: two PyTorch processes on 2 cores slow each other down many
times over. Peak memory on the CPU is the process's max RSS, so each row runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# name -> (preset, overrides that swap in the built-in shapes data without touching the networks)
CASES: dict[str, tuple[str, list[str]]] = {
    # yunjey/stargan defaults: 128 px, c_dim 5, 64 filters, 6 residual blocks, 6 D convs, batch 16, n_critic 5.
    "stargan": ("stargan/celeba", ["data.name=shapes", "data.view=attributes",
                                   "data.selected_attrs=[Red,Green,Blue,Large,Light_Background]"]),
    # clovaai/stargan-v2 AFHQ configuration at 128 px (the size the speed table measures), batch 8, w_hpf 0.
    "starganv2": ("starganv2/afhq", ["data.name=shapes", "data.view=domains", "model.image_size=128",
                                     "data.image_size=128"]),
    # BigGAN-PyTorch's CIFAR script: 32 px, ch 64, batch 50, 4 D steps per G step. The shapes class
    # view has 18 classes, not 10: only the class embeddings grow (8 more rows), not the compute.
    "biggan": ("biggan/cifar10", ["data.name=shapes", "data.view=class", "model.num_classes=18"]),
    # yitong91/StoryGAN CLEVR: 64 px, 4 frames, batch 24 stories; the shapes story view's 75-d
    # descriptions are CLEVR's size too.
    "storygan": ("storygan/clevr_sv", ["data.name=shapes", "data.view=story"]),
    # WGAN-GP 64 px DCGAN-style networks, batch 64, n_critic 5: PyTorch's DCGAN example (4x4 kernels).
    "wgan_gp": ("wgan_gp/shapes", []),
    # igul222/improved_wgan_training's own DCGAN pair (gan_64x64.py: 5x5, SAME padding, z 128), batch 64.
    "wgan_gp_official_nets": ("wgan_gp/imagenet64", ["data.name=shapes"]),
}


def run_case(name: str, precision: str, steps: int, warmup: int, extra: Sequence[str] = (), workers: int = 0) -> dict:
    """One row in its own process, so that max RSS (the CPU's peak memory) is this row's alone."""
    preset, overrides = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "ganforge", "bench", preset, *overrides, f"runtime.precision={precision}",
               f"data.num_workers={workers}", *extra, "--steps", str(steps), "--warmup", str(warmup),
               "--json", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def run_case_in_process(name: str, precision: str, steps: int, warmup: int, extra: Sequence[str] = (),
                        workers: int = 0) -> dict:
    """One row in this process: on an accelerator the allocator's peak is reset per row, and the
    process start-up and device initialisation are paid once for all rows."""
    import gc

    import torch

    from ganforge.presets import load_config
    from ganforge.train.bench import bench
    from ganforge.train.trainer import Trainer

    preset, overrides = CASES[name]
    cfg = load_config(preset, [*overrides, f"runtime.precision={precision}", f"data.num_workers={workers}", *extra])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(cfg, run_dir=None)
    try:
        return bench(trainer, steps=steps, warmup=warmup).to_json()
    finally:
        del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", choices=sorted(CASES), help="families to run (default: all)")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: load in the training process)")
    p.add_argument("--variants", default="",
                   help="';'-separated groups of space-separated overrides, one row each, e.g. "
                        "'runtime.channels_last=false;runtime.channels_last=true' (default: one row, none)")
    p.add_argument("--in-process", action="store_true",
                   help="all rows in this process (for accelerators: the allocator's peak is reset per row; "
                        "on the CPU max RSS would carry over between rows)")
    p.add_argument("--json", help="also write every row's full report to this file")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides for every row, e.g. "
                                                "runtime.channels_last=true (a variant's override wins)")
    args = p.parse_args()
    variants = [v.split() for v in args.variants.split(";")] if args.variants else [[]]
    run = run_case_in_process if args.in_process else run_case
    print("| family | preset | size | batch | precision | settings | s/iteration | images/s | GFLOP/iteration | "
          "GFLOP/s | peak GFLOP/s | fraction | peak memory |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for name in args.only or list(CASES):
        for precision in args.precisions.split(","):
            for variant in variants:
                extra = [*args.overrides, *variant]
                try:
                    r = run(name, precision, args.steps, args.warmup, extra, args.workers)
                except Exception as err:  # one failing row must not cost the others (a GPU lease is short)
                    # the precision the row asked for: a variant's runtime.precision overrides --precisions
                    asked = [e.split("=", 1)[1] for e in extra if e.startswith("runtime.precision=")]
                    shown = (asked or [precision])[-1]
                    print(f"| {name} | {CASES[name][0]} | | | {shown} | {' '.join(extra) or '-'} | failed: "
                          f"{type(err).__name__}: {err} |", flush=True)
                    continue
                rows.append(dict(case=name, settings=extra, **r))
                if args.json:  # rewritten after every row, so a run cut short keeps what it measured
                    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
                its = r["iterations_per_step"]
                memory = f"{r['peak_memory_bytes'] / 2 ** 30:.2f} GiB" if r["peak_memory_bytes"] else "-"
                print(f"| {name} | {CASES[name][0]} | {r['image_size']} | {r['batch_size']} | {r['precision']} | "
                      f"{' '.join(extra) or '-'} | {r['iteration_s']:.3f} | {r['images_per_s']:.1f} | "
                      f"{r['flops_per_step'] / its / 1e9:.1f} | {r['achieved_flops'] / 1e9:.1f} | "
                      f"{r['peak_flops'] / 1e9:.0f} | {100 * r['peak_fraction']:.1f}% | {memory} |", flush=True)


if __name__ == "__main__":
    main()
