"""Learning-rate schedules as pure functions of the step (resume needs no schedule state)."""

from __future__ import annotations


def linear_decay(step: int, total: int, start: int) -> float:
    """1 until ``start``, then linearly to 0 at ``total`` (the translation paper's schedule)."""
    if step < start or total <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (total - start))
