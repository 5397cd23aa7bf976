"""Build BigGAN-PyTorch's own networks and write official-format files plus reference outputs.

Not part of the package: it needs a copy of the official code (github.com/ajbrock/BigGAN-PyTorch,
``BigGAN.py``, ``layers.py``, ``sync_batchnorm/``), which ganforge does not ship. The files it writes
(tests/data/biggan_official/) let the tests prove that ``ganforge import biggan`` reproduces the
official outputs without the official code:

    python scripts/biggan_official_reference.py --official /tmp/BigGAN-PyTorch --out tests/data/biggan_official

Written by the official ``utils.save_weights``, as ``train.py`` calls it: ``G.pth``, ``G_ema.pth``,
``D.pth``, ``G_optim.pth``, ``D_optim.pth`` and ``state_dict.pth``, whose ``config`` is the official
parser's defaults updated with CONFIG, with ``G_activation``/``D_activation`` set from
``utils.activation_dict`` as ``train.py``'s ``run()`` sets them (so it pickles ``nn.ReLU`` modules, as
every official save does); ``mybn/G_ema.pth`` from a ``--mybn`` generator; ``reference.pt`` with
inputs and the official outputs (fp32, CPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

# A tiny network with every feature the import must get right: attention in G and D, the shared
# embedding, hierarchical z, SN eps, N classes, non-zero attention gains and moved BN statistics.
CONFIG = {"model": "BigGAN", "resolution": 32, "n_classes": 5, "G_ch": 4, "D_ch": 4, "dim_z": 20,
          "G_shared": True, "shared_dim": 8, "hier": True, "G_attn": "16", "D_attn": "16", "D_wide": True,
          "G_param": "SN", "D_param": "SN", "num_G_SVs": 1, "num_D_SVs": 1, "num_G_SV_itrs": 1, "num_D_SV_itrs": 1,
          "SN_eps": 1e-6, "BN_eps": 1e-5, "G_init": "ortho", "D_init": "ortho", "G_lr": 1e-4, "D_lr": 4e-4,
          "G_B1": 0.0, "G_B2": 0.999, "D_B1": 0.0, "D_B2": 0.999, "adam_eps": 1e-6, "num_D_steps": 1,
          "num_D_accumulations": 2, "num_G_accumulations": 2, "G_batch_size": 0, "split_D": False,
          "G_ortho": 0.0, "D_ortho": 0.0, "batch_size": 6, "ema": True, "ema_decay": 0.9999, "ema_start": 20,
          "G_eval_mode": True, "norm_style": "bn", "G_nl": "relu", "D_nl": "relu", "cross_replica": False,
          "mybn": False}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="folder with the official BigGAN.py and layers.py")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.official).resolve()))
    import BigGAN  # noqa: E402  (the official modules)
    import utils  # noqa: E402

    out = Path(args.out)
    (out / "mybn").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = {**vars(utils.prepare_parser().parse_args([])), **CONFIG}
    config["G_activation"] = utils.activation_dict[config["G_nl"]]  # as train.py's run()
    config["D_activation"] = utils.activation_dict[config["D_nl"]]
    G = BigGAN.Generator(**config)  # as train.py builds them
    D = BigGAN.Discriminator(**config)
    G_ema = BigGAN.Generator(**{**config, "skip_init": True, "no_optim": True})
    with torch.no_grad():
        for net, gain in ((G, 0.6), (D, -0.4)):
            for blocks in net.blocks:
                for block in blocks:
                    if hasattr(block, "gamma"):
                        block.gamma.fill_(gain)
    # A few training forwards and one Adam step each: BN statistics, SN vectors and Adam's state
    # all leave their initial values.
    y_all = torch.randint(5, (6,))
    for _ in range(3):
        z = torch.randn(6, G.dim_z)
        fake = G(z, G.shared(y_all))
        loss = -D(fake, y_all).mean()
        G.optim.zero_grad()
        D.optim.zero_grad()
        loss.backward()
        G.optim.step()
        D.optim.step()
    G_ema.load_state_dict(G.state_dict())
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state_dict = {"itr": 1234, "epoch": 2, "save_num": 0, "save_best_num": 0, "best_IS": 0, "best_FID": 999999,
                  "config": config}  # train.py's state_dict, at a later iteration
    utils.save_weights(G, D, state_dict, str(out.parent), out.name, None, G_ema)
    torch.manual_seed(1)
    z, y, x = torch.randn(4, G.dim_z), torch.tensor([0, 3, 4, 1]), torch.rand(4, 3, 32, 32) * 2 - 1
    ref = {"z": z, "y": y, "x": x}
    with torch.no_grad():
        for name, net in (("G", G), ("G_ema", G_ema)):
            net.eval()
            ref[f"{name}_eval"] = net(z, net.shared(y))
            net.train()
            ref[f"{name}_train"] = net(z, net.shared(y))  # batch statistics (moves the stored ones)
        D.eval()
        ref["D_eval"] = D(x, y)
        D.train()
        ref["D_train"] = D(x, y)
        # --mybn: the statistics live in ccbn.bn (myBN); eval mode normalizes with them.
        torch.manual_seed(2)
        mybn = BigGAN.Generator(**{**config, "mybn": True, "no_optim": True})
        mybn.train()
        for _ in range(2):
            mybn(torch.randn(6, mybn.dim_z), mybn.shared(y_all))
        mybn.eval()
        torch.save(mybn.state_dict(), out / "mybn" / "G_ema.pth")
        ref["mybn_eval"] = mybn(z, mybn.shared(y))
    torch.save(ref, out / "reference.pt")
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))


if __name__ == "__main__":
    main()
