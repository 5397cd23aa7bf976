"""torch-fidelity's InceptionV3 feature extractor, built from a state dict we loaded and checked.

torch-fidelity's constructor either downloads the weights or unpickles a path with
``weights_only=False``. We do neither: the weights come from :mod:`ganforge.metrics.weights`
(``weights_only=True``, hash checked) and are handed to the constructor in place of its download.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
import torch.nn as nn

FEATURES = ("2048", "logits_unbiased")  # torch-fidelity's layers for FID/KID/PR and for IS
_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _weights_in_place_of_download(state: dict | None) -> Iterator[None]:
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    def provide(*_args: object, **_kwargs: object) -> dict | None:
        return state

    with _PATCH_LOCK:
        original = fe.load_state_dict_from_url
        fe.load_state_dict_from_url = provide
        try:
            yield
        finally:
            fe.load_state_dict_from_url = original


def _extractor_class() -> type:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Extractor(FeatureExtractorInceptionV3):
        # A ``None`` state keeps the random init (used to read the architecture and in tests).
        def load_state_dict(self, state_dict, strict=True, assign=False):  # type: ignore[override]
            if state_dict is None:
                return None
            return super().load_state_dict(state_dict, strict=strict, assign=assign)

    return Extractor


def build_inception(state: dict | None) -> nn.Module:
    """The extractor with ``state`` loaded (``None``: random init). Outputs ``FEATURES``; input uint8."""
    with _weights_in_place_of_download(state):
        return _extractor_class()("inception-v3-compat", list(FEATURES))


@torch.no_grad()
def calibrate_batchnorm(net: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """Set every BatchNorm's running statistics to the statistics of ``batches`` (uint8 images).

    A randomly initialised Inception's activations shrink or explode layer after layer, which makes
    every metric degenerate; normalising each layer by its own statistics (as training would) gives
    a random but well-conditioned feature space, good enough to test the metric pipeline end to end.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    net.train()
    for batch in batches:
        net(batch)
    net.eval()
    return net


class ImageNetInceptionPool(nn.Module):
    """torchvision's ImageNet Inception-v3 up to its 2048-d average pool, as the official multi-domain translation code's
    ``metrics/fid.py`` uses it: each uint8 image resized to 299x299 with PIL's bilinear filter,
    scaled to [0, 1], normalized with the ImageNet mean and std (no ``transform_input``)."""

    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, state: dict | None):
        super().__init__()
        import torchvision

        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                              transform_input=False)
        if state is not None:
            net.load_state_dict(state)
        net.fc = nn.Identity()  # in eval mode the network then returns the pooled features
        self.net = net.eval()
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> (N, 2048)."""
        import numpy as np
        from PIL import Image

        resized = [np.asarray(Image.fromarray(img.permute(1, 2, 0).cpu().numpy()).resize((299, 299), Image.BILINEAR))
                   for img in images]
        x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float().div(255).to(self.mean.device)
        return self.net((x - self.mean) / self.std)
