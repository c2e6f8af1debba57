"""Which rank differences are real: the paired tests equal scipy's, Holm is Holm, and noise is grouped."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bench.engine import significance as sig


def _frame(values: dict[str, np.ndarray], dataset: str = "d", metric: str = "psnr",
           missing: dict[str, list[int]] | None = None) -> pd.DataFrame:
    rows = []
    for method, vals in values.items():
        for i, v in enumerate(vals):
            if i in (missing or {}).get(method, []):
                continue
            rows.append({"dataset": dataset, "method": method, "image": f"img_{i:03d}", "status": "ok", metric: v})
    return pd.DataFrame(rows)


def test_wilcoxon_equals_scipy_on_a_fixture():
    rng = np.random.default_rng(3)
    a = 25 + rng.normal(0, 1, 30)
    b = a - 0.4 + rng.normal(0, 0.5, 30)
    per_image = _frame({"a": a, "b": b})
    col = sig.compare_column(per_image, "d", "psnr", ["a", "b"])
    ref = stats.wilcoxon(a - b)
    (pair,) = col.pairs
    assert (pair.a, pair.b, pair.n) == ("a", "b", 30)
    assert pair.statistic == ref.statistic and pair.p == ref.pvalue
    assert pair.p_adj == ref.pvalue  # one pair: Holm leaves it alone
    assert pair.mean_diff == pytest.approx(float(np.mean(a - b)), abs=1e-12)


def test_pairs_use_only_the_common_images():
    """A method missing images is compared on the images both have (the ranking's pairing)."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 20), rng.normal(0.3, 1, 20)
    per_image = _frame({"a": a, "b": b}, missing={"b": [0, 5, 7]})
    (pair,) = sig.compare_column(per_image, "d", "psnr", ["a", "b"]).pairs
    keep = [i for i in range(20) if i not in (0, 5, 7)]
    assert pair.n == 17 and pair.p == stats.wilcoxon(a[keep] - b[keep]).pvalue


def test_every_pair_uses_the_common_set_the_ranking_ranks_on():
    """With a third method missing images, a and b are compared on the images all three have."""
    rng = np.random.default_rng(6)
    a, b, c = rng.normal(0, 1, 20), rng.normal(0.2, 1, 20), rng.normal(0, 1, 20)
    per_image = _frame({"a": a, "b": b, "c": c}, missing={"c": [1, 2]})
    col = sig.compare_column(per_image, "d", "psnr", ["a", "b", "c"])
    keep = [i for i in range(20) if i not in (1, 2)]
    assert {p.n for p in col.pairs} == {18}
    assert col.pair("a", "b").p == stats.wilcoxon(a[keep] - b[keep]).pvalue


def test_letters_follow_the_common_set_means():
    vals = _noise_and_signal()
    col = sig.compare_column(_frame(vals), "d", "psnr", ["a", "b", "strong"], higher_better=True)
    assert col.groups["strong"] == "a" and col.groups["a"] == col.groups["b"] == "b"
    low = sig.compare_column(_frame(vals), "d", "psnr", ["strong", "a", "b"], higher_better=False)
    assert low.groups["strong"] == "b"


def test_holm_against_hand_computation():
    # sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06, monotone), 0.5 (x1 = 0.5)
    assert sig.holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert sig.holm([0.9, 0.8]) == [1.0, 1.0]
    out = sig.holm([math.nan, 0.01, 0.04])
    assert math.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.04])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12))
def test_holm_is_monotone_bounded_and_at_least_raw(ps):
    adj = sig.holm(ps)
    assert all(p <= q <= 1.0 for p, q in zip(ps, adj))
    order = np.argsort(ps, kind="stable")
    assert all(adj[i] <= adj[j] for i, j in zip(order, order[1:]))


def _noise_and_signal(n: int = 40):
    rng = np.random.default_rng(11)
    base = 25 + rng.normal(0, 1.5, n)  # images differ a lot; methods track them
    return {
        "strong": base + 1.0 + rng.normal(0, 0.2, n),  # a real gain of 1 dB on every image
        "a": base + rng.normal(0, 0.2, n),
        "b": base + rng.normal(0, 0.2, n),  # a and b differ only by noise
    }


@pytest.mark.parametrize("test", sig.TESTS)
def test_noise_is_grouped_and_a_real_difference_is_not(test):
    vals = _noise_and_signal()
    col = sig.compare_column(_frame(vals), "d", "psnr", ["strong", "a", "b"], test=test)
    assert not col.pair("a", "b").significant
    assert col.pair("strong", "a").significant and col.pair("strong", "b").significant
    assert col.groups["a"] == col.groups["b"] != col.groups["strong"]
    assert col.family == 3


