"""Loss primitives shared between families."""

from ganforge.losses.adversarial import discriminator_loss, discriminator_loss_parts, generator_loss
from ganforge.losses.penalties import gradient_penalty, r1_penalty

__all__ = ["discriminator_loss", "discriminator_loss_parts", "generator_loss", "gradient_penalty", "r1_penalty"]
