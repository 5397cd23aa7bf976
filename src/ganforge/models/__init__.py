"""GAN families. Importing this package registers every family."""

from ganforge.models import biggan, dcgan, r3gan, stargan, starganv2, storygan  # noqa: F401
