"""Figures for paper readers: dot-and-interval panels, perception-distortion, ranks across benchmarks, gains.

Values are shown on zoomed axes with 95% bootstrap intervals over images instead of bars from 0
(PSNR 26.22 and 25.78 must not look alike). Intervals come from :mod:`bench.engine.significance`;
drawing helpers (colours, panels, PNG data URIs, no math text) from :mod:`reports.plots`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.engine import significance as sig
from reports.plots import _grid, _new_figure, _panels, _rc, _short, _to_uri
from reports.tables import Board, fmt


@dataclass(frozen=True)
class Interval:
    """A method's mean over its images on one metric, with a bootstrap interval (NaN when set-level)."""

    mean: float
    low: float
    high: float
    n: int


def intervals(per_image: pd.DataFrame | None, dataset: str, methods: Sequence[str], metric: str,
              n_boot: int = sig.N_BOOT, seed: int = sig.SEED) -> dict[str, Interval]:
    """method -> mean and 95% percentile bootstrap interval over its finite per-image values."""
    out: dict[str, Interval] = {}
    if per_image is None or metric not in per_image.columns:
        return out
    ok = per_image[(per_image["dataset"] == dataset) & (per_image["status"] == "ok")]
    for m in methods:
        v = ok.loc[ok["method"] == m, metric].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = sig.bootstrap_ci(v, n_boot, seed)
            out[m] = Interval(float(v.mean()), lo, hi, int(v.size))
    return out


def _zoom(ax, lows: Sequence[float], highs: Sequence[float], axis: str = "x") -> None:
    """Axis limits around the data (with a margin), never forced to include 0."""
    finite = [v for v in (*lows, *highs) if math.isfinite(v)]
    if not finite:
        return
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.01, 1e-6)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo - pad, hi + pad * 2.2)


Intervals = dict[tuple[str, str], Interval]


def dot_intervals(board: Board, ivs: Intervals, colors: dict[str, Any], standin: set[str]) -> str | None:
    """One panel per metric: each method's value as a dot with its bootstrap interval, on a zoomed axis."""
    if not board.columns or not board.rows:
        return None
    methods = [r.method for r in board.rows]
    labels = [_short(m) for m in methods]
    nrows, ncols = _grid(len(board.columns), 4)
    with _rc():
        fig = _new_figure(min(15.0, 1.6 + 3.3 * ncols), (0.3 * len(methods) + 1.1) * nrows)
        axes = _panels(fig, nrows, ncols, max(map(len, labels)))
        for ax, col in zip(axes, board.columns):
            lows, highs = [], []
            for i, row in enumerate(board.rows):
                cell = row.cells.get(col.key)
                if cell is None or cell.value is None:
                    continue
                iv = ivs.get((row.method, col.metric))
                x = iv.mean if iv else cell.value
                face = "white" if row.method in standin else colors[row.method]
                if iv and math.isfinite(iv.low):
                    ax.errorbar(x, i, xerr=[[x - iv.low], [iv.high - x]], fmt="none", ecolor=colors[row.method],
                                elinewidth=1.6, capsize=3)
                    lows.append(iv.low)
                    highs.append(iv.high)
                ax.plot([x], [i], "o", ms=6, mfc=face, mec=colors[row.method], mew=1.4)
                ax.annotate(fmt(x), (x, i), xytext=(6, 4), textcoords="offset points", fontsize=7)
                lows.append(x)
                highs.append(x)
            _zoom(ax, lows, highs)
            ax.grid(axis="x", alpha=0.3)
            tag = "" if col.standard else " (non-standard)"
            ax.set_title(f"{_short(col.label, 36)} {col.arrow}{tag}\n{_short(col.protocol, 40)}", loc="left")
        axes[0].set_yticks(range(len(methods)), labels)
        axes[0].set_ylim(len(methods) - 0.5, -0.5)
        for ax in axes[len(board.columns):]:
            ax.set_visible(False)
        return _to_uri(fig)


def pd_axes(board: Board, needs_gt: dict[str, bool]) -> tuple[Any, Any] | None:
    """(distortion column, perception column): the first full-reference and the first no-reference metric."""
    fr = [c for c in board.columns if needs_gt.get(c.metric) is True]
    nr = [c for c in board.columns if needs_gt.get(c.metric) is False]
    return (fr[0], nr[0]) if fr and nr else None


