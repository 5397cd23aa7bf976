"""Run clovaai/stargan-v2's own networks on fixed inputs and write their outputs for the tests.

Not part of the package: it needs a copy of the official code (github.com/clovaai/stargan-v2,
``core/model.py`` and ``core/wing.py``), which ganforge does not ship:

    python scripts/starganv2_official_reference.py --official /tmp/stargan-v2 --out tests/data/starganv2_official.pt

The official networks at 256 px are far too large for the repository (G alone is 34-43 M parameters),
so no weights are stored: every network's state dict is filled in key order from a seeded generator
(``tests/gfhelpers.fill_by_key_order``), and the tests fill ganforge's networks, whose keys are the
official ones in the same order, the same way. The official modules import ``munch``, ``cv2`` and
``skimage`` at the top but the networks do not use them; stand-ins are installed when they are missing.

Written: the inputs (images, domains, z, styles, face-like landmark heatmaps) and the outputs of G
(with and without masks), F, E and D for an AFHQ-style (3 domains, w_hpf 0) and a CelebA-HQ-style
(2 domains, w_hpf 1) configuration at 64 px (masks reach the 32 and 64 px skips; 128 px takes the same
path), the FAN's heatmaps at 4,096 seeded positions of a seeded input, and the two masks the official ``preprocess`` makes of the heatmaps (fp32, CPU).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gfhelpers import face_like_heatmaps, fan_probe, fill_by_key_order  # noqa: E402

# (name, image size, domains, w_hpf)
CONFIGS = (("afhq", 64, 3, 0.0), ("celebahq", 64, 2, 1.0))


class _AttrDict(dict):
    """Stand-in for ``munch.Munch`` (a dict with attribute access)."""

    __getattr__ = dict.__getitem__


def _load_official(folder: Path) -> tuple[types.ModuleType, types.ModuleType]:
    for name in ("munch", "cv2", "skimage", "skimage.filters"):
        try:
            importlib.import_module(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.Munch = _AttrDict  # type: ignore[attr-defined]
            stub.gaussian = None  # type: ignore[attr-defined]
            sys.modules[name] = stub
    sys.path.insert(0, str(folder.resolve()))
    return importlib.import_module("core.model"), importlib.import_module("core.wing")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="the official repository folder (with core/)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model, wing = _load_official(Path(args.official))
    gen = torch.Generator().manual_seed(0)
    ref: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, size, domains, w_hpf in CONFIGS:
            x = torch.rand(2, 3, size, size, generator=gen) * 2 - 1
            y = torch.tensor([domains - 1, 0])
            z, s = torch.randn(2, 16, generator=gen), torch.randn(2, 64, generator=gen)
            masks = (torch.rand(2, 1, size, size, generator=gen), torch.rand(2, 1, size, size, generator=gen))
            nets = {"G": model.Generator(size, 64, w_hpf=w_hpf), "F": model.MappingNetwork(16, 64, domains),
                    "E": model.StyleEncoder(size, 64, domains), "D": model.Discriminator(size, domains)}
            for seed, net in enumerate(nets.values()):
                fill_by_key_order(net, seed)
                net.eval()
            ref.update({f"{name}/x": x, f"{name}/y": y, f"{name}/z": z, f"{name}/s": s,
                        f"{name}/G": nets["G"](x, s), f"{name}/F": nets["F"](z, y),
                        f"{name}/E": nets["E"](x, y), f"{name}/D": nets["D"](x, y)})
            if w_hpf > 0:
                ref[f"{name}/masks"] = torch.cat(masks, 1)
                ref[f"{name}/G_masked"] = nets["G"](x, s, masks)
        fan = wing.FAN()
        fill_by_key_order(fan, 7)
        fan.eval()
        faces, positions = fan_probe()
        ref["fan/heatmaps_at"] = fan(faces)[0][-1].flatten()[positions]
        heatmaps = face_like_heatmaps(1, 3)
        ref["masks/seed"] = torch.tensor(3)
        ref["masks/outputs"] = torch.cat(wing.preprocess(heatmaps.clone()), 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ref, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
