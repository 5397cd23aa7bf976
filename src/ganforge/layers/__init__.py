"""Blocks shared between families."""

from ganforge.layers.norm import CrossRankBatchNorm2d, make_norm2d

__all__ = ["CrossRankBatchNorm2d", "make_norm2d"]
