"""Leaderboards and per-benchmark tables: the ranks of :func:`bench.engine.ranking.rank`, per-image spread.

A metric is identified by (metric, protocol): the same name under two protocols is two columns,
never averaged together. Ranks follow the one rule of :mod:`bench.engine.ranking` (paired on the
images every method has, ``n`` on every value, methods missing images flagged); a method's score
is its mean rank, lower is better.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.engine.ranking import Ranking, rank, score_rows


@dataclass(frozen=True)
class MetricCol:
    """One metric column of a table."""

    metric: str
    protocol: str
    higher_better: bool
    standard: bool
    label: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.metric, self.protocol)

    @property
    def arrow(self) -> str:
        return "\u2191" if self.higher_better else "\u2193"

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_better else "lower is better"


@dataclass
class Cell:
    """One number in a table with everything its tooltip needs."""

    value: float | None
    n: int | None = None
    rank: float | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    n_images: int = 0
    best: bool = False


@dataclass
class Row:
    """A method's row: identity, flags, mean rank and one cell per metric column."""

    method: str
    method_name: str
    config_hash: str
    standin: bool
    mean_rank: float | None
    n_ranked: int
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    #: overall board only: mean rank per benchmark
    per_dataset: dict[str, float | None] = field(default_factory=dict)
    position: int = 0
    partial: bool = False
    #: e.g. "missing 1 of 10 images" (ranked on the images every method has)
    flag: str = ""


@dataclass
class Board:
    """A ranked table (per benchmark or overall)."""

    title: str
    columns: list[MetricCol]
    rows: list[Row]
    n_rankable: int
    datasets: list[str] = field(default_factory=list)
    #: how each column was ranked (common set size, unranked columns and why)
    notes: list[str] = field(default_factory=list)


def fmt(value: float | None) -> str:
    """Four significant figures, as papers print PSNR 25.43 / LPIPS 0.3124 / FID 45.21."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "\u2014"
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.3e}"
    digits = max(0, 3 - int(math.floor(math.log10(abs(v)))))
    return f"{v:.{digits}f}"


def fmt_rank(rank: float | None) -> str:
    """A rank as 1, 2.5 or 3.33 (ties share the average rank)."""
    if rank is None or not math.isfinite(rank):
        return "\u2014"
    return f"{rank:.2f}".rstrip("0").rstrip(".")


def ok_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows the ranking uses (score rows, status ok, a finite value; last duplicate wins)."""
    return score_rows(summary)


def metric_columns(rows: pd.DataFrame) -> list[MetricCol]:
    """Metric columns in first-seen order; a name used with two protocols gets the protocol in its label."""
    seen: dict[tuple[str, str], MetricCol] = {}
    protocols_per_metric: dict[str, set[str]] = {}
    for r in rows.itertuples(index=False):
        protocols_per_metric.setdefault(r.metric, set()).add(r.protocol)
    for r in rows.itertuples(index=False):
        key = (r.metric, r.protocol)
        if key in seen:
            continue
        label = r.metric if len(protocols_per_metric[r.metric]) == 1 else f"{r.metric} [{r.protocol}]"
        seen[key] = MetricCol(r.metric, r.protocol, bool(r.higher_better), bool(r.standard), label)
    return list(seen.values())


def _method_identity(summary: pd.DataFrame) -> dict[str, tuple[str, str, bool]]:
    """method label -> (method_name, config_hash, standin) from every summary row (ok or skipped)."""
    ident: dict[str, tuple[str, str, bool]] = {}
    for r in summary.itertuples(index=False):
        name, chash, standin = ident.get(r.method, (r.method_name, r.config_hash, False))
        ident[r.method] = (name or r.method_name, chash or r.config_hash, standin or bool(r.standin))
    return ident


def _order(rows: list[Row]) -> list[Row]:
    """Ranked methods on the most pairs first, by mean rank; then the partial and unranked ones; number them."""
    most = max((r.n_ranked for r in rows), default=0)
    for r in rows:
        r.partial = r.partial or r.n_ranked < most or r.mean_rank is None
    rows.sort(key=lambda r: (r.partial, r.mean_rank if r.mean_rank is not None else math.inf, r.method))
    for i, r in enumerate(rows, 1):
        r.position = i
    return rows


