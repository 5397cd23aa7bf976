"""Run two iterations of clovaai/stargan-v2's own ``Solver.train`` on fixed inputs and record what they do.

Not part of the package: it needs a copy of the official code (github.com/clovaai/stargan-v2), which
ganforge does not ship:

    python scripts/starganv2_official_step_reference.py --official /tmp/stargan-v2 \
        --out tests/data/starganv2_official_step.pt
    python scripts/starganv2_official_step_reference.py --official /tmp/stargan-v2 --w-hpf 1 \
        --out tests/data/starganv2_official_step_hpf1.pt

The official ``Solver`` and its ``train`` loop run unchanged: the order of the four updates, which
optimizers each steps, the losses, R1, the diversity decay and Adam's settings all come from the official
code. Only what surrounds it is replaced:

- the data: ``core.data_loader.InputFetcher`` hands out fixed inputs (sources, domains, the reference
  pair and its domain, two latent codes per iteration), seeded here;
- checkpoints, sample images and metrics (``core.checkpoint``, ``metrics.eval``) are inert: the loop's
  ``*_every`` settings never reach them in two iterations;
- the networks' width: the official widths (``2**14 // img_size`` channels at the input) are too slow
  for a test on a CPU, so the module is loaded with ``2**9`` in place of ``2**14`` (16 channels at 32 px;
  ganforge's ``model.base_dim=16``). The networks at the official width are compared separately
  (``scripts/starganv2_official_reference.py``);
- the weights: after the official initialization, every state dict is filled in key order from a
  seeded generator (``tests/gfhelpers.fill_by_key_order``), as the test fills ganforge's networks.
  With ``--w-hpf 1`` (the CelebA-HQ generator: the extra level, the high-pass path and the landmark
  masks) the official ``FAN`` is filled the same way (seed ``FAN_SEED``) and handed to the official
  ``build_model`` as its ``wing.ckpt``.

Everything runs in float64 (see ``main``). Written: the inputs, every loss the official loop computes (``D/latent_real`` ... ``G/ref_cyc``, per
iteration), and for every parameter tensor of G, F, E and D, four seeded random projections of its
change over the two iterations (the full tensors would not fit in the repository; any different
update moves the projections).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gfhelpers import fill_by_key_order, update_projections  # noqa: E402

IMG_SIZE, NUM_DOMAINS, LATENT_DIM, STYLE_DIM, BATCH, ITERATIONS = 32, 3, 16, 64, 2, 2
WIDTH = 2 ** 9  # in place of the official 2**14
HYPER = {"lambda_reg": 1.0, "lambda_sty": 1.0, "lambda_ds": 2.0, "lambda_cyc": 1.0, "ds_iter": 4, "lr": 1e-4,
         "f_lr": 1e-6, "beta1": 0.0, "beta2": 0.99, "weight_decay": 1e-4}
NETS = ("generator", "mapping_network", "style_encoder", "discriminator")  # fill seeds 0..3, in this order
FAN_SEED = 4


class _AttrDict(dict):
    """Stand-in for ``munch.Munch`` (a dict with attribute access)."""

    __getattr__ = dict.__getitem__
    __setattr__ = dict.__setitem__


def fixed_inputs() -> list[dict[str, torch.Tensor]]:
    """What the official fetcher would hand out, one dict per iteration (seeded)."""
    gen = torch.Generator().manual_seed(7)
    out = []
    for _ in range(ITERATIONS):
        x = torch.rand(BATCH, 3, IMG_SIZE, IMG_SIZE, generator=gen) * 2 - 1
        ref = torch.rand(BATCH, 3, IMG_SIZE, IMG_SIZE, generator=gen) * 2 - 1
        ref2 = torch.rand(BATCH, 3, IMG_SIZE, IMG_SIZE, generator=gen) * 2 - 1
        y = torch.randint(NUM_DOMAINS, (BATCH,), generator=gen)
        y_ref = torch.randint(NUM_DOMAINS, (BATCH,), generator=gen)
        out.append({"x_src": x, "y_src": y, "x_ref": ref, "x_ref2": ref2, "y_ref": y_ref})
    return out


def latent_codes() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(z, z2) per iteration, drawn as ganforge's noise stream draws them (seed 11, z then z2)."""
    gen = torch.Generator().manual_seed(11)
    return [(torch.randn(BATCH, LATENT_DIM, generator=gen), torch.randn(BATCH, LATENT_DIM, generator=gen))
            for _ in range(ITERATIONS)]


