"""Spectral normalization as BigGAN-PyTorch does it (Miyato et al. 2018, with BigGAN's options).

The weight is divided by its largest singular value, estimated by power iteration on a persistent
left singular vector. BigGAN's variant differs from ``torch.nn.utils.spectral_norm`` in ways that
matter for faithful training and for loading official checkpoints:

- ``num_svs`` singular vectors are tracked (the extra ones Gram-Schmidt-orthogonalized to the first,
  for logging); the weight is always divided by the first value only;
- ``num_itrs`` power iterations per forward, the vectors updated in training mode only;
- the buffers are ``u0, u1, ...`` of shape (1, out) and ``sv0, ...`` of shape (1,), the names the
  official state dicts use, so checkpoints load without renaming;
- the singular value is recomputed from the stored vectors in eval mode too (no cached weight).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _remove_components(x: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    """``x`` minus its projection on each (row) vector of ``basis``, one after another (Gram-Schmidt)."""
    for b in basis:
        x = x - (x @ b.t()) * b / (b @ b.t())
    return x


def power_iteration(weight: torch.Tensor, vectors: list[torch.Tensor], update: bool, eps: float
                    ) -> list[torch.Tensor]:
    """One power-iteration step for each tracked singular vector of the 2-D ``weight``.

    ``vectors`` are the (1, rows) left vectors; with ``update`` they are overwritten in place.
    Returns the singular-value estimates, differentiable with respect to ``weight`` only.
    """
    lefts: list[torch.Tensor] = []
    rights: list[torch.Tensor] = []
    values = []
    for stored in vectors:
        with torch.no_grad():
            v = F.normalize(_remove_components(stored @ weight, rights), eps=eps)
            rights.append(v)
            u = F.normalize(_remove_components(v @ weight.t(), lefts), eps=eps)
            lefts.append(u)
            if update:
                stored.copy_(u)
        values.append(((v @ weight.t()) @ u.t()).squeeze())
    return values


class SpectralNormMixin:
    """Adds BigGAN's spectral normalization to a module with a ``weight``; see the module docstring."""

    weight: torch.Tensor
    training: bool

    def _init_spectral(self, num_svs: int, num_itrs: int, rows: int, eps: float) -> None:
        if num_svs < 1 or num_itrs < 1:
            raise ValueError(f"spectral norm needs num_svs >= 1 and num_itrs >= 1, got {num_svs} and {num_itrs}")
        self.num_svs, self.num_itrs, self.sn_eps = num_svs, num_itrs, eps
        for i in range(num_svs):
            # Drawn from the global RNG like the official layers, so a seed fixes them.
            self.register_buffer(f"u{i}", torch.randn(1, rows))  # type: ignore[attr-defined]
            self.register_buffer(f"sv{i}", torch.ones(1))  # type: ignore[attr-defined]

    @property
    def singular_vectors(self) -> list[torch.Tensor]:
        return [getattr(self, f"u{i}") for i in range(self.num_svs)]

    @property
    def singular_values(self) -> list[torch.Tensor]:
        """The last training forward's estimates (logging only)."""
        return [getattr(self, f"sv{i}") for i in range(self.num_svs)]

    def normalized_weight(self) -> torch.Tensor:
        """``weight / sigma_0``, after ``num_itrs`` power iterations (vectors updated when training)."""
        matrix = self.weight.reshape(self.weight.shape[0], -1)
        # The estimate is made in fp32 even under autocast: a bf16 sigma would add noise to every layer.
        with torch.autocast(matrix.device.type, enabled=False):
            matrix32 = matrix.float()
            for _ in range(self.num_itrs):
                values = power_iteration(matrix32, self.singular_vectors, self.training, self.sn_eps)
            if self.training:
                with torch.no_grad():
                    for stored, value in zip(self.singular_values, values):
                        stored.copy_(value.detach())
        return self.weight / values[0].to(self.weight.dtype)


class SNConv2d(nn.Conv2d, SpectralNormMixin):
    """Conv2d with BigGAN's spectral norm (buffers ``u0``/``sv0``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, bias: bool = True, num_svs: int = 1, num_itrs: int = 1, eps: float = 1e-12):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self._init_spectral(num_svs, num_itrs, out_channels, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)


class SNLinear(nn.Linear, SpectralNormMixin):
    """Linear with BigGAN's spectral norm."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, num_svs: int = 1,
                 num_itrs: int = 1, eps: float = 1e-12):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_spectral(num_svs, num_itrs, out_features, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class SNEmbedding(nn.Embedding, SpectralNormMixin):
    """Embedding with BigGAN's spectral norm, taken over the (classes, dim) table as BigGAN does."""

    def __init__(self, num_embeddings: int, embedding_dim: int, num_svs: int = 1, num_itrs: int = 1,
                 eps: float = 1e-12):
        nn.Embedding.__init__(self, num_embeddings, embedding_dim)
        self._init_spectral(num_svs, num_itrs, num_embeddings, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self.normalized_weight())
