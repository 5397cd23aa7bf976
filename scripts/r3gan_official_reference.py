"""Record what brownvc/R3GAN's own code computes, for ganforge's R3GAN tests.

Not part of the package: it needs a copy of the official code (github.com/brownvc/R3GAN), which
ganforge does not ship, with its imports (``requests``, ``psutil``, ``click``, ``setuptools<81``)
on the path:

    PYTHONPATH=/tmp/offpkgs python scripts/r3gan_official_reference.py --official /tmp/R3GAN \
        --out tests/data/r3gan_official

Written into ``--out``:

- ``networks.pt``: the official networks at the official sizes (CIFAR-10 class-conditional and
  FFHQ-64 presets, ``training.networks.Generator``/``Discriminator`` as ``train.py`` configures them),
  their parameters filled in key order from seeded generators (``tests/gfhelpers.fill_by_key_order``;
  the resampling kernels keep their values), every stage in float32; inputs and outputs only.
- ``step.pt`` and ``step-snapshot.pkl``: two iterations of the official ``training_loop`` itself, in
  float64, on a small class-conditional network (16 px: widths 24, 16, 16), batch 4, schedules over
  8 images so that every scheduled value moves between the two iterations, augmentation off, with the
  official code's reference operators (its default CUDA operators' CPU fallbacks take float32 only). The
  loop runs unchanged; only what surrounds it is replaced: ``torch.device('cuda')`` is the CPU, the
  CUDA timing events and memory counters are inert, the data loader records the batches it hands
  out (its one-hot labels, and the sample grid's, in the run's float dtype), ``torch.randn`` records the noise the loop draws, and ``training_stats.report`` records the
  losses; ``Sampler.__init__`` accepts the data source the official sampler hands it (torch 2.x
  dropped that argument), and Adam's ``betas=[0, 0]`` are given as floats (this torch refuses ints). ``step.pt`` holds the initial weights, the inputs and the losses; ``step-snapshot.pkl`` is the network snapshot the loop pickled after the second
  iteration, exactly as it writes it.
- ``augment.pt``: the official ``training.augment.AugmentPipe`` with ``train.py``'s ``--aug=1``
  settings on seeded colour and grey images at p 0.6 and 1, torch's generator seeded before each call.
- ``bf16-snapshot.pkl`` and ``bf16.pt``: one iteration of the same loop in float32 with two bf16
  stages (the official FP16Stages) and the default operators, as the released pickles hold them, for the importer's reading of stage precisions; ``bf16.pt`` holds
  the snapshot's G_ema outputs with every stage switched to float32, for comparison at 1e-5.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gfhelpers import fill_by_key_order  # noqa: E402

PRESETS = {  # the official train.py's CIFAR10 (--cond=1) and FFHQ-64 presets
    "cifar10": dict(widths=[768] * 4, cards=[96] * 4, blocks=[2] * 4, c_dim=10, res=32, d_embed=768),
    "ffhq64": dict(widths=[768] * 4 + [384], cards=[96] * 4 + [48], blocks=[2] * 5, c_dim=0, res=64, d_embed=0),
}
SMALL = dict(widths=[24, 16, 16], cards=[4, 4, 2], blocks=[1, 2, 1], c_dim=3, res=16, d_embed=24)
NOISE, BATCH = 8, 4


def network_kwargs(p: dict, noise: int, fp16: list[int]) -> tuple[dict, dict]:
    """G and D keyword arguments as train.py builds them for a preset."""
    g = dict(class_name="training.networks.Generator", NoiseDimension=noise, WidthPerStage=p["widths"],
             CardinalityPerStage=p["cards"], BlocksPerStage=p["blocks"], ExpansionFactor=2, FP16Stages=fp16)
    d = dict(class_name="training.networks.Discriminator", WidthPerStage=p["widths"][::-1],
             CardinalityPerStage=p["cards"][::-1], BlocksPerStage=p["blocks"][::-1], ExpansionFactor=2,
             FP16Stages=[x + len(fp16) for x in fp16])
    if p["c_dim"]:
        g["ConditionEmbeddingDimension"], d["ConditionEmbeddingDimension"] = noise, p["d_embed"]
    return g, d


def fill_parameters(module: torch.nn.Module, seed: int) -> None:
    """fill_by_key_order, the resampling kernels (buffers) kept."""
    buffers = {k: v.clone() for k, v in module.named_buffers()}
    fill_by_key_order(module, seed)
    module.load_state_dict({**module.state_dict(), **buffers})


def one_hot(labels: torch.Tensor, n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, n).float()


def official_networks() -> dict[str, torch.Tensor]:
    """Outputs of the official-size networks on fixed inputs (G seed 0, D seed 1 for the fill)."""
    import dnnlib

    out: dict[str, torch.Tensor] = {}
    for name, p in PRESETS.items():
        g_kw, d_kw = network_kwargs(p, 64, [])
        common = dict(c_dim=p["c_dim"], img_resolution=p["res"])
        G = dnnlib.util.construct_class_by_name(**g_kw, **common).eval()
        D = dnnlib.util.construct_class_by_name(**d_kw, **common).eval()
        fill_parameters(G, 0)
        fill_parameters(D, 1)
        gen = torch.Generator().manual_seed(5)
        z = torch.randn(2, 64, generator=gen)
        y = torch.tensor([3, 7]) if p["c_dim"] else torch.zeros(2, dtype=torch.long)
        x = torch.rand(2, 3, p["res"], p["res"], generator=gen) * 2 - 1
        c = one_hot(y, p["c_dim"]) if p["c_dim"] else torch.zeros(2, 0)
        with torch.no_grad():
            out |= {f"{name}/z": z, f"{name}/y": y, f"{name}/x": x, f"{name}/G": G(z, c), f"{name}/D": D(x, c)}
        out[f"{name}/counts"] = torch.tensor([sum(t.numel() for t in n.parameters()) for n in (G, D)])
    return out


def write_image_folder(root: Path, n: int, res: int, classes: int) -> None:
    """``n`` seeded random PNGs with labels in a dataset.json, as the official dataset tool writes them."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(root / f"img{i:03d}.png")
        labels.append([f"img{i:03d}.png", i % classes])
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))