def _module(name: str, path: Path | None = None, source: str | None = None, **attrs) -> types.ModuleType:
    """A module from ``path`` (its text, optionally changed to ``source``), or an empty one with ``attrs``."""
    module = types.ModuleType(name)
    if path is not None:
        module.__file__ = str(path)
        exec(compile(source if source is not None else path.read_text(), str(path), "exec"), module.__dict__)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def load_official_solver(folder: Path, inputs: list[dict], codes: list[tuple]) -> types.ModuleType:
    for name in ("munch", "cv2", "skimage", "skimage.filters", "ffmpeg"):
        if name not in sys.modules and (name.split(".")[0] in sys.modules
                                        or importlib.util.find_spec(name.split(".")[0]) is None):
            _module(name, Munch=_AttrDict, gaussian=None)
    sys.path.insert(0, str(folder.resolve()))
    core = _module("core")
    core.__path__ = [str(folder / "core")]  # type: ignore[attr-defined]
    model_text = (folder / "core" / "model.py").read_text()
    assert model_text.count("2**14 // img_size") == 3, "core/model.py is not the expected version"
    core.model = _module("core.model", folder / "core" / "model.py", model_text.replace("2**14", str(WIDTH)))
    stream = iter([_AttrDict(**batch, z_trg=z, z_trg2=z2) for batch, (z, z2) in zip(inputs, codes)])

    class FixedFetcher:
        def __init__(self, *_args, **_kwargs):
            self.mode = _args[3] if len(_args) > 3 else "train"

        def __next__(self):
            return _AttrDict() if self.mode == "val" else next(stream)

    _module("core.data_loader", InputFetcher=FixedFetcher)
    _module("core.checkpoint", CheckpointIO=lambda *a, **k: None)
    _module("metrics")
    _module("metrics.eval", calculate_metrics=None)
    return _module("core.solver", folder / "core" / "solver.py")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="the official repository folder (with core/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--w-hpf", type=float, default=0.0, choices=[0.0, 1.0],
                    help="0: the AFHQ generator (default); 1: the CelebA-HQ one, with FAN masks")
    args = ap.parse_args()
    # float64 throughout: in float32 the second iteration's updates differ between thread counts by up to
    # 8% of their size (Adam's first step with beta1 = 0 is lr * sign(g), so rounding noise in tiny gradients
    # flips whole entries); in float64 two runs agree to 1e-12 and the comparison can be tight.
    torch.set_default_dtype(torch.float64)
    inputs, codes = fixed_inputs(), latent_codes()
    solver_module = load_official_solver(Path(args.official), inputs, codes)
    losses: dict[str, list[float]] = {}
    phase_names = iter(["D/latent_", "D/ref_", "G/latent_", "G/ref_"] * ITERATIONS)

    def recording(fn):
        def wrapped(*a, **k):
            loss, parts = fn(*a, **k)
            prefix = next(phase_names)
            for key, value in parts.items():
                losses.setdefault(prefix + key, []).append(value)
            return loss, parts
        return wrapped

    solver_module.compute_d_loss = recording(solver_module.compute_d_loss)
    solver_module.compute_g_loss = recording(solver_module.compute_g_loss)
    wing_path = Path(args.out).with_suffix(".wing.tmp")
    if args.w_hpf > 0:
        fan = sys.modules["core.wing"].FAN()
        fill_by_key_order(fan, FAN_SEED)
        torch.save({"state_dict": fan.state_dict()}, wing_path)
    solver_args = types.SimpleNamespace(
        img_size=IMG_SIZE, num_domains=NUM_DOMAINS, latent_dim=LATENT_DIM, style_dim=STYLE_DIM, w_hpf=args.w_hpf,
        wing_path=str(wing_path), mode="train", checkpoint_dir="unused", resume_iter=0, total_iters=ITERATIONS,
        print_every=10**9, sample_every=10**9, save_every=10**9, eval_every=10**9, **HYPER)
    torch.manual_seed(0)
    solver = solver_module.Solver(solver_args)
    wing_path.unlink(missing_ok=True)
    for seed, name in enumerate(NETS):
        fill_by_key_order(solver.nets[name].module, seed)
    before = {name: {k: v.detach().clone() for k, v in solver.nets[name].module.named_parameters()} for name in NETS}
    solver.train(_AttrDict(src=None, ref=None, val=None))
    after = {name: dict(solver.nets[name].module.named_parameters()) for name in NETS}
    ref: dict[str, torch.Tensor] = {}
    for i, batch in enumerate(inputs):
        ref.update({f"input{i}/{k}": v for k, v in batch.items()})
        ref[f"input{i}/z"], ref[f"input{i}/z2"] = codes[i]
    ref.update({f"loss/{k}": torch.tensor(v, dtype=torch.float64) for k, v in losses.items()})
    for name in NETS:
        ref.update({f"update/{name}/{k}": p for k, p in update_projections(before[name], after[name]).items()})
    torch.save(ref, args.out)
    counts = {name: sum(p.numel() for p in before[name].values()) for name in NETS}
    print(f"wrote {args.out}: {len(losses)} losses x {ITERATIONS} iterations, "
          f"{sum(len(b) for b in before.values())} parameter tensors; parameters {counts}")


if __name__ == "__main__":
    main()
