"""Blocks shared between families."""

from ganforge.layers.attention import SelfAttention
from ganforge.layers.conditional_norm import BatchNorm2d, ConditionalBatchNorm2d, StoredStatsNorm
from ganforge.layers.norm import (CrossRankBatchNorm2d, EvalBatchNorm1d, EvalBatchNorm2d, global_batch_norm,
                                  make_norm2d)
from ganforge.layers.spectral import SNConv2d, SNEmbedding, SNLinear, SpectralNormMixin

__all__ = ["BatchNorm2d", "ConditionalBatchNorm2d", "CrossRankBatchNorm2d", "EvalBatchNorm1d", "EvalBatchNorm2d",
           "SelfAttention", "SNConv2d", "SNEmbedding", "SNLinear", "SpectralNormMixin", "StoredStatsNorm",
           "global_batch_norm", "make_norm2d"]