class _Recorder:
    """What the loop drew: noise (torch.randn), batches (the data loader) and reported losses."""

    def __init__(self) -> None:
        self.noise: list[torch.Tensor] = []
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.losses: dict[str, list[torch.Tensor]] = {}


def _torch_proxy(rec: _Recorder, dtype: torch.dtype) -> types.SimpleNamespace:
    """``torch`` as the training loop sees it: the CPU for 'cuda', inert CUDA timing, recorded noise and
    batches, and ``torch.float32`` meaning ``dtype`` (float64 for the step reference)."""
    class Event:
        def __init__(self, **_: object) -> None: ...
        def record(self, *_: object) -> None: ...
        def synchronize(self) -> None: ...
        def elapsed_time(self, _: object) -> float: return 0.0

    cuda = types.SimpleNamespace(Event=Event, current_stream=lambda *a: None, max_memory_allocated=lambda *a: 0,
                                 max_memory_reserved=lambda *a: 0, reset_peak_memory_stats=lambda *a: None)

    def randn(*args, **kwargs):
        kwargs.pop("device", None)
        value = torch.randn(*args, **kwargs)
        rec.noise.append(value.clone())
        return value

    class Loader:
        def __init__(self, **kwargs: object) -> None:
            self.inner = torch.utils.data.DataLoader(**kwargs)

        def __iter__(self):
            for images, labels in self.inner:
                labels = labels.to(torch.get_default_dtype())  # one-hot float32 -> the run's float dtype
                rec.batches.append((images.clone(), labels.clone()))
                yield images, labels

    data = types.SimpleNamespace(DataLoader=Loader)
    utils = types.SimpleNamespace(data=data)
    def from_numpy(array):  # the sample grid's one-hot labels, in the run's float dtype
        value = torch.from_numpy(array)
        return value.to(torch.get_default_dtype()) if value.is_floating_point() else value

    proxy = types.SimpleNamespace(device=lambda *a: torch.device("cpu"), cuda=cuda, randn=randn, utils=utils,
                                  float32=dtype, from_numpy=from_numpy)
    for name in dir(torch):
        if not hasattr(proxy, name):
            setattr(proxy, name, getattr(torch, name))
    return proxy


