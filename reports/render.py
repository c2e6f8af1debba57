"""Render a run folder as one self-contained HTML report (``index.html``).

Jinja2 with autoescape on: every string from the run (method names, file names, reasons) is text,
never markup. CSS and JS are inlined from ``reports/static``; figures and images are data URIs (or
links relative to the report with ``embed_images=False``). A Content-Security-Policy allows only
the report's own script (by hash), inline styles and data/file images, so the page makes no
network requests even if a browser is asked to.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.atomic import atomic_write_text
from bench.engine import significance as sig
from bench.engine.ranking import RULE, rank
from reports import gallery, paper_plots, plots
from reports.data import RunData, load_run
from reports.tables import Board, benchmark_board, fmt, fmt_rank, metric_columns, ok_rows, overall_board, spread_stats

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
PER_IMAGE_PAGE = 50


@dataclass
class BenchmarkSection:
    """Everything shown for one benchmark."""

    index: int
    name: str
    board: Board
    n_images: int | None
    #: dot-and-interval panels (zoomed axes, bootstrap intervals) and the perception-distortion plot
    dots: str | None = None
    pd_plot: str | None = None
    pd_axes: tuple[str, str] | None = None
    #: (method, metric) -> mean and 95% bootstrap interval over the method's images
    intervals: dict[tuple[str, str], paper_plots.Interval] = field(default_factory=dict)
    #: (method, metric) -> significance letters; metric -> the column's tests
    groups: dict[tuple[str, str], str] = field(default_factory=dict)
    tested: list[str] = field(default_factory=list)
    #: the before/after slider: one image's LQ, outputs and GT at full resolution
    compare: list[gallery.CompareSide] = field(default_factory=list)
    compare_image: str = ""
    dists: str | None = None
    table_data: dict[str, Any] | None = None
    gallery: list[gallery.GalleryRow] = field(default_factory=list)
    extremes: list[tuple[str, str, list[gallery.ExtremeRow]]] = field(default_factory=list)
    outputs_saved: bool = False
    no_direction: list[str] = field(default_factory=list)
    quality_hist: str | None = None


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _direction_map(run: RunData) -> dict[str, bool]:
    """metric name -> higher_better, from the manifest first, then summary rows."""
    out: dict[str, bool] = {}
    for r in run.summary.itertuples(index=False):
        out.setdefault(r.metric, bool(r.higher_better))
    for name, meta in (run.manifest.get("metrics") or {}).items():
        if isinstance(meta, dict) and "higher_better" in meta:
            out[name] = bool(meta["higher_better"])
    return out


def _protocol_map(run: RunData) -> dict[str, str]:
    """metric name -> protocol, from the manifest first, then summary rows."""
    out: dict[str, str] = {}
    for r in run.summary.itertuples(index=False):
        if r.protocol:
            out.setdefault(r.metric, r.protocol)
    for name, meta in (run.manifest.get("metrics") or {}).items():
        if isinstance(meta, dict) and meta.get("protocol"):
            out[name] = str(meta["protocol"])
    return out


def _standin_methods(run: RunData) -> set[str]:
    out = set(run.summary.loc[run.summary["standin"], "method"])
    for label, meta in (run.manifest.get("methods") or {}).items():
        if not isinstance(meta, dict):
            continue
        if meta.get("standin") or any(isinstance(w, dict) and w.get("standin") for w in meta.get("weights") or []):
            out.add(label)
    return out


def _nonstandard_metrics(run: RunData) -> set[str]:
    out = set(run.summary.loc[~run.summary["standard"], "metric"])
    for name, meta in (run.manifest.get("metrics") or {}).items():
        if isinstance(meta, dict) and meta.get("standard") is False:
            out.add(name)
    return out


def _round(v: float) -> float | None:
    return float(f"{v:.6g}") if math.isfinite(v) else None


def per_image_table(run: RunData, dataset: str, methods: list[str], metrics: list[str],
                    higher_better: dict[str, bool], protocols: dict[str, str]) -> dict[str, Any] | None:
    """Compact rows for the sortable per-image table (built in the browser with textContent only)."""
    if run.per_image is None:
        return None
    df = run.per_image[run.per_image["dataset"] == dataset]
    if df.empty:
        return None
    shown = [m for m in metrics if m in df.columns and np.isfinite(df[m].to_numpy(dtype=float)).any()]
    order = {m: i for i, m in enumerate(methods)}
    df = df.assign(_o=df["method"].map(lambda m: order.get(m, len(order)))).sort_values(["image", "_o"])
    cols = [df[m].to_numpy(dtype=float) for m in shown]
    rows = []
    for i, (image, method, status, error) in enumerate(zip(df["image"], df["method"], df["status"], df["error"])):
        rows.append([image, method, status if status == "ok" else f"{status}: {error}"] + [_round(c[i]) for c in cols])
    return {
        "metrics": shown,
        "directions": [higher_better.get(m) for m in shown],
        "protocols": [protocols.get(m, "") for m in shown],
        "methods": [m for m in methods if m in set(df["method"])],
        "rows": rows,
        "page": PER_IMAGE_PAGE,
    }


def _split_fix(reason: str) -> tuple[str, str]:
    """The runner writes "REASON | fix: FIX" into summary rows; split it back."""
    if " | fix: " in reason:
        head, fix = reason.rsplit(" | fix: ", 1)
        return head, fix
    return reason, ""


def _skipped(run: RunData) -> list[dict[str, str]]:
    """Skipped methods/metrics: the manifest's list, plus summary rows it does not cover (one per item)."""
    out: list[dict[str, str]] = []
    covered: set[tuple[str, str, str]] = set()
    for s in run.manifest.get("skipped") or []:
        if not isinstance(s, dict):
            continue
        item = {k: str(s.get(k, "") or "") for k in ("kind", "name", "dataset", "reason", "fix")}
        covered.add((item["kind"], item["name"], item["dataset"]))
        out.append(item)
    for r in run.summary[run.summary["status"] != "ok"].itertuples(index=False):
        kind, name = ("method", r.method) if r.metric in ("*", "") else ("metric", r.metric)
        if (kind, name, "") in covered or (kind, name, r.dataset) in covered:
            continue
        covered.add((kind, name, r.dataset))
        reason, fix = _split_fix(r.reason)
        if r.status != "skipped":
            kind = f"{kind} ({r.status})"
            if kind.startswith("metric"):
                reason = f"{r.method}: {reason}" if reason else f"{r.method}: no finite value"
        out.append({"kind": kind, "name": name, "dataset": r.dataset, "reason": reason, "fix": fix})
    return out