def test_too_few_images_are_never_called_different():
    """With 5 images the exact two-sided Wilcoxon p is at least 2/32: nothing can be significant."""
    a = np.array([30.0, 31, 32, 33, 34])
    col = sig.compare_column(_frame({"a": a, "b": a - 5}), "d", "psnr", ["a", "b"])
    assert col.pairs[0].p == pytest.approx(0.0625) and col.groups == {"a": "a", "b": "a"}


def test_identical_methods_and_missing_metric():
    a = np.arange(10.0)
    col = sig.compare_column(_frame({"a": a, "b": a.copy()}), "d", "psnr", ["a", "b"])
    assert col.pairs[0].p == 1.0 and col.groups == {"a": "a", "b": "a"}
    empty = sig.compare_column(_frame({"a": a, "b": a}), "d", "lpips", ["a", "b"])
    assert math.isnan(empty.pairs[0].p) and empty.family == 0


def test_letter_groups_overlap_like_a_compact_letter_display():
    # a > b > c in rank order: a-c differ, a-b and b-c do not -> a: "a", b: "ab", c: "b"
    assert sig.letter_groups(["x", "y", "z"], {("x", "z")}) == {"x": "a", "y": "ab", "z": "b"}
    assert sig.letter_groups(["x", "y", "z"], {("x", "y"), ("x", "z"), ("y", "z")}) == {"x": "a", "y": "b", "z": "c"}
    assert sig.letter_groups(["x", "y", "z"], set()) == {"x": "a", "y": "a", "z": "a"}
    assert sig._letter(25) == "z" and sig._letter(26) == "aa"


def test_bootstrap_is_deterministic_and_agrees_with_scipy():
    rng = np.random.default_rng(5)
    v = rng.gamma(2.0, 1.0, 60)
    lo, hi = sig.bootstrap_ci(v, n_boot=4000, seed=1)
    assert (lo, hi) == sig.bootstrap_ci(v, n_boot=4000, seed=1)
    ref = stats.bootstrap((v,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                          random_state=np.random.default_rng(2)).confidence_interval
    width = ref.high - ref.low
    assert lo == pytest.approx(ref.low, abs=0.05 * width) and hi == pytest.approx(ref.high, abs=0.05 * width)
    assert lo < v.mean() < hi
    assert all(math.isnan(x) for x in sig.bootstrap_ci(np.array([1.0])))


def test_bootstrap_test_matches_a_paired_t_test_on_normal_data():
    """For normal differences the bootstrap p follows the t-test p (same null, different machinery)."""
    rng = np.random.default_rng(9)
    d = rng.normal(0.25, 1, 80)
    mean, p = sig.bootstrap_test(d, n_boot=20000, seed=0)
    assert mean == pytest.approx(d.mean())
    assert p == pytest.approx(stats.ttest_1samp(d, 0).pvalue, abs=0.02)
    assert sig.bootstrap_test(d, n_boot=2000, seed=3) == sig.bootstrap_test(d, n_boot=2000, seed=3)
    assert sig.bootstrap_test(np.zeros(5))[1] == 1.0


def test_unknown_test_is_refused():
    with pytest.raises(ValueError, match="unknown test"):
        sig.compare_column(_frame({"a": np.ones(3)}), "d", "psnr", ["a"], test="t")


def test_method_statement_names_test_and_correction():
    s = sig.method_statement("wilcoxon")
    assert "Wilcoxon signed-rank" in s and "Holm" in s and "alpha = 0.05" in s
    assert "2000 resamples, seed 0" in sig.method_statement("bootstrap")


def test_resampling_memory_is_bounded(monkeypatch):
    """Resamples are drawn in blocks of a fixed size (a huge --bootstrap never allocates n_boot x n at
    once), so results depend on the values, n_boot and seed only."""
    v = np.random.default_rng(2).normal(0, 1, 50)
    whole = sig.resampled_means(v, 300, np.random.default_rng(0))
    ref = v[np.random.default_rng(0).integers(0, 50, (300, 50))].mean(axis=1)
    assert np.array_equal(whole, ref)
    seen = []

    class Spy:  # the generator's draws, recorded
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def integers(self, low, high, size):
            seen.append(size)
            return self.rng.integers(low, high, size)

    monkeypatch.setattr(sig, "_BLOCK", 50 * 64)
    blocked = sig.resampled_means(v, 300, Spy())
    assert max(rows * n for rows, n in seen) <= 50 * 64 and sum(rows for rows, _ in seen) == 300
    assert len(seen) == 5 and blocked.shape == (300,) and abs(blocked.mean() - v.mean()) < 0.05
