"""A paper's results table as data: methods by (dataset, metric) columns, in the order the user gives.

Each cell knows its value, ``n``, optional bootstrap interval, whether it is the best or second best
of its column (among the values :func:`bench.engine.ranking.rank` ranks, as printed, so two printed
ties are both bold) and, with ties marked, its significance letters. The formats (LaTeX, Markdown, CSV, JSON) only render this model.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.core.errors import UserError
from bench.engine import significance as sig
from reports.merge import Results


@dataclass(frozen=True)
class TableSpec:
    """What the user asked for; ``None`` lists mean everything, in first-seen order."""

    datasets: Sequence[str] | None = None
    metrics: Sequence[str] | None = None
    methods: Sequence[str] | None = None
    ci: bool = False
    mark_ties: bool = False
    test: str = "wilcoxon"
    alpha: float = sig.ALPHA
    n_boot: int = sig.N_BOOT
    seed: int = sig.SEED
    #: metric -> decimals; others get four significant figures of the column's largest value
    decimals: dict[str, int] = field(default_factory=dict)
    #: displayed names of methods, datasets and metrics (the data keeps its own)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """One (dataset, metric) column."""

    dataset: str
    metric: str
    protocol: str
    higher_better: bool
    standard: bool
    decimals: int
    per_image: bool


@dataclass
class TableCell:
    """One value with everything its formats print."""

    value: float | None
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    best: bool = False
    second: bool = False
    group: str = ""
    short_n: bool = False
    status: str = "ok"

    def text(self, decimals: int) -> str:
        """The value as printed ("" when there is none)."""
        return "" if self.value is None else f"{self.value:.{decimals}f}"

    def half_width(self) -> float | None:
        """Half the interval's width (what ``±`` prints), None without one."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


@dataclass
class PaperTable:
    """The table: columns, method rows, cells and the notes every format prints under it."""

    spec: TableSpec
    columns: list[Column]
    methods: list[str]
    cells: dict[tuple[str, int], TableCell]
    n_max: list[int]
    standin: set[str]
    runs: list[str]
    tests: dict[int, sig.ColumnTests] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(c.dataset for c in self.columns))

    def label(self, name: str) -> str:
        """The displayed name of a method, dataset or metric."""
        return self.spec.labels.get(name, name)

    def protocols(self) -> list[tuple[str, str]]:
        """(metric, protocol) once per metric, in column order."""
        return list(dict.fromkeys((c.metric, c.protocol) for c in self.columns))

    def notes(self) -> dict[str, str]:
        """The footnotes as plain text, keyed by what they explain (each format marks them its own way)."""
        out: dict[str, str] = {}
        protos = ", ".join(f"{self.label(m)}: {p or 'unknown'}" for m, p in self.protocols())
        out["protocols"] = f"Protocols: {protos}."
        nonstd = [self.label(m) for m in dict.fromkeys(c.metric for c in self.columns if not c.standard)]
        if nonstd:
            out["nonstandard"] = (f"Non-standard protocol (offline stand-in network or data), not comparable with "
                                  f"published values: {', '.join(nonstd)}.")
        standin = [self.label(m) for m in self.methods if m in self.standin]
        if standin:
            out["standin"] = f"Stand-in (random or untrained) weights, not the published model: {', '.join(standin)}."
        if any(c.short_n for c in self.cells.values()):
            out["n"] = "n: a value over fewer images than the column's other methods (compare with care)."
        if any(c.value is None for c in self.cells.values()):
            out["missing"] = "\u2014: not computed (skipped or failed; the run's report says why)."
        if self.spec.ci:
            how = (f"\u00b1: half-width of the {100 * sig.LEVEL:.0f}% percentile bootstrap interval of the mean over "
                   f"images ({self.spec.n_boot} resamples, seed {self.spec.seed})")
            setlevel = [f"{self.label(c.metric)}" for c in self.columns if not c.per_image]
            if setlevel:
                how += f"; none for set-level metrics ({', '.join(dict.fromkeys(setlevel))})"
            out["ci"] = how + "."
        if self.spec.mark_ties:
            out["ties"] = sig.method_statement(self.spec.test, self.spec.alpha, self.spec.n_boot, self.spec.seed)
            if any(p.n == 0 for t in self.tests.values() for p in t.pairs):
                out["ties"] += " Where the methods share no image, nothing is tested and nothing told apart."
        out["best"] = ("Best in bold, second underlined, among the values the ranking ranks (paired over the images "
                       "the methods share; as printed).")
        return out