def spread_stats(per_image: pd.DataFrame | None) -> dict[tuple[str, str, str], tuple[float, float, float, int]]:
    """(dataset, method, metric) -> (median, q1, q3, n images) over per-image values with status ok."""
    out: dict[tuple[str, str, str], tuple[float, float, float, int]] = {}
    if per_image is None or per_image.empty:
        return out
    from bench.engine.run_folder import PER_IMAGE_COLUMNS

    metrics = [c for c in per_image.columns if c not in PER_IMAGE_COLUMNS]
    ok = per_image[per_image["status"] == "ok"]
    for (dataset, method), group in ok.groupby(["dataset", "method"], sort=False):
        for m in metrics:
            vals = group[m].to_numpy(dtype=float)
            vals = vals[np.isfinite(vals)]
            if vals.size:
                q1, med, q3 = np.percentile(vals, [25, 50, 75])
                out[(dataset, method, m)] = (float(med), float(q1), float(q3), int(vals.size))
    return out


def _ranking(summary: pd.DataFrame, per_image: pd.DataFrame | None, ranking: Ranking | None) -> Ranking:
    return ranking if ranking is not None else rank(summary, per_image)


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def benchmark_board(summary: pd.DataFrame, dataset: str, spread: dict | None = None,
                    per_image: pd.DataFrame | None = None, ranking: Ranking | None = None) -> Board:
    """The leaderboard of one benchmark: one row per method with a value, by the one ranking rule."""
    ranking = _ranking(summary, per_image, ranking)
    cells, methods = ranking.dataset(dataset)
    columns = metric_columns(ok_rows(summary)[lambda d: d["dataset"] == dataset])
    ident = _method_identity(summary)
    spread = spread or {}
    rows: list[Row] = []
    for m in methods.itertuples(index=False):
        name, chash, standin = ident[m.method]
        out: dict[tuple[str, str], Cell] = {}
        for r in cells[cells["method"] == m.method].itertuples(index=False):
            med = spread.get((dataset, m.method, r.metric))
            out[(r.metric, r.protocol)] = Cell(
                value=float(r.value), n=int(r.n), rank=_finite(r.rank),
                median=med[0] if med else None, q1=med[1] if med else None, q3=med[2] if med else None,
                n_images=med[3] if med else 0,
            )
        rows.append(Row(m.method, name, chash, standin, _finite(m.mean_rank), int(m.n_ranked), out,
                        partial=not m.position, flag=m.flag))
    for col in columns:
        present = [r.cells[col.key] for r in rows if col.key in r.cells and r.cells[col.key].rank is not None]
        if len(present) > 1:
            for c in present:
                c.best = c.rank == min(p.rank for p in present)
    return Board(dataset, columns, _order(rows), n_rankable=len(columns), notes=list(ranking.notes.get(dataset, [])))


def overall_board(summary: pd.DataFrame, per_image: pd.DataFrame | None = None,
                  ranking: Ranking | None = None) -> Board:
    """Mean rank over every (benchmark, metric) pair a method was ranked on, with per-benchmark mean ranks."""
    ranking = _ranking(summary, per_image, ranking)
    cells, methods = ranking.cells, ranking.methods
    datasets = list(ranking.notes)
    ident = _method_identity(summary)
    n_rankable = len(cells[np.isfinite(cells["rank"].astype(float))].drop_duplicates(["dataset", "metric", "protocol"]))
    rows: list[Row] = []
    for method in dict.fromkeys(methods["method"]):
        name, chash, standin = ident[method]
        mine = cells[(cells["method"] == method) & np.isfinite(cells["rank"].astype(float))]
        per_ds = {ds: float(g["rank"].mean()) for ds, g in mine.groupby("dataset", sort=False)}
        flags = [f"{r.dataset}: {r.flag}" for r in methods[methods["method"] == method].itertuples() if r.flag]
        rows.append(Row(method, name, chash, standin, float(mine["rank"].mean()) if len(mine) else None, len(mine),
                        per_dataset=per_ds, flag="; ".join(flags)))
    return Board("overall", [], _order(rows), n_rankable=n_rankable, datasets=datasets)
