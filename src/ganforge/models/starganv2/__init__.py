"""StarGAN v2 (Choi et al., CVPR 2020): latent- and reference-guided multi-domain translation."""

from ganforge.models.starganv2 import family  # noqa: F401  (registers the family)
