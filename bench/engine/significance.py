"""Which rank differences are real: paired tests over the images two methods share, Holm-corrected.

For one benchmark and metric, every pair of methods is compared on the images all of them have a
finite value for (the common set :mod:`bench.engine.ranking` ranks on), with a two-sided Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``) or a paired bootstrap of the mean difference (fixed seed). The p-values
of one (benchmark, metric) column are one family, adjusted with Holm's step-down method. Methods
are then grouped in the compact-letter way: methods that share a letter are not significantly
different. Bootstrap confidence intervals of a mean over images live here too.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TESTS = ("wilcoxon", "bootstrap")
#: what the report and the tables say about each test (one place)
TEST_NAMES = {
    "wilcoxon": "two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon)",
    "bootstrap": "two-sided paired bootstrap test of the mean difference",
}
CORRECTION = "Holm"
N_BOOT = 2000
SEED = 0
ALPHA = 0.05
LEVEL = 0.95


def common_values(per_image: pd.DataFrame, dataset: str, metric: str, methods: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-image values of ``methods`` on the images every one of them has a finite value for (the common
    set :mod:`bench.engine.ranking` ranks on), aligned by image name; empty when the metric has none."""
    from bench.engine.ranking import common_images, per_image_values

    per = per_image_values(per_image, dataset, metric, list(methods)) if methods else None
    if not per:
        return {}
    common = sorted(common_images(per))
    return {m: s.loc[common].to_numpy(dtype=float) for m, s in per.items()}


def wilcoxon(diffs: np.ndarray) -> tuple[float, float]:
    """(statistic, two-sided p) of the Wilcoxon signed-rank test; p = 1 when every difference is zero."""
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan
    if not np.any(d != 0):
        return 0.0, 1.0
    from scipy import stats

    res = stats.wilcoxon(d, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


#: index draws per block: resampling 1,000,000 times over 3,000 images stays within ~32 MB at a time
_BLOCK = 1 << 22


def resampled_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values``, drawn in bounded blocks."""
    import numpy as np

    rows = max(1, _BLOCK // max(1, values.size))
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        out[start:stop] = values[rng.integers(0, values.size, (stop - start, values.size))].mean(axis=1)
    return out


def bootstrap_test(diffs: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float]:
    """(mean difference, two-sided p) of a paired bootstrap test: resample the differences centred on 0.

    p = (1 + #{|mean*| >= |mean|}) / (1 + n_boot), the resampled means drawn under the null (Efron &
    Tibshirani, ch. 16); deterministic for a given seed.
    """
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan
    mean = float(d.mean())
    if not np.any(d != d[0]):
        return mean, 1.0 if mean == 0 else 1.0 / (1 + n_boot)
    rng = np.random.default_rng(seed)
    centred = d - mean
    means = resampled_means(centred, n_boot, rng)
    extreme = int(np.count_nonzero(np.abs(means) >= abs(mean) - 1e-15 * max(1.0, abs(mean))))
    return mean, (1 + extreme) / (1 + n_boot)


def bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (finite ones), resampling images; NaN if < 2."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = resampled_means(v, n_boot, rng)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1); NaN stays NaN and is not counted."""
    import numpy as np

    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for k, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out.tolist()


@dataclass(frozen=True)
class PairTest:
    """One pair of methods on one benchmark and metric (differences are a - b)."""

    a: str
    b: str
    n: int
    mean_diff: float
    statistic: float
    p: float
    p_adj: float = math.nan
    significant: bool = False


@dataclass
class ColumnTests:
    """Every pair of one (benchmark, metric) column, with the groups of methods not told apart."""

    dataset: str
    metric: str
    test: str
    alpha: float
    pairs: list[PairTest]
    #: method -> letters ("a", "ab" ...): methods sharing a letter are not significantly different
    groups: dict[str, str] = field(default_factory=dict)

    def pair(self, a: str, b: str) -> PairTest | None:
        """The test of ``a`` against ``b`` in either order (the difference's sign follows the stored order)."""
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        return None

    @property
    def family(self) -> int:
        """How many tests the Holm correction covered."""
        return sum(1 for p in self.pairs if math.isfinite(p.p))


def compare_column(
    per_image: pd.DataFrame, dataset: str, metric: str, ordered: Sequence[str], test: str = "wilcoxon",
    alpha: float = ALPHA, n_boot: int = N_BOOT, seed: int = SEED, higher_better: bool | None = None,
) -> ColumnTests:
    """Test every pair of ``ordered`` (best first; or sorted by their common-set means when ``higher_better``
    is given) on the column's common images; Holm over the column; group."""
    import numpy as np

    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    values = common_values(per_image, dataset, metric, ordered)
    if higher_better is not None and values and len(next(iter(values.values()))):
        # letters follow the order of the means the ranking compares (over the common set)
        ordered = sorted(ordered, key=lambda m: -values[m].mean() if higher_better else values[m].mean())
    raw: list[PairTest] = []
    for a, b in combinations(ordered, 2):
        d = values[a] - values[b] if values else np.empty(0)
        if d.size == 0:
            raw.append(PairTest(a, b, 0, math.nan, math.nan, math.nan))
            continue
        if test == "wilcoxon":
            stat, p = wilcoxon(d)
        else:
            stat, p = bootstrap_test(d, n_boot, seed)
        raw.append(PairTest(a, b, int(d.size), float(d.mean()), stat, p))
    adj = holm([t.p for t in raw])
    pairs = [PairTest(t.a, t.b, t.n, t.mean_diff, t.statistic, t.p, q, bool(math.isfinite(q) and q < alpha))
             for t, q in zip(raw, adj)]
    col = ColumnTests(dataset, metric, test, alpha, pairs)
    col.groups = letter_groups(ordered, {(t.a, t.b) for t in pairs if t.significant})
    return col


def letter_groups(ordered: Sequence[str], different: set[tuple[str, str]]) -> dict[str, str]:
    """Compact letters for methods in rank order: each maximal run of consecutive methods with no
    significant pair inside gets a letter; a pair never tested counts as not told apart."""
    n = len(ordered)

    def apart(i: int, j: int) -> bool:
        a, b = ordered[i], ordered[j]
        return (a, b) in different or (b, a) in different

    runs: list[tuple[int, int]] = []
    for i in range(n):
        j = i
        while j + 1 < n and not any(apart(k, j + 1) for k in range(i, j + 1)):
            j += 1
        if not runs or j > runs[-1][1]:
            runs.append((i, j))
    letters = {m: "" for m in ordered}
    for k, (i, j) in enumerate(runs):
        tag = _letter(k)
        for m in ordered[i: j + 1]:
            letters[m] += tag
    return letters


def _letter(k: int) -> str:
    """a..z, then aa, ab ... (a benchmark with more than 26 groups still gets distinct tags)."""
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def method_statement(test: str, alpha: float = ALPHA, n_boot: int = N_BOOT, seed: int = SEED) -> str:
    """One sentence naming the test, the pairing and the correction (shown under tables and in the report)."""
    how = TEST_NAMES[test] + (f" ({n_boot} resamples, seed {seed})" if test == "bootstrap" else "")
    return (f"Methods sharing a letter are not significantly different: {how} on the images every method "
            f"has (as ranked), {CORRECTION}-corrected over the pairs of each benchmark and metric, alpha = {alpha:g}.")