def _pick(wanted: Sequence[str] | None, present: Sequence[str], what: str) -> list[str]:
    """``wanted`` in its order (all checked to exist), or every present name in first-seen order."""
    if not wanted:
        return list(present)
    unknown = [w for w in wanted if w not in present]
    if unknown:
        raise UserError(f"{what} {', '.join(map(repr, unknown))} not in the run(s); they have: "
                        f"{', '.join(present) or 'none'}", fix=f"pass --{what}s with names from that list")
    return list(dict.fromkeys(wanted))


def default_decimals(values: Sequence[float]) -> int:
    """Decimals giving four significant figures to the column's largest value (25.43, 0.3124, 45.21)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return 2
    return max(0, min(6, 3 - int(math.floor(math.log10(max(finite))))))


def build_table(results: Results, spec: TableSpec) -> PaperTable:
    """The table of ``results`` as ``spec`` asks (order, intervals, ties)."""
    scores = results.scores
    datasets = _pick(spec.datasets, list(dict.fromkeys(scores["dataset"])), "dataset")
    scores = scores[scores["dataset"].isin(datasets)]
    metrics = _pick(spec.metrics, list(dict.fromkeys(scores["metric"])), "metric")
    scores = scores[scores["metric"].isin(metrics)]
    methods = _pick(spec.methods, list(dict.fromkeys(scores["method"])), "method")
    scores = scores[scores["method"].isin(methods)]
    if scores.empty:
        raise UserError("nothing to tabulate: no score for the chosen datasets, metrics and methods",
                        fix="check the names with `bfrbench table RUN --format csv`")
    have_per_image = results.per_image_metrics()
    columns: list[Column] = []
    cells: dict[tuple[str, int], TableCell] = {}
    for ds in datasets:
        for metric in metrics:
            rows = scores[(scores["dataset"] == ds) & (scores["metric"] == metric)]
            ok = rows[(rows["status"] == "ok") & np.isfinite(rows["value"].astype(float))]
            if rows.empty or (ok.empty and not spec.metrics):
                continue  # a metric nobody computed is left out unless asked for by name
            first = (ok if len(ok) else rows).iloc[0]
            vals = [float(v) for v in ok["value"]]
            col = Column(ds, metric, str(first["protocol"]), bool(first["higher_better"]), bool(first["standard"]),
                         spec.decimals.get(metric, default_decimals(vals)), metric in have_per_image)
            idx = len(columns)
            columns.append(col)
            for r in rows.itertuples(index=False):
                value = float(r.value)
                good = r.status == "ok" and math.isfinite(value)
                cells[(r.method, idx)] = TableCell(value if good else None,
                                                   None if not good or (isinstance(r.n, float) and math.isnan(r.n))
                                                   else int(r.n), status=r.status)
    standin = set(scores.loc[scores["standin"].astype(bool), "method"])
    table = PaperTable(spec, columns, [m for m in methods if m in set(scores["method"])], cells, [], standin,
                       list(results.names))
    _mark_n(table)
    _mark_best(table, scores, results.per_image)
    if spec.ci:
        _intervals(table, results)
    if spec.mark_ties:
        _ties(table, results)
    return table


def _column_cells(table: PaperTable, idx: int) -> list[tuple[str, TableCell]]:
    return [(m, table.cells[(m, idx)]) for m in table.methods
            if (m, idx) in table.cells and table.cells[(m, idx)].value is not None]


def _mark_n(table: PaperTable) -> None:
    for idx in range(len(table.columns)):
        ns = [c.n for _, c in _column_cells(table, idx) if c.n is not None]
        table.n_max.append(max(ns, default=0))
        for _, c in _column_cells(table, idx):
            c.short_n = c.n is not None and c.n < table.n_max[idx]


def _mark_best(table: PaperTable, scores: pd.DataFrame, per_image: pd.DataFrame | None) -> None:
    """Bold the best and underline the second of each column, among the values the one ranking rule ranks.

    A column's marks follow :func:`bench.engine.ranking.rank` over the table's own datasets, methods and
    metrics: only its ranked cells are marked, ordered by the value it ranked (paired over the common images),
    as printed to the column's decimals (two printed ties share); a value it does not rank (a set-level metric
    over different images, a method without every metric) is never bold.
    """
    from bench.engine.ranking import rank

    if per_image is not None:
        per_image = per_image[per_image["dataset"].isin(table.datasets) & per_image["method"].isin(table.methods)]
    cells = rank(scores, per_image).cells
    ranked = cells[np.isfinite(cells["rank"].astype(float))]
    ranked_value = {(r.dataset, r.method, r.metric): float(r.value) for r in ranked.itertuples(index=False)}
    for idx, col in enumerate(table.columns):
        present = [(m, c) for m, c in _column_cells(table, idx) if (col.dataset, m, col.metric) in ranked_value]
        if len(present) < 2:
            continue
        printed = {m: round(ranked_value[(col.dataset, m, col.metric)], col.decimals) for m, _ in present}
        distinct = sorted(set(printed.values()), reverse=col.higher_better)
        for m, c in present:
            c.best = printed[m] == distinct[0]
            c.second = len(distinct) > 1 and printed[m] == distinct[1]


def _intervals(table: PaperTable, results: Results) -> None:
    pi = results.per_image
    if pi is None:
        return
    ok = pi[pi["status"] == "ok"]
    for idx, col in enumerate(table.columns):
        if not col.per_image:
            continue
        for m, c in _column_cells(table, idx):
            vals = ok.loc[(ok["dataset"] == col.dataset) & (ok["method"] == m), col.metric].to_numpy(dtype=float)
            lo, hi = sig.bootstrap_ci(vals, table.spec.n_boot, table.spec.seed)
            if math.isfinite(lo):
                c.ci_low, c.ci_high = lo, hi


def _ties(table: PaperTable, results: Results) -> None:
    if results.per_image is None:
        return
    for idx, col in enumerate(table.columns):
        if not col.per_image:
            continue
        present = _column_cells(table, idx)
        tests = sig.compare_column(results.per_image, col.dataset, col.metric, [m for m, _ in present],
                                   table.spec.test, table.spec.alpha, table.spec.n_boot, table.spec.seed,
                                   higher_better=col.higher_better)
        table.tests[idx] = tests
        for m, c in present:
            c.group = tests.groups.get(m, "")


def long_rows(table: PaperTable) -> list[dict[str, object]]:
    """One record per cell (CSV and JSON): every number unrounded, with its flags."""
    out = []
    for idx, col in enumerate(table.columns):
        for m in table.methods:
            c = table.cells.get((m, idx))
            if c is None:
                continue
            out.append({
                "dataset": col.dataset, "metric": col.metric, "protocol": col.protocol,
                "higher_better": col.higher_better, "standard": col.standard, "method": m,
                "standin": m in table.standin, "value": c.value, "n": c.n, "n_max": table.n_max[idx],
                "ci_low": c.ci_low, "ci_high": c.ci_high, "best": c.best, "second": c.second,
                "group": c.group, "status": c.status,
            })
    return out


def finite_or_none(v: float | None) -> float | None:
    """JSON has no NaN: None for anything not finite."""
    return None if v is None or not np.isfinite(v) else float(v)
