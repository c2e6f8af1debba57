"""Results store: ranking honours metric direction; gains are paired deltas with a correct CI."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.config import MethodSpec, RunConfig
from bench.core.registry import METHODS
from bench.engine.ranking import rank
from bench.engine.results import format_ranked_tables, mean_ci
from bench.engine.run_folder import RunFolder
from bench.engine.runner import Runner
from methods.base import RestorationMethod, WeightsInfo
from tests._helpers.runner_helpers import make_folder, register


def test_rank_methods_honours_direction():
    df = pd.DataFrame(
        [
            ("a", "psnr", 30.0, True), ("b", "psnr", 25.0, True), ("c", "psnr", 20.0, True),
            ("a", "fid", 90.0, False), ("b", "fid", 10.0, False), ("c", "fid", 50.0, False),
            ("a", "lpips", 0.1, False), ("b", "lpips", 0.2, False), ("c", "lpips", 0.3, False),
        ],
        columns=["method", "metric", "value", "higher_better"],
    ).assign(dataset="d", n=4)
    ranking = rank(df).methods.set_index("method")
    # a: ranks 1,3,1 -> 1.67; b: 2,1,2 -> 1.67; c: 3,2,3 -> 2.67
    assert ranking.loc["a", "mean_rank"] == pytest.approx(5 / 3)
    assert ranking.loc["b", "mean_rank"] == pytest.approx(5 / 3)
    assert list(ranking.index)[-1] == "c"


def test_mean_ci_matches_t_interval():
    rng = np.random.default_rng(1)
    d = rng.normal(0.5, 2.0, 40)
    mean, lo, hi = mean_ci(d)
    from scipy import stats

    ref = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert mean == pytest.approx(d.mean())
    assert (lo, hi) == pytest.approx(ref)
    assert all(math.isnan(x) for x in mean_ci(np.array([]))[:1])


class _Brighter(RestorationMethod):
    """A 'conditioned variant' of lq for the gain test: adds a constant."""

    name = "test-lq-plus"
    takes_quality = True

    def __init__(self, weights=None, quality: float = 0.9) -> None:
        super().__init__(quality=quality)
        self.quality = quality
        self.weights_info = [WeightsInfo(name="none")]

    def restore(self, lq):
        x = torch.nn.functional.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False)
        return (x + 0.1 * self.quality).clamp(0, 1)


def test_gain_rows_for_conditioned_variant(tmp_path, registries):
    METHODS.add("test-lq-plus", _Brighter, takes_quality=True, base="lq")
    root = make_folder(tmp_path / "setG", 6)
    ds = register(root, "G")
    cfg = RunConfig(datasets=[ds], methods=["lq", "test-lq-plus"], metrics=["test-mae"], out=str(tmp_path / "run"),
                    device="cpu", batch_size=3, workers=0, quiet=True, report=False)
    outcome = Runner(cfg).run()
    gains = pd.read_csv(outcome.run_dir / "gains.csv")
    assert len(gains) == 1
    row = gains.iloc[0]
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    a = per_image[per_image.method == "lq"].set_index("image")["test-mae"]
    b = per_image[per_image.method == "test-lq-plus"].set_index("image")["test-mae"]
    deltas = (b - a.loc[b.index]).to_numpy()
    mean, lo, hi = mean_ci(deltas)
    assert row.delta_mean == pytest.approx(mean) and row.ci_low == pytest.approx(lo)
    assert row.n == 6 and row.base_method == "lq" and row.cond_method == "test-lq-plus"
    pd.testing.assert_frame_equal(outcome.gains, RunFolder(outcome.run_dir).gains(), check_dtype=False)
    assert set(outcome.summary.metric) == {"test-mae"}  # the summary holds scores only; gains are written once
    text = format_ranked_tables(outcome.summary, gains=outcome.gains)
    assert "conditioning gains" in text and "test-lq-plus vs lq" in text


def test_method_spec_parsing():
    spec = MethodSpec.parse("codeformer:fidelity=0.7,adain=true")
    assert spec.name == "codeformer"
    assert spec.kwargs() == {"fidelity": 0.7}  # adain=true is the default: dropped, so one run has one label
    assert spec.label == "codeformer:fidelity=0.7"  # adain=true is codeformer's default: one label
    from bench.core.errors import UserError

    with pytest.raises(UserError, match="NAME:key=value"):
        MethodSpec.parse("codeformer:fidelity")


def test_method_with_missing_weights_is_skipped_with_fetch_command(tmp_path, registries):
    from bench.weights import MissingWeightsError, WeightSpec, register_weights

    register_weights(WeightSpec(name="test-absent", filename="absent.pth", url="https://example.invalid/absent.pth",
                                size=1234))

    def factory(weights=None):
        from bench.weights import resolve

        resolve("test-absent", weights)
        raise AssertionError("unreachable: the weights are absent")

    METHODS.add("test-needs-weights", factory, weights=["test-absent"])
    root = make_folder(tmp_path / "setW", 3)
    ds = register(root, "W")
    cfg = RunConfig(datasets=[ds], methods=["test-needs-weights", "lq"], metrics=["test-mae"],
                    out=str(tmp_path / "run"), device="cpu", batch_size=3, workers=0, quiet=True, report=False)
    outcome = Runner(cfg).run()
    s = outcome.summary
    skipped = s[(s.method == "test-needs-weights")].iloc[0]
    assert skipped.status == "skipped" and "bfrbench fetch test-absent" in skipped.reason
    assert "https://example.invalid/absent.pth" in skipped.reason
    ok = s[(s.method == "lq") & (s.metric == "test-mae")].iloc[0]
    assert ok.status == "ok" and ok.n == 3
    assert isinstance(MissingWeightsError("test-absent", tmp_path), FileNotFoundError)