def use_reference_operators(on: bool) -> None:
    """Bind the names the official networks use to its reference operators (``on``) or to its default
    CUDA ones (which fall back to reference code on the CPU, in float32 only)."""
    import R3GAN.FusedOperators as fused
    import R3GAN.Networks as networks
    import R3GAN.Resamplers as resamplers

    kind = "Reference" if on else "CUDA"
    networks.BiasedActivation = getattr(fused, f"BiasedActivation{kind}")
    networks.InterpolativeUpsampler = getattr(resamplers, f"InterpolativeUpsampler{kind}")
    networks.InterpolativeDownsampler = getattr(resamplers, f"InterpolativeDownsampler{kind}")


def run_official_loop(run_dir: Path, data: Path, dtype: torch.dtype, fp16: list[int], iterations: int) -> _Recorder:
    """Run the official ``training_loop`` for ``iterations`` iterations of batch 4 on ``data``."""
    import dnnlib
    import R3GAN.Networks as networks
    import training.loss as official_loss
    import training.training_loop as loop

    rec = _Recorder()
    loop.torch = _torch_proxy(rec, dtype)
    # The official InfiniteSampler hands Sampler.__init__ a data source, which this torch no longer takes.
    torch.utils.data.Sampler.__init__ = lambda self, data_source=None: None
    for stage in (networks.GeneratorStage, networks.DiscriminatorStage):
        stage.__init__.__defaults__ = stage.__init__.__defaults__[:-1] + (dtype,)

    report_all = official_loss.training_stats.report

    def report(name, value):
        if name.startswith("Loss/"):
            rec.losses.setdefault(name, []).append(value.detach().clone())
        return report_all(name, value)

    official_loss.training_stats.report = report  # the module the loss reports through (not the loop's report0)
    g_kw, d_kw = network_kwargs(SMALL, NOISE, fp16)
    nimg = BATCH * 2  # schedules end after two iterations, so each value moves between them
    c = dnnlib.EasyDict(
        run_dir=str(run_dir), G_kwargs=g_kw, D_kwargs=d_kw,
        training_set_kwargs=dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset", path=str(data),
                                            use_labels=True, max_size=None, xflip=False, random_seed=0),
        data_loader_kwargs=dict(num_workers=0),
        G_opt_kwargs=dnnlib.EasyDict(class_name="torch.optim.Adam", betas=[0.0, 0.0], eps=1e-8),
        D_opt_kwargs=dnnlib.EasyDict(class_name="torch.optim.Adam", betas=[0.0, 0.0], eps=1e-8),
        loss_kwargs=dnnlib.EasyDict(class_name="training.loss.R3GANLoss"),
        ema_scheduler=dict(base_value=0, final_value=nimg, total_nimg=nimg),
        aug_scheduler=dict(base_value=0, final_value=0.55, total_nimg=nimg),
        lr_scheduler=dict(base_value=2e-4, final_value=5e-5, total_nimg=nimg),
        gamma_scheduler=dict(base_value=0.5, final_value=0.05, total_nimg=nimg),
        beta2_scheduler=dict(base_value=0.9, final_value=0.99, total_nimg=nimg),
        metrics=[], total_kimg=BATCH * iterations / 1000, kimg_per_tick=1, image_snapshot_ticks=1,
        network_snapshot_ticks=1, random_seed=0, num_gpus=1, batch_size=BATCH, g_batch_gpu=BATCH,
        d_batch_gpu=BATCH, cudnn_benchmark=False)
    run_dir.mkdir(parents=True)  # train.py's launch_training makes it
    loop.training_loop(rank=0, **c)
    return rec