def _gains(run: RunData) -> list[dict[str, Any]]:
    if run.gains is None:
        return []
    rows = []
    for r in run.gains.itertuples(index=False):
        d, lo, hi = _finite(r.delta_mean), _finite(r.ci_low), _finite(r.ci_high)
        significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
        better = None if d is None else (d > 0 if r.higher_better else d < 0)
        verdict = "n.s." if not significant else ("better" if better else "worse")
        note = getattr(r, "note", "") or ""
        if note.startswith("zero by construction"):
            verdict = "zero by construction"
        rows.append({
            "dataset": r.dataset, "base": r.base_method, "cond": r.cond_method, "metric": r.metric,
            "protocol": r.protocol, "direction": "higher is better" if r.higher_better else "lower is better",
            "arrow": "\u2191" if r.higher_better else "\u2193",
            "delta": fmt(d), "ci_low": fmt(lo), "ci_high": fmt(hi), "delta_v": d, "ci_low_v": lo, "ci_high_v": hi,
            "n": "" if _finite(r.n) is None else int(r.n), "verdict": verdict, "note": note,
            "standin": bool(getattr(r, "standin", False)),
        })
    return rows


def _suite_rows(run: RunData) -> list[dict[str, Any]]:
    """A suite's variables, score and gate per method (summary rows of kind ``suite``)."""
    rows = run.suite_rows
    if rows is None or rows.empty:
        return []
    out = []
    for r in rows.itertuples(index=False):
        out.append({"suite": r.dataset, "method": r.method, "metric": r.metric.split(":", 1)[-1],
                    "protocol": r.protocol, "value": fmt(_finite(r.value)), "value_v": _finite(r.value),
                    "status": r.status, "reason": r.reason, "n": "" if _finite(r.n) is None else int(r.n)})
    return out