def perception_distortion(board: Board, ivs: Intervals, needs_gt: dict[str, bool],
                          colors: dict[str, Any], standin: set[str]) -> str | None:
    """A distortion metric (full-reference) against a perceptual one (no-reference), one dot per method
    with its intervals; the corner both arrows point to is the better one."""
    axes_ = pd_axes(board, needs_gt)
    if axes_ is None:
        return None
    xc, yc = axes_
    methods = [r.method for r in board.rows if xc.key in r.cells and yc.key in r.cells]
    if not methods:
        return None
    xi = {m: ivs[(m, xc.metric)] for m in methods if (m, xc.metric) in ivs}
    yi = {m: ivs[(m, yc.metric)] for m in methods if (m, yc.metric) in ivs}
    with _rc():
        fig = _new_figure(7.0, 4.6)
        ax = fig.add_axes((0.11, 0.12, 0.6, 0.78))
        xs_all, ys_all = [], []
        for row in board.rows:
            if row.method not in methods:
                continue
            x = xi[row.method].mean if row.method in xi else row.cells[xc.key].value
            y = yi[row.method].mean if row.method in yi else row.cells[yc.key].value
            xerr = yerr = None
            if row.method in xi and math.isfinite(xi[row.method].low):
                xerr = [[x - xi[row.method].low], [xi[row.method].high - x]]
                xs_all += [xi[row.method].low, xi[row.method].high]
            if row.method in yi and math.isfinite(yi[row.method].low):
                yerr = [[y - yi[row.method].low], [yi[row.method].high - y]]
                ys_all += [yi[row.method].low, yi[row.method].high]
            color = colors[row.method]
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", ms=7, color=color,
                        mfc="white" if row.method in standin else color, capsize=3, label=" " + _short(row.method))
            ax.annotate(_short(row.method, 20), (x, y), xytext=(6, 5), textcoords="offset points", fontsize=7)
            xs_all.append(x)
            ys_all.append(y)
        _zoom(ax, xs_all, xs_all, "x")
        _zoom(ax, ys_all, ys_all, "y")
        ax.set_xlabel(f"{_short(xc.label, 30)} {xc.arrow} (distortion, full-reference)")
        ax.set_ylabel(f"{_short(yc.label, 30)} {yc.arrow} (perception, no-reference)")
        ax.grid(alpha=0.3)
        right = "right" if xc.higher_better else "left"
        up = "top" if yc.higher_better else "bottom"
        ax.set_title(f"perception-distortion: better towards the {up} {right}", loc="left")
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _to_uri(fig)


def rank_chart(overall: Board, colors: dict[str, Any]) -> str | None:
    """Each method's mean rank on every benchmark (1 at the top), one line per method."""
    datasets = overall.datasets
    rows = [r for r in overall.rows if any(r.per_dataset.get(d) is not None for d in datasets)]
    if len(datasets) < 2 or not rows:
        return None
    with _rc():
        fig = _new_figure(min(14.0, 4.0 + 1.4 * len(datasets)), 3.6)
        ax = fig.add_axes((0.08, 0.16, 0.62, 0.74))
        xs = np.arange(len(datasets))
        worst = 1.0
        for row in rows:
            ys = [row.per_dataset.get(d) for d in datasets]
            ys = [math.nan if v is None else v for v in ys]
            worst = max([worst, *[v for v in ys if math.isfinite(v)]])
            ax.plot(xs, ys, "o-", color=colors[row.method], lw=1.6, ms=6, label=" " + _short(row.method))
        ax.set_xticks(xs, [_short(d, 20) for d in datasets])
        ax.set_ylim(worst + 0.4, 0.6)
        ax.set_ylabel("mean rank on the benchmark (1 = best)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_title("ranks across benchmarks", loc="left")
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _to_uri(fig)


def forest(gains: Sequence[dict[str, Any]]) -> str | None:
    """Gains (conditioned - base) with their 95% intervals, one panel per metric, 0 marked."""
    rows = [g for g in gains if g.get("delta_v") is not None]
    if not rows:
        return None
    metrics = list(dict.fromkeys(g["metric"] for g in rows))
    colour = {"better": "#2e7d32", "worse": "#c62828"}
    per = max(sum(1 for g in rows if g["metric"] == m) for m in metrics)
    labels = [_short(f"{g['cond']} vs {g['base']} \u00b7 {g['dataset']}", 44) for g in rows]
    with _rc():  # one column: every panel's row labels have the left margin to themselves
        fig = _new_figure(10.0, (0.32 * per + 1.2) * len(metrics))
        axes = _panels(fig, len(metrics), 1, max(map(len, labels)), sharey=False)
        for ax, metric in zip(axes, metrics):
            group = [(g, lab) for g, lab in zip(rows, labels) if g["metric"] == metric]
            for i, (g, _) in enumerate(group):
                d, lo, hi = g["delta_v"], g.get("ci_low_v"), g.get("ci_high_v")
                c = colour.get(g["verdict"], "#757575")
                if lo is not None and hi is not None:
                    ax.errorbar(d, i, xerr=[[d - lo], [hi - d]], fmt="none", ecolor=c, elinewidth=1.6, capsize=3)
                ax.plot([d], [i], "s", color=c, ms=6)
                ax.annotate(f"{d:+.3g} ({g['verdict']})", (d, i), xytext=(5, 5), textcoords="offset points", fontsize=7)
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(range(len(group)), [lab for _, lab in group])
            ax.set_ylim(len(group) - 0.5, -0.7)
            ax.margins(x=0.35)
            ax.set_title(f"{_short(metric, 30)} {group[0][0]['arrow']} gain ({group[0][0]['direction']})", loc="left")
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        return _to_uri(fig)
