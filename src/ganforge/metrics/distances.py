"""Metrics computed from feature tensors: FID, IS, KID, precision/recall, density/coverage.

FID, IS, KID and precision/recall are torch-fidelity's own functions, so our numbers are its
numbers; density and coverage (Naeem et al., ICML 2020) are not in torch-fidelity and live here.
Every function takes ``(N, D)`` float tensors: ``fake`` first, ``real`` second, as torch-fidelity does.
"""

from __future__ import annotations

import torch


def _quiet(**kwargs: object) -> dict:
    return {"verbose": False, **kwargs}


def frechet_distance(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between Gaussians fitted to the two feature sets (torch-fidelity's formula)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    _need(fake, real, minimum=2, what="FID")
    stats = [fid_features_to_statistics(f.double().cpu()) for f in (fake, real)]
    return float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID])


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """IS mean and std over ``splits`` chunks (torch-fidelity's formula, shuffled with ``seed``)."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    splits = max(1, min(splits, len(logits)))
    out = isc_features_to_metric(logits.cpu(), splits=splits, shuffle=True, rng_seed=seed)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])


def kernel_inception_distance(fake: torch.Tensor, real: torch.Tensor, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """KID mean and std (unbiased MMD^2, cubic polynomial kernel) over random subsets.

    ``subset_size`` is capped at half the smaller set, so small evaluations still draw different
    subsets (a subset as large as the set is the set itself, and its std would be 0).
    """
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    _need(fake, real, minimum=2, what="KID")
    smaller = min(len(fake), len(real))
    size = min(subset_size, smaller if subsets == 1 else max(2, smaller // 2))
    out = kid_features_to_metric(fake.double().cpu(), real.double().cpu(),
                                 **_quiet(kid_subsets=subsets, kid_subset_size=size, rng_seed=seed))
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls, torch-fidelity's code."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    _need(fake, real, minimum=k + 1, what="precision/recall")
    out = prc_features_to_metric(fake.float().cpu(), real.float().cpu(), **_quiet(prc_neighborhood=k))
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def density_coverage(fake: torch.Tensor, real: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020).

    With ``r_i`` the distance from real sample ``i`` to its k-th nearest real neighbour:
    density = 1/(kM) * sum_j sum_i [fake_j within r_i of real_i]  (can exceed 1);
    coverage = 1/N * sum_i [some fake within r_i of real_i].
    """
    _need(fake, real, minimum=k + 1, what="density/coverage")
    fake, real = fake.double().cpu(), real.double().cpu()
    real_real = torch.cdist(real, real)
    # k+1 because each real sample is its own nearest neighbour at distance 0
    radii = real_real.kthvalue(k + 1, dim=1).values
    inside = torch.cdist(real, fake) <= radii[:, None]  # (N real, M fake)
    density = inside.sum().item() / (k * len(fake))
    coverage = inside.any(dim=1).double().mean().item()
    return float(density), float(coverage)


def mean_pairwise_distance(features: list[torch.Tensor]) -> float:
    """Diversity of several outputs per source, as LPIPS diversity measures it but in a feature space:
    ``features`` holds one (N, D) tensor per output (row i of each: source i); each row is scaled to
    unit length, and the Euclidean distance is averaged over every pair of outputs and every source."""
    if len(features) < 2:
        raise ValueError(f"diversity compares a source's outputs with each other: got {len(features)} output(s)")
    unit = torch.nn.functional.normalize(torch.stack(features, 1).double(), dim=-1)  # (N, outputs, D)
    pairs = torch.cdist(unit, unit)  # (N, outputs, outputs)
    k = unit.shape[1]
    return (pairs.sum() / (unit.shape[0] * k * (k - 1))).item()


def _need(fake: torch.Tensor, real: torch.Tensor, minimum: int, what: str) -> None:
    if fake.dim() != 2 or real.dim() != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(f"{what}: expected two (N, D) feature sets of the same D, got {tuple(fake.shape)} "
                         f"and {tuple(real.shape)}")
    if min(len(fake), len(real)) < minimum:
        raise ValueError(f"{what} needs at least {minimum} samples per set, got {len(fake)} and {len(real)}")
    for name, t in (("generated", fake), ("real", real)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{what}: the {name} features contain NaN or Inf (did the generator diverge?)")


def feature_metrics(fake: torch.Tensor, real: torch.Tensor, which: set[str], prefix: str = "",
                    kid_subsets: int = 100) -> dict[str, float]:
    """The feature-set metrics named in ``which`` (``fid``, ``kid``, ``pr``, ``dc``) as a flat dict."""
    out: dict[str, float] = {}
    if "fid" in which:
        out[prefix + "fid"] = frechet_distance(fake, real)
    if "kid" in which:
        out[prefix + "kid"], out[prefix + "kid_std"] = kernel_inception_distance(fake, real, subsets=kid_subsets)
    if "pr" in which:
        out[prefix + "precision"], out[prefix + "recall"] = precision_recall(fake, real)
    if "dc" in which:
        out[prefix + "density"], out[prefix + "coverage"] = density_coverage(fake, real)
    return out