def _reproduction(run: RunData) -> list[dict[str, Any]]:
    """comparison.csv rows: the paper's value beside ours, with the table's tolerance."""
    if run.comparison is None or run.comparison.empty:
        return []
    out = []
    for r in run.comparison.itertuples(index=False):
        out.append({"table": str(r.table), "source": str(r.source), "dataset": str(r.dataset),
                    "method": str(r.method), "metric": str(r.metric), "paper": fmt(_finite(r.paper)),
                    "ours": fmt(_finite(r.ours)), "diff": fmt(_finite(r.diff)), "tolerance": str(r.tolerance),
                    "within": str(r.within), "protocol": "" if not isinstance(r.protocol, str) else r.protocol,
                    "n": "" if _finite(getattr(r, "n", None)) is None else int(r.n),
                    "note": str(getattr(r, "note", "")) if isinstance(getattr(r, "note", ""), str) else ""})
    return out


def _profile_rows(run: RunData) -> list[dict[str, Any]]:
    if run.profile is None:
        return []
    rows = []
    for r in run.profile.itertuples(index=False):
        def pct(v: Any) -> str:
            f = _finite(v)
            return "\u2014" if f is None else f"{100 * f:.0f}%"

        rows.append({
            "label": plots.profile_label(r), "method": r.method, "metric": r.metric, "device": r.device,
            "dtype": r.dtype + "".join(f" +{f.replace('_', '-')}" for f in ("compile", "channels_last")
                                       if getattr(r, f, False) is True),
            "batch_size": "" if _finite(r.batch_size) is None else int(r.batch_size),
            "ips": fmt(_finite(r.images_per_s)), "ips_v": _finite(r.images_per_s),
            "p50": fmt(_finite(r.latency_p50_ms)), "p95": fmt(_finite(r.latency_p95_ms)),
            "mem": fmt(_finite(r.peak_mem_mb)), "mem_v": _finite(r.peak_mem_mb),
            "data_share": pct(r.data_share), "busy_share": pct(r.busy_share),
            "status": str(getattr(r, "status", "") or ""), "note": str(getattr(r, "note", "") or ""),
        })
    return rows


def _manifest_view(run: RunData) -> dict[str, Any]:
    """The manifest reshaped for display (lists of pairs; JSON for free-form parameters)."""
    m = run.manifest

    def s(v: Any) -> str:
        return "" if v is None else str(v)

    methods = []
    for label, meta in (m.get("methods") or {}).items():
        meta = meta if isinstance(meta, dict) else {}
        weights = [w for w in meta.get("weights") or [] if isinstance(w, dict)]
        methods.append({
            "label": label, "name": s(meta.get("name")),
            "params": json.dumps(meta.get("params") or {}, sort_keys=True, default=str),
            "weights": [{"name": s(w.get("name")), "path": s(w.get("path")), "sha256": s(w.get("sha256")),
                         "standin": bool(w.get("standin")), "note": s(w.get("note"))} for w in weights],
        })
    metrics = []
    for name, meta in (m.get("metrics") or {}).items():
        meta = meta if isinstance(meta, dict) else {}
        metrics.append({"name": name, "protocol": s(meta.get("protocol")),
                        "higher_better": meta.get("higher_better"), "standard": meta.get("standard"),
                        "needs_gt": meta.get("needs_gt")})
    datasets = []
    for name, meta in (m.get("datasets") or {}).items():
        meta = meta if isinstance(meta, dict) else {}
        conv = meta.get("conversions") or {}
        datasets.append({
            "name": name, "n": s(meta.get("n")), "root": s(meta.get("root")),
            "bad_files": [{"file": s(b.get("file")), "reason": s(b.get("reason"))}
                          for b in meta.get("bad_files") or [] if isinstance(b, dict)],
            "conversions": [(s(f), ", ".join(map(str, c)) if isinstance(c, list) else s(c)) for f, c in conv.items()],
        })
    return {
        "info": [(k, s(m.get(k))) for k in ("bfrbench_version", "created", "git_commit", "python", "torch", "device", "platform")
                 if m.get(k) not in (None, "")],
        "packages": sorted((s(k), s(v)) for k, v in (m.get("packages") or {}).items()),
        "seeds": [(s(k), json.dumps(v, default=str) if not isinstance(v, (str, int, float)) else s(v))
                  for k, v in (m.get("seeds") or {}).items()],
        "methods": methods, "metrics": metrics, "datasets": datasets,
        "raw": json.dumps(m, indent=2, sort_keys=True, default=str),
    }


def _errors(run: RunData) -> list[dict[str, str]]:
    if run.per_image is None:
        return []
    bad = run.per_image[run.per_image["status"] != "ok"]
    return [{"dataset": r.dataset, "method": r.method, "image": r.image, "error": r.error}
            for r in bad[["dataset", "method", "image", "error"]].itertuples(index=False)]


