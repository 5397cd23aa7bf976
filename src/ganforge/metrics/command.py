"""The generic `ganforge evaluate`: a family's generator against its run's real data, with the
family's evaluation hooks (translations, stories) where it registers them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ganforge.metrics.evaluate import EvalResult, Evaluator
from ganforge.metrics.source import EvalSource
from ganforge.registry import get_family


def default_metrics(dataset: Any, stories: bool) -> str:
    """What to measure when ``--metrics`` is not given: stories -> story; the built-in shapes -> the
    offline oracle; a real set with a judge (Fashion-MNIST, emoji) -> the judge, offline too; any other
    data -> FID and KID (the Inception file must be imported once)."""
    from ganforge.data.emoji import EmojiDataset
    from ganforge.data.fashion_mnist import FashionMnistDataset
    from ganforge.data.shapes import ShapesDataset

    if stories:
        return "story"
    if isinstance(dataset, ShapesDataset):
        return "oracle"
    return "judge" if isinstance(dataset, (FashionMnistDataset, EmojiDataset)) else "fid,kid"


def default_n(dataset: Any, stories: bool) -> int:
    """Images (stories) to measure when ``--n`` is not given: 1000, or as many as the data allows (every
    story; half the images, since real-vs-real needs a second real set of the same size)."""
    return min(1000, len(dataset)) if stories else min(1000, len(dataset) // 2)


def evaluate_source(source: EvalSource, args: argparse.Namespace, family_eval: Any = None) -> EvalResult:
    """Measure ``source`` as ``args`` asks (metrics, n, seed, batch size, device, Inception file).

    ``family_eval``: the family's evaluation hooks for the source's data (default: its registration's).
    Stories have one metric group, and by default every story of the data, up to 1000."""
    if family_eval is None:
        family_eval = get_family(source.generator.family).evaluation_for(source.dataset)
    stories = getattr(family_eval, "task_group", None) == "story"
    metrics = args.metrics or default_metrics(source.dataset, stories)
    n = args.n if args.n is not None else default_n(source.dataset, stories)
    evaluator = Evaluator(source.dataset, metrics, n, seed=args.seed, batch_size=args.batch_size,
                          device=args.device, inception_path=args.inception,
                          allow_nonstandard=args.allow_nonstandard_weights, progress=True, family_eval=family_eval,
                          data_config=source.config.data if source.config is not None else None)
    print(f"evaluating {source.checkpoint} ({source.generator.weights} weights, step {source.step}) "
          f"on {n} images against {type(source.dataset).__name__} ...", file=sys.stderr)
    return evaluator.evaluate_generator(source.generator.net)
