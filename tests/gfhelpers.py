"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path via `pythonpath`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny_overrides(out_dir: Path, **extra) -> list[str]:
    """A WGAN-GP run small enough for a unit test (32px, 8-channel networks, batch 8)."""
    base = {
        "out_dir": str(out_dir), "model.image_size": 32, "model.z_dim": 16, "model.g_channels": 8,
        "model.d_channels": 8, "recipe.n_critic": 2, "data.image_size": 32, "data.length": 64,
        "data.num_workers": 0, "train.batch_size": 8, "train.steps": 6, "train.log_every": 1,
        "train.sample_every": 3, "train.ckpt_every": 3, "train.sample_count": 4, "train.progress": False,
        "train.tensorboard": False, "runtime.deterministic": True, "runtime.device": "cpu",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def short_run(out_dir: Path, family: dict, **extra) -> list[str]:
    """Overrides for a 4-step CPU run named ``run`` under ``out_dir`` (batch 4, log every step, samples and
    checkpoints every 2, deterministic), with the family's small-network ``family`` settings and ``extra``."""
    base = {"out_dir": str(out_dir), "name": "run", "data.num_workers": 0, "train.batch_size": 4,
            "train.steps": 4, "train.log_every": 1, "train.sample_every": 2, "train.ckpt_every": 2,
            "train.progress": False, "train.tensorboard": False, "runtime.deterministic": True,
            "runtime.device": "cpu", **family, **extra}
    return [f"{k}={v}" for k, v in base.items()]


def python_env() -> dict[str, str]:
    """Environment for subprocesses running ganforge from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


PYTHON = sys.executable


def check_exports(run: Path, seed: int, out_dir: Path, atol: float = 1e-5) -> None:
    """Export ``run``'s generator as a torch.export program, TorchScript and ONNX; each must reproduce
    PyTorch on its example inputs, two samples (ONNX only where onnxruntime is installed), and the
    program another batch size as well."""
    import numpy as np
    import torch

    import ganforge
    from ganforge.cli import main

    gen = ganforge.load(run)
    inputs = gen.make_inputs(2, seed=seed)
    expected = gen(*inputs)
    assert main(["export", str(run), "--format", "pt2", "--out", str(out_dir / "pt2")]) == 0
    program = torch.export.load(str(out_dir / "pt2" / "generator.pt2")).module()
    assert torch.allclose(program(*inputs), expected, atol=atol)
    five = gen.make_inputs(5, seed=seed + 1)  # the batch size is not fixed at export
    assert torch.allclose(program(*five), gen(*five), atol=atol)
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out_dir / "ts")]) == 0
    assert torch.allclose(torch.jit.load(str(out_dir / "ts" / "generator.pt"))(*inputs), expected, atol=atol)
    try:
        import onnxruntime as ort
    except ImportError:
        return
    assert main(["export", str(run), "--format", "onnx", "--out", str(out_dir / "onnx")]) == 0
    session = ort.InferenceSession(str(out_dir / "onnx" / "generator.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {f"input_{i}": t.numpy() for i, t in enumerate(inputs)})
    assert np.allclose(out, expected.numpy(), atol=atol)


def assert_states_equal(a: dict, b: dict) -> None:
    """Two checkpoints hold the same step, data position, weights, optimizer states, EMA and noise."""
    import torch

    assert a["step"] == b["step"] and a["data_position"] == b["data_position"]
    for name in a["networks"]:
        for key, value in a["networks"][name].items():
            assert torch.equal(value, b["networks"][name][key]), f"{name}.{key} differs"
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for idx in sa:
            for key in sa[idx]:
                assert torch.equal(torch.as_tensor(sa[idx][key]), torch.as_tensor(sb[idx][key])), f"opt {name} {idx} {key}"
    if a["ema"] is not None:
        for key, value in a["ema"].items():
            assert torch.equal(value, b["ema"][key]), f"ema.{key} differs"
    assert torch.equal(a["rng"]["generators"]["noise"], b["rng"]["generators"]["noise"])


def assert_latest_checkpoints_equal(run_a: Path, run_b: Path) -> None:
    """The newest checkpoints of two run folders are identical (resume continued bit for bit)."""
    from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint

    assert_states_equal(load_checkpoint(latest_checkpoint(run_a / "checkpoints")),
                        load_checkpoint(latest_checkpoint(run_b / "checkpoints")))


def assert_official_output(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    """The bar for official outputs: max abs difference below ``tol`` in fp32, relative to the
    output's scale where that exceeds 1. The references were computed on another CPU, whose kernels
    sum in another order; on the CPU that wrote them the outputs are bit-identical."""
    diff = (actual - expected).abs().max().item()
    bound = tol * max(1.0, expected.abs().max().item())
    assert diff < bound, f"max abs difference {diff:.3g} from the official output, allowed {bound:.3g}"


def fill_by_key_order(module, seed: int, std: float = 0.05) -> None:
    """Give every floating tensor of ``module``'s state dict, in key order, values from one seeded
    generator: normal(0, std), but BatchNorm running variances uniform in [0.5, 1.5] and gains near 1.
    Two networks with the same keys in the same order get the same weights, which lets a small
    reference file (inputs and outputs only) stand for an official network too big to store."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif key.endswith(".weight") and tensor.dim() == 1:  # norm gains
                tensor.copy_(1 + torch.randn(tensor.shape, generator=gen) * std)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * std)


