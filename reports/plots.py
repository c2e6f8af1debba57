"""Report figures (matplotlib, Agg, no pyplot state), returned as embeddable PNG data URIs.

Labels come from run data, so math text is off (a ``$`` in a method name stays text) and long
names are shortened; each method keeps one colour across every figure.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports.tables import fmt

DPI = 90
_RC = {
    "text.parse_math": False,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
}


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def method_colors(methods: Sequence[str]) -> dict[str, Any]:
    """A stable colour per method (tab10, then tab20 for larger runs)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _panels(fig, nrows: int, ncols: int, label_chars: int, title_lines: int = 2, sharey: bool = True):
    """A grid of panels with fixed margins (constrained layout costs seconds per figure on a slow CPU)."""
    w, h = fig.get_size_inches()
    left = min(0.45, (0.25 + 0.062 * label_chars) / w)
    row_h = h / nrows
    top_pad = (0.16 * title_lines + 0.12) / row_h
    gs = fig.add_gridspec(
        nrows, ncols, left=left, right=1 - 0.15 / w, bottom=0.35 / h, top=1 - 0.05 / h - (0.16 * title_lines) / h,
        wspace=0.35, hspace=top_pad + 0.35 / row_h,
    )
    return np.array(gs.subplots(sharey=sharey, squeeze=False)).ravel()


def _to_uri(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # no Software/URL metadata in the PNG: the report carries nothing that points outside it
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def _grid(n: int, cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def distributions(
    per_image: pd.DataFrame | None, dataset: str, methods: Sequence[str], metrics: Sequence[str],
    higher_better: dict[str, bool], colors: dict[str, Any], protocols: dict[str, str] | None = None,
) -> str | None:
    """Box plots of per-image values per method, one panel per metric with per-image values."""
    protocols = protocols or {}
    if per_image is None or per_image.empty:
        return None
    df = per_image[(per_image["dataset"] == dataset) & (per_image["status"] == "ok")]
    panels = []
    for m in metrics:
        if m not in df.columns:
            continue
        data, where = [], []
        for pos, meth in enumerate(methods):
            vals = df.loc[df["method"] == meth, m].to_numpy(dtype=float)
            vals = vals[np.isfinite(vals)]
            if vals.size:
                data.append(vals)
                where.append(pos)
        if data:
            panels.append((m, data, where))
    if not panels:
        return None
    labels = [_short(m) for m in methods]
    nrows, ncols = _grid(len(panels), 4)
    per_panel_h = 0.3 * len(methods) + 1.0
    with _rc():
        fig = _new_figure(min(15.0, 1.6 + 3.3 * ncols), per_panel_h * nrows)
        axes = _panels(fig, nrows, ncols, max(map(len, labels)), title_lines=2)
        for ax, (m, data, where) in zip(axes, panels):
            bp = _hbox(ax, data, where)
            for patch, pos in zip(bp["boxes"], where):
                patch.set_facecolor(colors[methods[pos]])
                patch.set_alpha(0.8)
            arrow = "" if m not in higher_better else (" \u2191" if higher_better[m] else " \u2193")
            ax.set_title(f"{_short(m, 40)}{arrow}\n{_short(protocols.get(m, ''), 48)}", loc="left")
        axes[0].set_yticks(range(len(methods)), labels)
        axes[0].set_ylim(len(methods) - 0.5, -0.5)  # first method on top
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        return _to_uri(fig)


def _hbox(ax, data: list[np.ndarray], positions: list[int]) -> dict:
    """Horizontal box plot (``orientation`` on matplotlib >= 3.10, ``vert=False`` before)."""
    kw = {"patch_artist": True, "widths": 0.6, "flierprops": {"markersize": 2, "alpha": 0.5},
          "medianprops": {"color": "black"}, "positions": positions, "manage_ticks": False}
    try:
        return ax.boxplot(data, orientation="horizontal", **kw)
    except TypeError:
        return ax.boxplot(data, vert=False, **kw)


def quality_histogram(scores: dict[str, Sequence[float]], colors: dict[str, Any], title: str) -> str | None:
    """Overlaid histograms of predicted quality scores, one per method."""
    series = {}
    for meth, vals in scores.items():
        arr = np.asarray([v for v in vals if v is not None], dtype=float)
        arr = arr[np.isfinite(arr)]
        if arr.size:
            series[meth] = arr
    if not series:
        return None
    lo = min(float(a.min()) for a in series.values())
    hi = max(float(a.max()) for a in series.values())
    if hi <= lo:
        hi = lo + 1.0
    bins = np.linspace(lo, hi, 31)
    with _rc():
        fig = _new_figure(7.0, 2.8)
        ax = _panels(fig, 1, 1, 6, title_lines=1)[0]
        for meth, arr in series.items():
            color = colors.get(meth, "grey")
            label = f"{_short(meth)} (n={arr.size})"
            # matplotlib hides legend entries whose label starts with "_": keep such names visible
            ax.hist(arr, bins=bins, alpha=0.45, color=color, label=" " + label if label.startswith("_") else label)
        ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel("quality score")
        ax.set_ylabel("images")
        ax.set_title(_short(title, 60), loc="left")
        return _to_uri(fig)


def profile_chart(profile: pd.DataFrame | None) -> str | None:
    """Throughput (images/s) and peak memory (MB) per profiled configuration."""
    if profile is None or profile.empty:
        return None
    labels = [profile_label(r) for r in profile.itertuples(index=False)]
    ips = profile["images_per_s"].to_numpy(dtype=float)
    mem = profile["peak_mem_mb"].to_numpy(dtype=float)
    h = 0.3 * len(labels) + 1.0
    with _rc():
        fig = _new_figure(11.0, h)
        ax1, ax2 = _panels(fig, 1, 2, max(len(_short(s, 40)) for s in labels), title_lines=1)
        y = np.arange(len(labels))
        for ax, vals, title in ((ax1, ips, "throughput (images/s) \u2191"), (ax2, mem, "peak memory (MB) \u2193")):
            finite = np.where(np.isfinite(vals), vals, 0.0)
            ax.barh(y, finite, color="#4c78a8")
            for i, v in enumerate(vals):
                ax.text(finite[i], i, " " + fmt(v if np.isfinite(v) else None), va="center", fontsize=7)
            ax.margins(x=0.25)
            ax.set_title(title, loc="left")
        ax1.set_yticks(y, [_short(s, 40) for s in labels])
        ax1.invert_yaxis()
        return _to_uri(fig)


def profile_label(r: Any) -> str:
    """'method / metric (device, dtype, bs N)' for a profile.csv row; empty parts left out."""
    who = " / ".join(p for p in (str(r.method or ""), str(r.metric or "")) if p and p != "nan") or "?"
    bits = [str(b) for b in (r.device, r.dtype) if b and str(b) != "nan"]
    if r.batch_size is not None and not (isinstance(r.batch_size, float) and math.isnan(r.batch_size)):
        bits.append(f"bs {int(r.batch_size)}")
    bits += [flag.replace("_", "-") for flag in ("compile", "channels_last") if getattr(r, flag, False) is True]
    return f"{who} ({', '.join(bits)})" if bits else who
