"""StarGAN (Choi et al., CVPR 2018): multi-attribute image-to-image translation with one generator."""

from ganforge.models.stargan import family  # noqa: F401  (registers the family)
