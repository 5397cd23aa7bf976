"""``ganforge.runtime.allocator``: large host allocations come from glibc's heap, not fresh mmaps."""

import ctypes

import pytest
import torch

from ganforge.runtime import allocator


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo2():
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


glibc = pytest.mark.skipif(allocator._glibc_mallopt() is None, reason="needs Linux with glibc")


@glibc
def test_a_large_tensor_after_retain_freed_memory_is_not_a_fresh_mmap():
    assert allocator.retain_freed_memory()
    assert allocator.retain_freed_memory()  # idempotent
    mapped_before = _mallinfo2().hblkhd
    big = torch.ones(64 * 2 ** 20 // 4)  # 64 MiB: above glibc's largest mmap threshold (32 MiB)
    assert _mallinfo2().hblkhd == mapped_before  # without the setting this block is mmapped
    in_use = _mallinfo2().uordblks
    assert in_use >= big.numel() * 4  # it is counted in the heap instead
    assert float(big.sum()) == big.numel()


@pytest.mark.parametrize("enabled", [True, False])
def test_trainer_applies_the_setting_only_when_asked(tmp_path, monkeypatch, enabled):
    from gfhelpers import tiny_overrides

    import ganforge.train.trainer as trainer_module
    from ganforge.presets import load_config

    calls = []
    monkeypatch.setattr(trainer_module, "retain_freed_memory", lambda: calls.append(1) or True)
    cfg = load_config("wgan_gp/demo", tiny_overrides(tmp_path, **{"runtime.retain_freed_memory": enabled}))
    trainer_module.Trainer(cfg, run_dir=None)
    assert calls == ([1] if enabled else [])