def step_reference(work: Path, out: Path) -> None:
    """Two float64 iterations: initial weights, inputs and losses; the loop's own snapshot after them."""
    data = work / "data"
    write_image_folder(data, 8, SMALL["res"], SMALL["c_dim"])
    torch.set_default_dtype(torch.float64)
    initial: dict[str, dict] = {}
    import dnnlib

    construct = dnnlib.util.construct_class_by_name

    def keep_initial(*args, **kwargs):
        obj = construct(*args, **kwargs)
        name = kwargs.get("class_name", "")
        if name.startswith("training.networks."):
            initial[name.rsplit(".", 1)[1]] = copy.deepcopy(obj.state_dict())
        return obj

    dnnlib.util.construct_class_by_name = keep_initial
    use_reference_operators(True)  # the default CUDA operators' CPU fallbacks take float32 only
    rec = run_official_loop(work / "run64", data, torch.float64, [], 2)
    dnnlib.util.construct_class_by_name = construct
    torch.set_default_dtype(torch.float32)
    # The weights, EMA and Adam states after the two iterations are in the snapshot the loop wrote.
    shutil.copy(work / "run64" / "network-snapshot-000000000.pkl", out / "step-snapshot.pkl")
    ref: dict[str, torch.Tensor] = {}
    ref |= {f"init/G/{k}": v for k, v in initial["Generator"].items()}
    ref |= {f"init/D/{k}": v for k, v in initial["Discriminator"].items()}
    # The loop draws grid noise first (one randn for the sample grid), then D_z and G_z per iteration.
    loop_noise = [z for z in rec.noise if z.shape == (BATCH, NOISE)]
    for i in range(2):
        ref[f"input{i}/D_image"], ref[f"input{i}/D_label"] = rec.batches[2 * i]
        ref[f"input{i}/G_image"], ref[f"input{i}/G_label"] = rec.batches[2 * i + 1]
        ref[f"input{i}/D_z"], ref[f"input{i}/G_z"] = loop_noise[2 * i], loop_noise[2 * i + 1]
    for name, values in rec.losses.items():
        ref[f"loss/{name}"] = torch.stack([v.double() for v in values])
    torch.save(ref, out / "step.pt")


def bf16_reference(work: Path, out: Path) -> None:
    """One float32 iteration with two bf16 stages; the snapshot and its G_ema's float32 outputs."""
    import legacy

    use_reference_operators(False)  # as the released pickles hold them
    rec = run_official_loop(work / "run32", work / "data", torch.float32, [-1, -2], 1)
    del rec
    snapshot = work / "run32" / "network-snapshot-000000000.pkl"
    shutil.copy(snapshot, out / "bf16-snapshot.pkl")
    with open(snapshot, "rb") as f:
        G = legacy.load_network_pkl(f)["G_ema"]
    for stage in G.Model.MainLayers:
        stage.DataType = torch.float32
    gen = torch.Generator().manual_seed(3)
    z, y = torch.randn(3, NOISE, generator=gen), torch.tensor([0, 2, 1])
    with torch.no_grad():
        images = G(z, one_hot(y, SMALL["c_dim"]))
    torch.save({"z": z, "y": y, "G_ema": images}, out / "bf16.pt")


AUGMENT = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=0.5, contrast=0.5,
               lumaflip=0.5, hue=0.5, saturation=0.5, cutout=1)  # train.py's --aug=1


def augment_reference() -> dict[str, torch.Tensor]:
    """The official AugmentPipe (train.py's --aug=1 settings) on seeded images: colour and grey, two
    probabilities, each with the global generator seeded before the call."""
    from training.augment import AugmentPipe

    pipe = AugmentPipe(**AUGMENT)
    gen = torch.Generator().manual_seed(9)
    out: dict[str, torch.Tensor] = {}
    for channels in (3, 1):
        images = torch.rand(6, channels, 16, 16, generator=gen) * 2 - 1
        out[f"c{channels}/images"] = images
        for p in (0.6, 1.0):
            pipe.p.copy_(torch.tensor(p))
            torch.manual_seed(100 + channels)
            out[f"c{channels}/p{p}"] = pipe(images)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of brownvc/R3GAN")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(args.official.resolve()))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(official_networks(), args.out / "networks.pt")
    torch.save(augment_reference(), args.out / "augment.pt")
    with tempfile.TemporaryDirectory() as tmp:
        step_reference(Path(tmp), args.out)
        bf16_reference(Path(tmp), args.out)


if __name__ == "__main__":
    main()
