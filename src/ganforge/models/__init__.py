"""GAN families. Importing this package registers every family."""

from ganforge.models import dcgan  # noqa: F401