def _needs_gt(run: RunData) -> dict[str, bool]:
    """metric -> whether it is full-reference (from the manifest): the perception-distortion axes."""
    out = {}
    for name, meta in (run.manifest.get("metrics") or {}).items():
        if isinstance(meta, dict) and isinstance(meta.get("needs_gt"), bool):
            out[str(name)] = meta["needs_gt"]
    return out


def _paper_figures(sec: BenchmarkSection, run: RunData, colors: dict[str, Any], standin: set[str]) -> None:
    """Intervals, significance letters, dot-and-interval panels and the perception-distortion plot."""
    board = sec.board
    methods = [r.method for r in board.rows]
    for col in board.columns:
        for m, iv in paper_plots.intervals(run.per_image, sec.name, methods, col.metric).items():
            sec.intervals[(m, col.metric)] = iv
        with_value = [r.method for r in board.rows if col.key in r.cells]
        if run.per_image is not None and col.metric in run.per_image.columns and len(with_value) > 1:
            tests = sig.compare_column(run.per_image, sec.name, col.metric, with_value,
                                       higher_better=col.higher_better)
            if tests.family:
                sec.tested.append(col.metric)
                sec.groups.update({(m, col.metric): g for m, g in tests.groups.items()})
    sec.dots = paper_plots.dot_intervals(board, sec.intervals, colors, standin)
    needs_gt = _needs_gt(run)
    axes = paper_plots.pd_axes(board, needs_gt)
    if axes is not None:
        sec.pd_axes = (axes[0].label, axes[1].label)
        sec.pd_plot = paper_plots.perception_distortion(board, sec.intervals, needs_gt, colors, standin)


