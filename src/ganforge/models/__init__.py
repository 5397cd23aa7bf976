"""GAN families. Importing this package registers every family."""

from ganforge.models import dcgan, stargan  # noqa: F401
