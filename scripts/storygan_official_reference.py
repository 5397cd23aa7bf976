"""Build yitong91/StoryGAN's own networks and write official-format files plus reference outputs.

Not part of the package: it needs a copy of the official code (github.com/yitong91/StoryGAN,
``code/model.py`` and ``code/layers.py``), which ganforge does not ship. The files it writes
(tests/data/storygan_official/) let the tests prove that ``ganforge import storygan`` reproduces the
official outputs without the official code:

    python scripts/storygan_official_reference.py --official /tmp/StoryGAN/code --out tests/data/storygan_official

The official code is written for CUDA; here it runs on the CPU with the two patches users make by
hand: its config module is replaced by the CLEVR values below, and ``Tensor.cuda`` (called inside
``DynamicFilterLayer``) returns the tensor itself.

Written: ``netG_epoch_5.pth``, ``netD_im_epoch_last.pth`` and ``netD_st_epoch_last.pth`` as the
official ``save_model`` names them, and ``reference.pt`` with inputs, the noise the official
``sample_videos``/``sample_images`` drew, and their outputs in train and eval mode (fp32, CPU).
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch


class _Cfg(dict):
    """The official EasyDict-style config object (attribute access)."""

    __getattr__ = dict.__getitem__


# CLEVR's config (code/cfg/clevr.yml) with narrow networks, so the files stay small.
CFG = _Cfg(CUDA=False, VIDEO_LEN=4, LABEL_NUM=15, ST_WEIGHT=1.0,
           GAN=_Cfg(CONDITION_DIM=75, DF_DIM=4, GF_DIM=4, Z_DIM=100, R_NUM=4), TEXT=_Cfg(DIMENSION=75))


def _load_official(folder: Path) -> types.ModuleType:
    miscc, config = types.ModuleType("miscc"), types.ModuleType("miscc.config")
    config.cfg = CFG  # type: ignore[attr-defined]
    sys.modules["miscc"], sys.modules["miscc.config"] = miscc, config
    sys.path.insert(0, str(folder.resolve()))
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    import model  # noqa: E402  (the official module)

    return model


def _noise_of(draw, seed: int) -> tuple[tuple, list[torch.Tensor]]:
    """Run ``draw`` with ``seed`` and record every normal_() tensor the official code fills (its noise)."""
    drawn: list[torch.Tensor] = []
    original = torch.Tensor.normal_

    def record(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        drawn.append(out.detach().clone())
        return out

    torch.manual_seed(seed)
    torch.Tensor.normal_ = record  # type: ignore[method-assign]
    try:
        result = draw()
    finally:
        torch.Tensor.normal_ = original  # type: ignore[method-assign]
    return result, drawn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="the official code folder (model.py, layers.py)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    official = _load_official(Path(args.official))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    G, D_im, D_st = official.StoryGAN(4), official.D_IMG(), official.D_STY()
    # BN gains away from 1, and a few training forwards so the running statistics move.
    with torch.no_grad():
        for net in (G, D_im, D_st):
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        for _ in range(3):
            d = torch.rand(6, 4, 75)
            G.sample_videos(d, d)
            G.sample_images(d[:, 0], d.mean(1))
            D_st(torch.rand(6, 3, 4, 64, 64) * 2 - 1)
            D_im(torch.rand(6, 3, 64, 64) * 2 - 1)
    descriptions = torch.rand(3, 4, 75).round()
    descriptions[..., 72:] = torch.rand(3, 4, 3)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    stories = torch.rand(3, 4, 3, 64, 64) * 2 - 1
    ref: dict[str, torch.Tensor] = {"descriptions": descriptions, "images": images, "stories": stories}
    with torch.no_grad():
        for mode in ("train", "eval"):
            for net in (G, D_im, D_st):
                net.train(mode == "train")
            (_, video, c_mu, *_), noise = _noise_of(lambda: G.sample_videos(descriptions, descriptions), 1)
            ref[f"{mode}/story"] = video.permute(0, 2, 1, 3, 4)  # official (N, C, T, H, W) -> ours (N, T, C, H, W)
            ref[f"{mode}/story_noise"] = torch.stack(noise, 1)
            ref[f"{mode}/story_condition"] = c_mu
            content = descriptions.mean(1)
            (_, image, *_), noise = _noise_of(lambda: G.sample_images(descriptions[:, 2], content), 2)
            ref[f"{mode}/image"], ref[f"{mode}/image_noise"] = image, noise[0]
            f_im = D_im(images)
            ref[f"{mode}/d_im_prob"] = D_im.get_cond_logits(f_im, descriptions[:, 0])
            ref[f"{mode}/d_im_categories"] = D_im.cate_classify(f_im).squeeze()
            f_st = D_st(stories.permute(0, 2, 1, 3, 4))
            ref[f"{mode}/d_st_prob"] = D_st.get_cond_logits(f_st, content)
    torch.save(G.state_dict(), out / "netG_epoch_5.pth")
    torch.save(D_im.state_dict(), out / "netD_im_epoch_last.pth")
    torch.save(D_st.state_dict(), out / "netD_st_epoch_last.pth")
    torch.save(ref, out / "reference.pt")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
