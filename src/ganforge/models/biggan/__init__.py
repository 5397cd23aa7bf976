"""BigGAN (Brock et al., ICLR 2019): class-conditional generation, faithful to BigGAN-PyTorch."""

from ganforge.models.biggan import family  # noqa: F401  (registers the family)
