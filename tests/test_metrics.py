"""Metric math against independent formulas, the offline weights registry, and the Inception and
LPIPS pipelines with random (calibrated) weights, since the real files cannot be downloaded here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.data.shapes import ShapesDataset
from ganforge.metrics import distances
from ganforge.metrics.evaluate import EvalError, Evaluator, parse_metrics, real_batches
from ganforge.metrics.oracle import prepare, rgb_uint8
from ganforge.metrics.weights import (WeightsError, WeightsMissingError, find_weights, import_weights,
                                      load_weights)


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_scipy_and_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=gen, dtype=torch.float64)
    b = torch.randn(400, 6, generator=gen, dtype=torch.float64) @ torch.diag(torch.tensor([1, 2, 0.5, 1, 3, 1.0],
                                                                                          dtype=torch.float64)) + 0.3
    assert distances.frechet_distance(a, b) == pytest.approx(scipy_fid(a.numpy(), b.numpy()), rel=1e-6)
    # Same covariance, shifted mean: FID is exactly the squared shift.
    shift = torch.tensor([1.0, -2.0, 0.5, 0, 0, 3.0], dtype=torch.float64)
    assert distances.frechet_distance(a + shift, a) == pytest.approx(float(shift @ shift), abs=1e-6)
    assert distances.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def unbiased_mmd_cubic(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda p, q: (p @ q.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def test_kid_is_the_unbiased_cubic_mmd_and_separates_distributions():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(200, 5, generator=gen), torch.randn(200, 5, generator=gen)
    # One subset of the full size is the whole set: KID equals the textbook estimator.
    kid, std = distances.kernel_inception_distance(a, b, subsets=1, subset_size=200)
    assert kid == pytest.approx(unbiased_mmd_cubic(a.double().numpy(), b.double().numpy()), rel=1e-6)
    same, _ = distances.kernel_inception_distance(a, b, subsets=20, subset_size=100)
    far, _ = distances.kernel_inception_distance(a + 2, b, subsets=20, subset_size=100)
    assert abs(same) < 0.05 < far


def test_inception_score_on_synthetic_logits():
    assert distances.inception_score(torch.zeros(100, 10), splits=1)[0] == pytest.approx(1.0)
    confident = torch.full((100, 10), -50.0)
    confident[torch.arange(100), torch.arange(100) % 10] = 50.0  # certain, and spread evenly over 10 classes
    assert distances.inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)


def test_precision_recall_density_coverage():
    gen = torch.Generator().manual_seed(2)
    real = torch.randn(100, 4, generator=gen)
    assert distances.precision_recall(real, real) == (1.0, 1.0)
    assert distances.precision_recall(real + 100, real) == (0.0, 0.0)
    assert distances.density_coverage(real + 100, real) == (0.0, 0.0)
    # 1-D closed form: real points 0..9, k=1 gives every ball radius 1; a fake at 0.5 lies in the
    # balls of 0 and 1 -> density 2/(k*M) = 2, coverage 2/10.
    line = torch.arange(10.0)[:, None]
    assert distances.density_coverage(torch.tensor([[0.5]]).expand(2, 1), line, k=1) == (2.0, 0.2)


def test_diversity_is_the_mean_distance_between_a_sources_unit_length_outputs():
    # source 0: outputs along x, y and -x (pair distances sqrt 2, 2, sqrt 2); source 1: three equal outputs
    a = torch.tensor([[3.0, 0.0], [5.0, 5.0]])
    b = torch.tensor([[0.0, 0.5], [1.0, 1.0]])
    c = torch.tensor([[-2.0, 0.0], [2.0, 2.0]])
    expected = (2 * (2 * 2 ** 0.5 + 2) + 0.0) / (2 * 3 * 2)  # ordered pairs of both sources
    assert distances.mean_pairwise_distance([a, b, c]) == pytest.approx(expected, abs=1e-6)
    assert distances.mean_pairwise_distance([a, a * 7]) == pytest.approx(0.0, abs=1e-6)  # scale is not spread
    with pytest.raises(ValueError, match="1 output"):
        distances.mean_pairwise_distance([a])


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="same D"):
        distances.frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        distances.frechet_distance(torch.full((5, 3), float("nan")), torch.zeros(5, 3))
    with pytest.raises(EvalError, match="unknown metric.*fdi"):
        parse_metrics("fid,fdi")
    assert parse_metrics("oracle,fid") == ["fid", "oracle"]


def test_quantisation_and_resizing_for_the_extractors():
    images = torch.tensor([-1.0, -0.999, 0.0, 1.0]).view(1, 1, 2, 2)
    u8 = rgb_uint8(images)
    assert u8.dtype == torch.uint8 and u8.shape == (1, 3, 2, 2)  # gray becomes RGB
    assert u8[0, 0].flatten().tolist() == [0, 0, 128, 255]  # as a saved PNG: rounded, clipped
    big = torch.rand(2, 3, 64, 64) * 2 - 1
    assert prepare(big).shape == (2, 3, 32, 32)
    flat = torch.full((1, 3, 64, 64), 0.5)
    assert torch.allclose(prepare(flat), torch.full((1, 3, 32, 32), 191 / 255))  # antialiased: no ringing
    with pytest.raises(ValueError, match="expected images"):
        rgb_uint8(torch.zeros(2, 4, 8, 8))


# ----------------------------------------------------------------------------------------------
# weights registry


def test_missing_weights_name_the_file_size_source_and_command(empty_weight_dirs):
    with pytest.raises(WeightsMissingError) as err:
        find_weights("inception-fid")
    text = str(err.value)
    for needed in ("weights-inception-2015-12-05-6726825d.pth", "91 MiB", "https://github.com/toshas/torch-fidelity",
                   "ganforge weights import", str(empty_weight_dirs)):
        assert needed in text


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    from ganforge.metrics.inception import build_inception

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(build_inception(None).state_dict(), path)
    return path


def test_import_checks_hash_keys_and_pickles(empty_weight_dirs, random_inception_file, tmp_path):
    # Right keys and shapes, wrong bytes: refused, because its numbers would not compare.
    with pytest.raises(WeightsError, match="not the standard inception-fid file"):
        import_weights(random_inception_file)
    installed = import_weights(random_inception_file, allow_nonstandard=True)
    assert installed == empty_weight_dirs / "weights-inception-2015-12-05-6726825d.pth"
    assert find_weights("inception-fid") == installed
    _, provenance = load_weights("inception-fid", allow_nonstandard=True)
    assert provenance["standard"] == "false" and len(provenance["sha256"]) == 64

    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(WeightsError, match="not InceptionV3 FID weights: missing key"):
        import_weights(wrong, name="inception-fid")

    class Exploit:
        def __reduce__(self):
            return (print, ("this would have run",))

    evil = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({"x": Exploit()}, evil)
    with pytest.raises(WeightsError, match="could run code when unpickled \\(globals: builtins.print\\)"):
        import_weights(evil)
    with pytest.raises(WeightsError, match="not a registered weights file name"):
        import_weights(wrong)


@pytest.mark.slow
def test_inception_pipeline_end_to_end_with_calibrated_random_weights(random_inception_file):
    """The whole FID/IS/KID/PR/DC path with a random Inception whose BatchNorm statistics are
    calibrated first: real-vs-real must beat real-vs-noise on every distance."""
    from ganforge.metrics.inception import build_inception, calibrate_batchnorm

    state, _ = load_weights("inception-fid", random_inception_file, allow_nonstandard=True)
    net = build_inception(state)
    calib = ShapesDataset(length=32, image_size=32, seed=5)
    calibrate_batchnorm(net, [rgb_uint8(b) for b in real_batches(calib, np.arange(32), 16)])
    dataset = ShapesDataset(length=48, image_size=32)
    ev = Evaluator(dataset, "fid,is,kid,pr,dc", n=16, batch_size=16, inception=net)
    assert ev.info.get("inception") is None  # provenance is only recorded for registry-loaded weights
    other_real = ShapesDataset(length=16, image_size=32, seed=9)
    good = ev.evaluate(lambda: real_batches(other_real, np.arange(16), 16))
    noise = ev.evaluate(lambda: iter([torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1]))
    for key in ("fid", "kid"):
        assert np.isfinite(good.metrics[key]) and good.metrics[key] < noise.metrics[key]
    assert good.metrics["precision"] > noise.metrics["precision"]
    assert good.metrics["coverage"] > noise.metrics["coverage"]
    assert 1.0 <= good.metrics["is"] < 16
    assert set(good.real_vs_real) == set(good.metrics)
    assert "real vs real" in good.table() and "fid" in good.table()


def test_evaluator_refuses_too_little_data_and_oracle_on_other_data():
    with pytest.raises(EvalError, match="needs 40"):
        Evaluator(ShapesDataset(length=30), "oracle", n=20)
    with pytest.raises(EvalError, match="too few"):
        Evaluator(ShapesDataset(length=30), "oracle", n=5)

    class NotShapes(list):
        pass

    with pytest.raises(EvalError, match="built-in shapes data only"):
        Evaluator(NotShapes(range(100)), "oracle", n=20)


def test_lpips_with_an_offline_backbone(empty_weight_dirs):
    import torchvision

    from ganforge.metrics.perceptual import build_lpips, lpips_distance, mean_pairwise_lpips

    with pytest.raises(WeightsMissingError, match="alexnet-owt-7be5be79.pth"):
        build_lpips("alex")
    torch.manual_seed(0)
    model = build_lpips("alex", backbone_state=torchvision.models.alexnet().state_dict())
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 64, 64, generator=gen) * 2 - 1, torch.rand(3, 3, 64, 64, generator=gen) * 2 - 1
    assert torch.allclose(lpips_distance(model, a, a), torch.zeros(3), atol=1e-6)
    d_ab, d_ba = lpips_distance(model, a, b), lpips_distance(model, b, a)
    assert (d_ab > 0).all() and torch.allclose(d_ab, d_ba, atol=1e-6)
    assert mean_pairwise_lpips(model, torch.cat([a[:1], a[:1]])) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_lpips(model, a) > 0
    # K batches of one image each are K outputs of one input: the same number
    assert mean_pairwise_lpips(model, list(a[:, None])) == pytest.approx(mean_pairwise_lpips(model, a), rel=1e-5)
