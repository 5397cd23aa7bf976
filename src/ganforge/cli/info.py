"""`ganforge info`: versions, devices, working precisions, families and datasets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ganforge.cli.common import add_verb

EXAMPLES = """
    ganforge info                                     # versions, devices, working precisions
    ganforge info --json"""


def add_parser(sub: Any) -> None:
    i = add_verb(sub, "info", "Show versions, devices and the precisions that work on this machine.", EXAMPLES, run)
    i.add_argument("--json", action="store_true", help="print the report as JSON")


def machine_info() -> dict[str, Any]:
    """What this machine and install offer, as plain data."""
    import platform

    import torch

    from ganforge import __version__
    from ganforge.presets import list_presets
    from ganforge.registry import dataset_names, families
    from ganforge.runtime.device import accelerator_type
    from ganforge.runtime.precision import supported_precisions

    acc = accelerator_type()
    devices = ["cpu"]
    if acc is not None:
        count = torch.accelerator.device_count() if hasattr(torch, "accelerator") else 1
        devices += [f"{acc}:{i}" for i in range(count)]
    backends = [b for b in ("gloo", "nccl", "mpi") if getattr(torch.distributed, f"is_{b}_available", lambda: False)()]
    return {
        "ganforge": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "accelerator": acc or "none",
        "devices": devices, "precisions": {d: supported_precisions(torch.device(d)) for d in devices},
        "distributed_backends": backends,
        "families": sorted(s.name for s in families()), "kinds": {s.name: s.kind for s in families()},
        "datasets": dataset_names(), "presets": list_presets(),
    }


def run(args: argparse.Namespace) -> int:
    info = machine_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "precisions":
            for dev, res in value.items():
                print(f"precision on {dev}: " + ", ".join(f"{k} {v}" for k, v in res.items()))
        elif isinstance(value, dict):
            print(f"{key}: {', '.join(f'{k} ({v})' for k, v in value.items())}")
        else:
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0
