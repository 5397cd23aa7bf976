"""Device, distributed, precision and seeding: everything about *where* the math runs."""

from ganforge.runtime.device import resolve_device
from ganforge.runtime.distributed import DistInfo, init_distributed
from ganforge.runtime.precision import Precision
from ganforge.runtime.seed import seed_everything

__all__ = ["resolve_device", "DistInfo", "init_distributed", "Precision", "seed_everything"]
