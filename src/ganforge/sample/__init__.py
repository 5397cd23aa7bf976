"""Sampling: grids, single images and interpolation strips from any generator."""

from ganforge.sample.grid import generate, interpolate_inputs, save_grid, save_images, to_uint8

__all__ = ["generate", "interpolate_inputs", "save_grid", "save_images", "to_uint8"]
