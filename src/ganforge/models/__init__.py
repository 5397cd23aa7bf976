"""GAN families. Importing this package registers every family."""

from ganforge.models import biggan, dcgan, stargan, storygan  # noqa: F401
