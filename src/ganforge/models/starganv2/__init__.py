"""StarGAN v2 (Choi et al., CVPR 2020): latent- and reference-guided multi-domain translation."""

from ganforge.models.starganv2 import recipe  # noqa: F401  (registers the family)
