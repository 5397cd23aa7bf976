"""R3GAN (Huang et al., NeurIPS 2024): RpGAN + R1 + R2 on a minimal modern ResNet. Importing registers it."""

from ganforge.models.r3gan import family  # noqa: F401
