"""Offline evaluation: FID/IS/KID/precision-recall (torch-fidelity), density/coverage, LPIPS, and the
shapes oracle. Weights are never downloaded; see :mod:`ganforge.metrics.weights`."""

from ganforge.metrics.evaluate import EvalError, EvalResult, Evaluator, parse_metrics
from ganforge.metrics.weights import WeightsError, WeightsMissingError, import_weights, load_weights

__all__ = ["EvalError", "EvalResult", "Evaluator", "parse_metrics", "WeightsError", "WeightsMissingError",
           "import_weights", "load_weights"]
