"""Loss primitives shared between families: every family uses these, none keeps a copy."""

from ganforge.losses.adversarial import bce, discriminator_loss, discriminator_loss_parts, generator_loss
from ganforge.losses.lecam import LecamAnchors, lecam_penalty, lecam_step
from ganforge.losses.penalties import gradient_penalty, r1_penalty

__all__ = ["bce", "discriminator_loss", "discriminator_loss_parts", "generator_loss", "gradient_penalty",
           "r1_penalty", "LecamAnchors", "lecam_penalty", "lecam_step"]
