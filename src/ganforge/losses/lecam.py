"""LeCam regularization (Tseng et al. 2021, "Regularizing Generative Adversarial Networks under
Limited Data"), as its official BigGAN code computes it.

D's outputs on real and fake images are pulled towards moving anchors of each other:

    R = mean(relu(D(x) - a_fake)^2) + mean(relu(a_real - D(G(z)))^2)

where ``a_real`` and ``a_fake`` are exponential moving averages of the batch means of D's outputs on
reals and fakes. The official ``ema_losses``: both start at 1000, follow each D step's means with
decay 0.9, but simply copy the current means for the first ``start`` iterations (1000), and the
penalty (weight 0.3 in its scripts) is added only after them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lecam_penalty(d_real: torch.Tensor, d_fake: torch.Tensor, anchor_real: float, anchor_fake: float) -> torch.Tensor:
    """The LeCam term for D's outputs on reals and fakes and the anchors (floats), in fp32."""
    return F.relu(d_real.float() - anchor_fake).pow(2).mean() + F.relu(anchor_real - d_fake.float()).pow(2).mean()


class LecamAnchors:
    """The moving anchors of D's mean outputs on reals and fakes; checkpointed through ``state_dict``."""

    def __init__(self, decay: float = 0.9, start: int = 1000, init: float = 1000.0):
        self.decay, self.start = decay, start
        self.real = self.fake = init

    def update(self, real_mean: float, fake_mean: float, iteration: int) -> None:
        """Follow this D step's means; before iteration ``start`` the anchors are the means themselves."""
        decay = 0.0 if iteration < self.start else self.decay
        self.real = self.real * decay + real_mean * (1 - decay)
        self.fake = self.fake * decay + fake_mean * (1 - decay)

    def active(self, iteration: int) -> bool:
        """Whether the penalty applies at ``iteration`` (1-based, as the official counter)."""
        return iteration > self.start

    def state_dict(self) -> dict[str, float]:
        return {"real": float(self.real), "fake": float(self.fake)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.real, self.fake = float(state["real"]), float(state["fake"])


def lecam_step(anchors: LecamAnchors, d_real: torch.Tensor, d_fake: torch.Tensor, iteration: int, weight: float,
               world_size: int = 1) -> torch.Tensor:
    """One D step's LeCam term: the anchors follow this step's mean outputs (averaged over the
    ``world_size`` processes, so every rank keeps the same anchors), then the weighted penalty, or 0
    while ``iteration`` (1-based, the official counter) is not past the anchors' start."""
    means = torch.stack([d_real.detach().float().mean(), d_fake.detach().float().mean()])
    if world_size > 1:
        torch.distributed.all_reduce(means)
        means /= world_size
    anchors.update(float(means[0]), float(means[1]), iteration)
    if not anchors.active(iteration):
        return torch.zeros((), device=d_real.device)
    return weight * lecam_penalty(d_real, d_fake, anchors.real, anchors.fake)
