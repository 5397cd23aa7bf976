"""``runtime.compile``: torch.compile a recipe's networks in place."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def compile_networks(networks: dict[str, nn.Module], mode: bool | str,
                     keep_eager: Iterable[str] = ()) -> list[str]:
    """Compile each network's forward call in place and return the names compiled.

    ``mode`` is False (nothing compiled), True (the ``default`` mode) or a ``torch.compile`` mode
    (``default``, ``reduce-overhead``, ``max-autotune``). In-place compilation
    (``nn.Module.compile``) keeps parameter names, so checkpoints, EMA and export see the plain
    network. ``keep_eager`` names the networks that a penalty differentiates twice: AOTAutograd has
    no double backward, so they stay eager. Other methods than ``forward`` (StoryGAN's logit heads,
    StarGAN v2's sub-networks called one by one) run eagerly whatever the mode.
    """
    if mode is False:
        return []
    skip = set(keep_eager)
    compiled = []
    for name, net in networks.items():
        if name in skip:
            continue
        net.compile(mode=None if mode in (True, "default") else mode)
        compiled.append(name)
    return compiled