def _static(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def build_context(run: RunData, out: Path, embed_images: bool = True, include_images: bool = True,
                  gallery_images: int = 4, thumb_size: int = gallery.THUMB_SIZE,
                  data_roots: Sequence[Path] = (), trust_manifest_roots: bool = False) -> dict[str, Any]:
    """Everything the template needs (all data still plain text: the template escapes it)."""
    summary = run.summary
    hb = _direction_map(run)
    protocols = _protocol_map(run)
    standin = _standin_methods(run)
    nonstd = _nonstandard_metrics(run)
    ranking = rank(summary, run.per_image)
    overall = overall_board(summary, ranking=ranking)
    methods_order = [r.method for r in overall.rows]
    for meth in dict.fromkeys(summary["method"]):
        if meth not in methods_order:
            methods_order.append(meth)
    colors = plots.method_colors(methods_order)
    spread = spread_stats(run.per_image)
    roots = gallery.honoured_roots(gallery.dataset_roots(run.manifest, run.run_dir), run.run_dir, data_roots,
                                   trust_listed=trust_manifest_roots)
    enc = gallery.ImageEncoder(run.run_dir, out.parent, embed=embed_images, roots=roots, thumb_size=thumb_size)
    per_image_metrics = run.metric_columns
    quality = run.manifest.get("quality_scores") or {}
    skipped = _skipped(run)

    datasets = list(dict.fromkeys(summary["dataset"]))
    if run.per_image is not None:
        datasets += [d for d in dict.fromkeys(run.per_image["dataset"]) if d not in datasets]
    sections: list[BenchmarkSection] = []
    for i, ds in enumerate(datasets, 1):
        board = benchmark_board(summary, ds, spread, ranking=ranking)
        n_images = None
        if run.per_image is not None:
            n_images = int(run.per_image.loc[run.per_image["dataset"] == ds, "image"].nunique())
        sec = BenchmarkSection(i, ds, board, n_images)
        _paper_figures(sec, run, colors, standin)
        ds_methods = [m for m in methods_order if m in {r.method for r in board.rows}]
        if run.per_image is not None:
            in_ds = set(run.per_image.loc[run.per_image["dataset"] == ds, "method"])
            ds_methods += [m for m in methods_order if m in in_ds and m not in ds_methods]
            # metrics in board order first, then per-image-only columns
            ordered = [c.metric for c in board.columns if c.metric in per_image_metrics]
            ordered += [m for m in per_image_metrics if m not in ordered]
            sec.dists = plots.distributions(run.per_image, ds, ds_methods, ordered, hb, colors, protocols)
            sec.table_data = per_image_table(run, ds, ds_methods, ordered, hb, protocols)
            if include_images:
                sec.gallery = gallery.gallery_rows(enc, run.per_image, ds, ds_methods, ordered, standin,
                                                   k=gallery_images)
                sec.outputs_saved = any(t.kind == "method" for r in sec.gallery for t in r.tiles)
                if sec.gallery:
                    sec.compare_image = sec.gallery[0].image
                    sec.compare = gallery.compare_sides(enc, run.per_image, ds, sec.compare_image, ds_methods)
                extremes, sec.no_direction = gallery.extremes(enc, run.per_image, ds, ds_methods, ordered, hb)
                sec.extremes = gallery.group_extremes(extremes)
        if isinstance(quality, dict) and isinstance(quality.get(ds), dict):
            sec.quality_hist = plots.quality_histogram(quality[ds], colors, f"quality scores on {ds}")
        sections.append(sec)

    nonstd_used = sorted(nonstd & {c.metric for c in metric_columns(ok_rows(summary))})
    standin_used = [m for m in methods_order if m in standin]
    gains = _gains(run)
    profile_rows = _profile_rows(run)
    created = run.manifest.get("created") or ""
    return {
        "title": f"bfrbench report: {run.run_dir.name}",
        "run_name": run.run_dir.name,
        "created": str(created),
        "rendered": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "overall": overall,
        "ranking_rule": RULE,
        "sections": sections,
        "standin": standin,
        "standin_used": standin_used,
        "nonstd": nonstd,
        "nonstd_used": nonstd_used,
        "gains": gains,
        "suite_rows": _suite_rows(run),
        "reproduction": _reproduction(run),
        "profile_rows": profile_rows,
        "profile_chart": plots.profile_chart(run.profile),
        "rank_chart": paper_plots.rank_chart(overall, colors),
        "forest": paper_plots.forest(gains),
        "significance": sig.method_statement("wilcoxon"),
        "manifest": _manifest_view(run),
        "skipped": skipped,
        "errors": _errors(run),
        "missing": run.missing,
        "include_images": include_images,
        "embed_images": embed_images,
        "regions": gallery.REGIONS,
        "thumb_size": thumb_size,
        "fmt": fmt,
        "bytes_embedded": enc.bytes_embedded,
        "has_per_image": run.per_image is not None,
    }


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["fmt_rank"] = fmt_rank
    return env


def csp(script: str, embed_images: bool) -> str:
    """Content-Security-Policy: nothing from the network; only this report's script (by hash) runs."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    img = "data:" if embed_images else "data: 'self' file:"
    return (f"default-src 'none'; img-src {img}; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "connect-src 'none'; form-action 'none'; base-uri 'none'")


def render_html(run: RunData, out: Path, embed_images: bool = True, include_images: bool = True,
                gallery_images: int = 4, thumb_size: int = gallery.THUMB_SIZE, data_roots: Sequence[Path] = (),
                trust_manifest_roots: bool = False) -> str:
    """The report HTML for a loaded run (``out`` is where it will live: links are relative to it)."""
    from markupsafe import Markup

    ctx = build_context(run, out, embed_images, include_images, gallery_images, thumb_size, data_roots,
                        trust_manifest_roots)
    script = _static("report.js")
    ctx["css"] = Markup(_static("report.css"))
    ctx["script"] = Markup(script)
    ctx["csp"] = csp(script, embed_images)
    return _environment().get_template("report.html.j2").render(**ctx)


def render_report(run_dir: str | Path, out: str | Path | None = None, embed_images: bool = True, *,
                  include_images: bool = True, gallery_images: int = 4, thumb_size: int = gallery.THUMB_SIZE,
                  data_roots: Sequence[str | Path] = (), trust_manifest_roots: bool = False) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default RUN_DIR/index.html) atomically; return its path.

    Images come only from the run folder and the dataset folders :func:`gallery.honoured_roots` allows
    (``data_roots``: folders the user trusts; ``trust_manifest_roots``: only for a run made here).
    """
    run = load_run(run_dir)
    target = Path(out) if out is not None else run.run_dir / "index.html"
    html = render_html(run, target, embed_images=embed_images, include_images=include_images,
                       gallery_images=gallery_images, thumb_size=thumb_size, data_roots=[Path(p) for p in data_roots],
                       trust_manifest_roots=trust_manifest_roots)
    atomic_write_text(target, html)
    return target


__all__ = ["render_report", "render_html", "build_context", "csp", "load_run"]
