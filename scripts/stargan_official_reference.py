"""Make (and check) reference outputs of the official StarGAN networks.

Needs a copy of yunjey/stargan's model.py outside this repository (ganforge never ships it):

    python scripts/stargan_official_reference.py --official /path/to/yunjey-stargan --out tests/data/stargan_official
    python scripts/stargan_official_reference.py --official /path/to/yunjey-stargan --out /tmp/ref --full --check

It builds the official Generator and Discriminator with a fixed seed, gives every instance norm a
non-trivial affine and running statistics (a few train-mode forwards on random images), saves them
as ``{iter}-G.ckpt`` / ``{iter}-D.ckpt`` exactly as the official solver does (``torch.save`` of the
state dicts), and saves the inputs with the official outputs in ``reference.pt``:
- ``g_train``: G in train mode, which is how the official test loop runs it (it never calls eval()),
- ``g_eval``: G in eval mode (running statistics),
- ``d_src``, ``d_cls``: D's two heads.
``--check`` imports the checkpoints with ganforge and prints the largest differences.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

ITER = 200000


def official_module(folder: Path):
    spec = importlib.util.spec_from_file_location("official_stargan_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(official: Path, out: Path, full: bool) -> dict:
    model = official_module(official)
    torch.manual_seed(0)
    if full:  # the official defaults: 128 px, c_dim 5, 64 filters, 6 blocks
        size, c_dim, kw_g, kw_d = 128, 5, dict(conv_dim=64, c_dim=5, repeat_num=6), dict(conv_dim=64, repeat_num=6)
    else:  # small enough to keep in the repository
        size, c_dim, kw_g, kw_d = 32, 5, dict(conv_dim=8, c_dim=5, repeat_num=2), dict(conv_dim=8, repeat_num=4)
    G = model.Generator(**kw_g)
    D = model.Discriminator(image_size=size, c_dim=c_dim, **kw_d)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.normal_(1.0, 0.3)
                m.bias.normal_(0.0, 0.3)
        G.train()
        for _ in range(3):  # running statistics that differ from the defaults
            G(torch.rand(4, 3, size, size) * 2 - 1, torch.randint(0, 2, (4, c_dim)).float())
    out.mkdir(parents=True, exist_ok=True)
    torch.save(G.state_dict(), out / f"{ITER}-G.ckpt")
    torch.save(D.state_dict(), out / f"{ITER}-D.ckpt")
    x = torch.rand(3, 3, size, size) * 2 - 1
    c = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1]], dtype=torch.float32)
    with torch.no_grad():
        G.eval()  # first: a train-mode forward would move the running statistics away from the saved ones
        g_eval = G(x, c)
        G.train()
        g_train = G(x, c)
        d_src, d_cls = D(x)
    ref = {"x": x, "c": c, "g_train": g_train, "g_eval": g_eval, "d_src": d_src, "d_cls": d_cls}
    torch.save(ref, out / "reference.pt")
    return ref


def check(out: Path, ref: dict) -> None:
    import tempfile

    from ganforge.models.stargan.official import import_official
    from ganforge.models.stargan.translate import open_translator

    with tempfile.TemporaryDirectory() as tmp:
        import_official(out / f"{ITER}-G.ckpt", Path(tmp) / "run")
        tr = open_translator(Path(tmp) / "run", weights="raw")
        with torch.no_grad():
            ours = tr.generator(ref["x"], ref["c"])
            src, cls = tr.discriminator(ref["x"])
        print(f"G (official test mode) max |diff|: {(ours - ref['g_train']).abs().max().item():.3g}")
        print(f"D src max |diff|: {(src - ref['d_src']).abs().max().item():.3g}, "
              f"cls: {(cls - ref['d_cls']).abs().max().item():.3g}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", type=Path, required=True, help="folder with the official model.py")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--full", action="store_true", help="official default sizes (G 8.4M, D 44.8M parameters)")
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    ref = make(args.official, args.out, args.full)
    if args.check:
        check(args.out, ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
