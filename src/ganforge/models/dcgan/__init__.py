"""DCGAN (Radford et al. 2016) and WGAN-GP (Gulrajani et al. 2017) on the DCGAN architecture."""

from ganforge.models.dcgan import family  # noqa: F401  (registers `dcgan` and `wgan_gp`)
from ganforge.models.dcgan.networks import DcganDiscriminator, DcganGenerator

__all__ = ["DcganGenerator", "DcganDiscriminator"]