def face_like_heatmaps(batch: int, seed: int) -> torch.Tensor:
    """98 Gaussian blobs (sigma 4 px) at seeded positions on a 256 px grid: sparse, like real heatmaps."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    cy = torch.randint(40, 216, (batch, 98, 1, 1), generator=gen).float()
    cx = torch.randint(40, 216, (batch, 98, 1, 1), generator=gen).float()
    rows, cols = torch.arange(256.0).view(1, 1, 256, 1), torch.arange(256.0).view(1, 1, 1, 256)
    return torch.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * 4.0 ** 2))


def fan_probe() -> tuple[torch.Tensor, torch.Tensor]:
    """The FAN's input (2 images in [0, 1] at 256 px) and 4,096 positions of its output to compare."""
    import torch

    gen = torch.Generator().manual_seed(11)
    faces = torch.rand(2, 3, 256, 256, generator=gen)
    return faces, torch.randint(0, 2 * 99 * 64 * 64, (4096,), generator=gen)


def update_projections(before: dict, after: dict, count: int = 4) -> dict:
    """For each parameter tensor (name -> tensor, before and after training), ``count`` projections of its
    change onto random normal vectors seeded by the name, and the change's L1 norm: ``count + 1`` float64
    numbers that move with any difference in the update, small enough to store for large networks."""
    import zlib

    import torch

    out = {}
    for key, old in before.items():
        delta = (after[key].detach().double() - old.double()).flatten()
        gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        directions = torch.randn(count, delta.numel(), generator=gen, dtype=torch.float64)
        out[key] = torch.cat([directions @ delta, delta.abs().sum()[None]])
    return out


def fill_tflib_params(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Values for TensorFlow variables named as tflib names them (igul222/improved_wgan_training), in
    sorted name order from one seeded NumPy generator: ``normal(0, 0.2)`` for weights, ``normal(0, 0.5)``
    for biases and norm shifts, ``1 + normal(0, 0.2)`` for norm scales. The reference script fills the
    official TensorFlow graph with these and the tests fill ganforge's network, so no weights are stored."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        draw = rng.standard_normal(shapes[name]).astype(np.float32)
        if name.endswith(".scale"):
            values[name] = 1.0 + 0.2 * draw
        elif name.endswith((".offset", ".b", ".Biases")):
            values[name] = 0.5 * draw
        else:
            values[name] = 0.2 * draw
    return values


def grid_size(path: Path, k: int = 0) -> tuple[int, int]:
    """(width, height) of the ``k``-th image grid in a picture ganforge saved, its labels left out."""
    from ganforge.sample.grid import grid_boxes

    boxes = grid_boxes(path)
    assert boxes, f"{path} records no grid"
    return boxes[k][2], boxes[k][3]


def labelled_columns(path: Path, columns: int) -> list[bool]:
    """For each of the ``columns`` columns of the first grid in ``path``: whether dark pixels (a header's
    letters) lie in the white band right above it."""
    import numpy as np
    from PIL import Image

    left, top, width, _ = grid_size_box(path)
    pixels = np.asarray(Image.open(path).convert("L"))
    cell = (width - 2) // columns
    band = pixels[max(0, top - 60):top]
    return [bool((band[:, left + 2 + k * cell:left + (k + 1) * cell] < 128).any()) for k in range(columns)]


def grid_size_box(path: Path) -> tuple[int, int, int, int]:
    from ganforge.sample.grid import grid_boxes

    return grid_boxes(path)[0]


def _idx(path: Path, array: "np.ndarray", gz: bool = True) -> None:
    import gzip

    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_fashion_idx(root: Path, n_train: int = 20, n_test: int = 5) -> "np.ndarray":
    """Fashion-MNIST's four IDX files with random images under ``root`` (labels: index mod 10); the train images."""
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (n_train, 28, 28))
    _idx(root / "train-images-idx3-ubyte.gz", images)
    _idx(root / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _idx(root / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)), gz=False)  # plain files work too
    _idx(root / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, gz=False)
    return images
