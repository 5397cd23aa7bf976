"""GAN families. Importing this package registers every family."""

from ganforge.models import biggan, dcgan, stargan, starganv2, storygan  # noqa: F401
