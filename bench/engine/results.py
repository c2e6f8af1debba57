"""A run's results from its units: the summary, gains and per-image tables, the manifest, the console tables.

The tables' columns and the files they go to belong to the run folder
(:mod:`bench.engine.run_folder`); this module builds their rows. summary.csv has one row per
(dataset, method, metric) with the protocol of the number, whether it is standard and whether
stand-in weights made it; gains.csv has a method against its quality-conditioned variant
(paired per-image deltas, 95% CI).
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.core.registry import METHODS
from bench.engine.run_folder import GAINS_COLUMNS, PER_IMAGE_COLUMNS, SUMMARY_COLUMNS, RunFolder, layout

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the one rule for infinite per-image values (PSNR of an output identical to its GT): counted apart
INF_RULE = ("infinite per-image values (e.g. PSNR of an output identical to its GT) are left out of the mean "
            "and of n, and counted in n_inf")
#: gains.csv's note when the conditioned side's score embedding is the untrained zero table
ZERO_EMBEDDING_NOTE = ("zero by construction: the score embedding is untrained (zero-initialised), so the "
                       "conditioned outputs equal the base's; fine-tune one with `bfrbench train finetune_codeformer`")
PACKAGES = ["torch", "torchvision", "numpy", "opencv-python-headless", "scikit-image", "lpips", "pytorch-fid",
            "onnxruntime", "pyiqa", "dlib-bin", "pandas", "pyarrow"]


def mean_ci(deltas: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a t-distribution confidence interval of paired per-image deltas."""
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = d.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if n == 1:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _reason_with_fix(skip: dict) -> str:
    """The skip reason, with its fix appended unless the reason already names it."""
    reason, fix = skip.get("reason", ""), skip.get("fix", "")
    return reason if not fix or fix in reason else f"{reason} | fix: {fix}"


def build_summary(
    units: list, methods_info: dict, metrics_info: dict, skipped: list[dict], datasets: list[str] = ()
) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for u in units:
        standin = bool(methods_info.get(u.label, {}).get("standin", False))
        for metric, value in u.metric_values.items():
            mi = metrics_info.get(metric, {})
            n_inf = int(getattr(u, "metric_inf", {}).get(metric, 0))
            why = getattr(u, "metric_errors", {}).get(metric, "")
            notes = [f"{n_inf} infinite value(s) counted apart (n_inf), not in the mean"] if n_inf else []
            if why:
                notes.append(f"failed on some images: {why}")
            rows.append(
                {
                    "dataset": u.dataset, "method": u.label, "method_name": u.method_name,
                    "config_hash": u.config_hash, "metric": metric, "protocol": mi.get("protocol") or "",
                    "value": value, "n": u.metric_n.get(metric, 0),
                    "higher_better": bool(mi.get("higher_better", True)),
                    "standard": bool(mi.get("standard", True)), "standin": standin,
                    "status": "ok" if not math.isnan(value) else "failed",
                    "reason": "; ".join(notes) if not math.isnan(value) else _failure_reason(u, metric, skipped),
                    "n_inf": n_inf,
                }
            )
    for s in skipped:
        if s["kind"] != "metric" or not s.get("dataset"):
            continue
        for u in units:
            if u.dataset == s["dataset"] and s["name"] not in u.metric_values:
                mi = metrics_info.get(s["name"], {})
                rows.append(
                    {
                        "dataset": u.dataset, "method": u.label, "method_name": u.method_name,
                        "config_hash": u.config_hash, "metric": s["name"], "protocol": mi.get("protocol") or "",
                        "value": math.nan, "n": 0, "higher_better": bool(mi.get("higher_better", True)),
                        "standard": bool(mi.get("standard", True)),
                        "standin": bool(methods_info.get(u.label, {}).get("standin", False)),
                        "status": "skipped", "reason": _reason_with_fix(s), "n_inf": 0,
                    }
                )
    for s in skipped:
        if s["kind"] != "method":
            continue
        for dataset in datasets:
            rows.append(
                {
                    "dataset": dataset, "method": s["name"], "method_name": s["name"].split(":")[0],
                    "config_hash": "", "metric": "*", "protocol": "", "value": math.nan, "n": 0,
                    "higher_better": True, "standard": True, "standin": False,
                    "status": "failed" if s.get("failed") else "skipped",
                    "reason": _reason_with_fix(s), "n_inf": 0,
                }
            )
    return pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS])


def conditioned_pairs(labels: list[str], names: dict[str, str]) -> list[tuple[str, str]]:
    """(base label, conditioned label) pairs: a method whose registry entry names its ``base``."""
    pairs = []
    for cond in labels:
        base_name = METHODS.entry(names[cond]).meta.get("base") if names[cond] in METHODS else None
        if not base_name:
            continue
        for base in labels:
            if names[base] == base_name:
                pairs.append((base, cond))
    return pairs


def _zero_embedding(info: dict) -> bool:
    """True when a method's weights include IQP's score embedding as the untrained zero table."""
    return any(w.get("name") == "iqp-embedding" and w.get("standin") for w in info.get("weights", []))


def _failure_reason(unit: Any, metric: str, skipped: list[dict]) -> str:
    """Why a metric has no value for a unit: its per-image errors (count and the first), or its compute error."""
    errors = [r.get("metric_errors", {}).get(metric) for r in unit.per_image]
    errors = [e for e in errors if e]
    if errors:
        return f"failed on {len(errors)} of {len(unit.per_image)} images: {errors[0]}"[:500]
    why = getattr(unit, "metric_errors", {}).get(metric)
    if why:
        return f"failed: {why}"[:500]
    for s in skipped:
        if s.get("kind") == "metric" and s.get("name") == metric and s.get("dataset") in ("", unit.dataset):
            return _reason_with_fix(s)[:500]
    ok = sum(1 for r in unit.per_image if r.get("status") == "ok")
    return "no finite value" + ("" if ok else ": no image was restored (see per_image.parquet errors)")


def build_gains(units: list, metrics_info: dict, methods_info: dict | None = None) -> pd.DataFrame:
    """Per-metric paired deltas (conditioned - base) with a 95% CI, for every conditioned pair.

    ``standard`` is the metric's, ``standin`` is true when either side ran on stand-in weights, and
    ``note`` says when a delta is zero by construction (an untrained zero score embedding).
    """
    methods_info = methods_info or {}
    import pandas as pd

    by_key = {(u.dataset, u.label): u for u in units}
    names = {u.label: u.method_name for u in units}
    rows = []
    for dataset in sorted({u.dataset for u in units}):
        labels = [u.label for u in units if u.dataset == dataset]
        for base, cond in conditioned_pairs(labels, names):
            ub, uc = by_key[(dataset, base)], by_key[(dataset, cond)]
            vb = {r["image"]: r["values"] for r in ub.per_image if r["status"] == "ok"}
            vc = {r["image"]: r["values"] for r in uc.per_image if r["status"] == "ok"}
            common = sorted(set(vb) & set(vc))
            for metric in uc.metric_values:
                mi = metrics_info.get(metric, {})
                deltas = np.array([vc[i].get(metric, np.nan) - vb[i].get(metric, np.nan) for i in common])
                if np.isfinite(deltas).any():
                    mean, lo, hi = mean_ci(deltas)
                    n = int(np.isfinite(deltas).sum())
                else:  # a set-level metric (FID): the difference of the two values
                    mean = uc.metric_values[metric] - ub.metric_values.get(metric, math.nan)
                    lo = hi = math.nan
                    n = len(common)
                ib, ic = methods_info.get(base, {}), methods_info.get(cond, {})
                zero = bool(np.isfinite(deltas).any()) and bool((deltas[np.isfinite(deltas)] == 0).all())
                rows.append(
                    {
                        "dataset": dataset, "base_method": base, "cond_method": cond, "metric": metric,
                        "protocol": mi.get("protocol") or "", "higher_better": bool(mi.get("higher_better", True)),
                        "delta_mean": mean, "ci_low": lo, "ci_high": hi, "n": n,
                        "standard": bool(mi.get("standard", True)),
                        "standin": bool(ib.get("standin", False) or ic.get("standin", False)),
                        "note": ZERO_EMBEDDING_NOTE if zero and _zero_embedding(ic) else "",
                    }
                )
    return pd.DataFrame(rows, columns=[*GAINS_COLUMNS])


def build_per_image(units: list) -> pd.DataFrame:
    import pandas as pd

    metric_names: list[str] = []
    for u in units:
        for m in u.metric_values:
            if m not in metric_names:
                metric_names.append(m)
    rows = []
    for u in units:
        for r in u.per_image:
            row = {
                "dataset": u.dataset, "method": u.label, "config_hash": u.config_hash, "image": r["image"],
                "lq_path": r.get("lq_path"), "gt_path": r.get("gt_path"), "out_path": r.get("out_path"),
                "status": r["status"],
                "error": r.get("error", "") or "; ".join(f"{k}: {v}" for k, v in r.get("metric_errors", {}).items()),
                "conversions": "; ".join(r.get("conversions", ())),
            }
            for m in metric_names:
                row[m] = float(r["values"].get(m, math.nan))
            rows.append(row)
    df = pd.DataFrame(rows, columns=[*PER_IMAGE_COLUMNS, *metric_names])
    if not df.empty:
        df = df.sort_values(["dataset", "method", "image"], kind="stable").reset_index(drop=True)
    return df


def write_run(
    run_dir: Path, cfg: Any, device: Any, skipped: list[dict[str, Any]], units: list,
    methods_info: dict, metrics_info: dict, datasets_info: dict, distributed: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write every result file of the run folder; return (summary, gains) (presenting them is the command's job)."""
    summary = build_summary(units, methods_info, metrics_info, skipped, list(datasets_info))
    gains = build_gains(units, metrics_info, methods_info)
    manifest = build_manifest(cfg, device, skipped, units, methods_info, metrics_info, datasets_info, distributed)
    RunFolder(run_dir).write_run(summary, gains, build_per_image(units), manifest)
    return summary, gains


def build_manifest(
    cfg: Any, device: Any, skipped: list[dict[str, Any]], units: list,
    methods_info: dict, metrics_info: dict, datasets_info: dict, distributed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """manifest.json's content: how the run was made (config, environment, datasets, methods, metrics, skips)."""
    import torch

    return {
        "bfrbench_version": __import__("bench").__version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "packages": package_versions(),
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "seeds": {"run": cfg.seed},
        "distributed": distributed,
        "config": {k: getattr(cfg, k) for k in ("datasets", "methods", "metrics", "batch_size", "dtype", "limit",
                                                 "compile", "channels_last")},
        "datasets": datasets_info,
        "methods": methods_info,
        "metrics": metrics_info,
        "skipped": skipped,
        "units": {
            f"{u.dataset}/{u.label}": {"hash": u.config_hash, "status": u.status, "batches_computed": u.batches_computed,
                                       "seconds": round(u.seconds, 3)}
            for u in units
        },
    }


def _cell(value: float, n: int, n_col: int | None, n_inf: int) -> str:
    text = f"{value:.4g}"
    if n_inf:
        text += f" [+{n_inf} inf]"
    if n != n_col:
        text += f" (n={n})"
    return text


def _column_heads(cells: pd.DataFrame, keys: list[tuple[str, str]]) -> tuple[list[str], list[str], dict]:
    """The header row, the ``n`` row and each column's ``n`` (None when the ranked values' n vary)."""
    col_n: dict[tuple[str, str], int | None] = {}
    heads, n_row = ["rank", "method"], ["", "n"]
    for key in keys:
        col = cells[(cells["metric"] == key[0]) & (cells["protocol"] == key[1])]
        ranked = col[np.isfinite(col["rank"].astype(float))]
        ns = list(dict.fromkeys((ranked if len(ranked) else col)["n"].astype(int)))
        col_n[key] = ns[0] if len(ns) == 1 else None
        first = col.iloc[0]
        heads.append(f"{key[0]}{'↑' if first['higher_better'] else '↓'}" + ("*" if not first["standard"] else ""))
        n_row.append(f"n={col_n[key]}" if col_n[key] is not None else "n varies")
    return heads, n_row, col_n


def _method_row(m: Any, cells: pd.DataFrame, keys: list[tuple[str, str]], col_n: dict, summary: pd.DataFrame,
                notes: set[str], sampling: str | None = None) -> list[str]:
    """One method's row (rank, label, a cell per column); the notes its marks need are added to ``notes``."""
    from bench.engine.ranking import RULE

    rank_text = f"{m.position} ({m.mean_rank:.2f})" if m.position else f"- ({m.n_metrics}/{len(keys)} metrics)"
    if not m.position:
        notes.add("- (k/N metrics): not ranked, values are missing for some metrics" if not m.complete
                  else "-: not ranked, no metric could be compared")
    standin = bool(summary[summary["method"] == m.method]["standin"].astype(bool).any())
    label = (m.method + (f" [{sampling}]" if sampling else "") + (" [stand-in]" if standin else "")
             + (f" [{m.flag}]" if m.flag else ""))
    if m.flag:
        notes.add(f"[missing K of N images]: {RULE}")
    row = [rank_text, label]
    for key in keys:
        v = cells[(cells["method"] == m.method) & (cells["metric"] == key[0]) & (cells["protocol"] == key[1])]
        if not len(v):
            row.append("-")
            continue
        r = v.iloc[0]
        if r["n_inf"]:
            notes.add(f"[+K inf]: {INF_RULE}")
        if r["n"] != col_n[key]:
            notes.add("(n=K): over another number of images than the column's n; compare with care")
        row.append(_cell(float(r["value"]), int(r["n"]), col_n[key], int(r["n_inf"])))
    return row


def _listed(summary: pd.DataFrame, status: str, whole_method: bool, title: str) -> list[str]:
    """The skipped or failed metrics (``whole_method`` False) or methods, one line each with the reason."""
    rows = summary[(summary["status"] == status) & ((summary["metric"] == "*") == whole_method)]
    col = "method" if whole_method else "metric"
    rows = rows[[col, "reason"]].drop_duplicates(col)
    if not len(rows):
        return []
    return [f"\n{title}:", *(f"  {r[col]}: {r.reason}" for _, r in rows.iterrows())]


def sampling_tags(methods: dict[str, Any]) -> dict[str, str]:
    """Per method label, how a stochastic method drew its outputs (``seed 0, 25 steps``): from the ``run_seed``
    (and ``steps``) its manifest record carries; deterministic methods have none."""
    tags = {}
    for label, record in methods.items():
        params = record.get("params", {}) if isinstance(record, dict) else {}
        if "run_seed" in params:
            steps = params.get("steps")
            tags[label] = f"seed {params['run_seed']}" + (f", {steps} step{'' if steps == 1 else 's'}" if steps else "")
    return tags


def format_ranked_tables(summary: pd.DataFrame, per_image: pd.DataFrame | None = None,
                         gains: pd.DataFrame | None = None, sampling: dict[str, str] | None = None) -> str:
    """A plain-text leaderboard per dataset by the one ranking rule (:mod:`bench.engine.ranking`).

    A stochastic method's label carries its seed and steps (``sampling``, from :func:`sampling_tags`).

    Under the header, the ``n`` each column was ranked on; a value over another number of images
    is marked ``(n=K)``, a method missing images ``[missing K of N images]``, infinite per-image
    values counted apart ``[+K inf]`` (see INF_RULE). Methods without every metric follow, unranked.
    """
    from bench.engine.ranking import rank

    lines = []
    notes: set[str] = set()
    ranking = rank(summary, per_image)
    for dataset in ranking.notes:
        cells, methods = ranking.dataset(dataset)
        keys = list(dict.fromkeys(zip(cells["metric"], cells["protocol"])))
        heads, n_row, col_n = _column_heads(cells, keys)
        body = [_method_row(m, cells, keys, col_n, summary, notes, (sampling or {}).get(m.method))
                for m in methods.itertuples(index=False)]
        widths = [max(len(str(x)) for x in col) for col in zip(heads, n_row, *body)]
        lines.append(f"\n== {dataset} ==")
        for row in [heads, n_row, *body]:
            lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
        lines += [f"  {note}" for note in ranking.notes[dataset]]
    lines += sorted(notes)
    lines += _listed(summary, "skipped", False, "skipped metrics")
    lines += _listed(summary, "skipped", True, "skipped methods")
    lines += _listed(summary, "failed", True, "failed methods")
    if (summary["standard"] == False).any():  # noqa: E712
        lines.append("* non-standard protocol (offline stand-in network or data); not comparable with papers")
    lines += format_gains(gains)
    return "\n".join(lines)


def format_gains(gains: pd.DataFrame | None) -> list[str]:
    """gains.csv's rows as console lines (conditioned vs base, delta and its 95% CI)."""
    if gains is None or not len(gains):
        return []
    lines = ["\nconditioning gains (conditioned - base, 95% CI):"]
    for _, r in gains.iterrows():
        flag = (" [stand-in]" if r.standin else "") + ("*" if not r.standard else "")
        note = f"  ({r.note.split(':')[0]})" if isinstance(r.note, str) and r.note else ""
        lines.append(f"  {r.dataset} {r.cond_method} vs {r.base_method}{flag} {r.metric}: {r.delta_mean:+.4g} "
                     f"[{r.ci_low:+.4g}, {r.ci_high:+.4g}]{note}")
    return lines


def write_minimal_index(run_dir: Path, summary: pd.DataFrame) -> Path:
    """A bare index.html (the summary table) for installs without the report's dependencies."""
    from bench.core.atomic import atomic_write_text

    path = RunFolder(run_dir).file(layout.INDEX)
    atomic_write_text(path, _minimal_index(summary))
    return path


def _minimal_index(summary: pd.DataFrame) -> str:
    import html

    return (
        "<!doctype html><meta charset='utf-8'><title>bfrbench run</title><h1>bfrbench run</h1>"
        + summary.to_html(index=False, escape=True)
        .replace("<table", "<table id='summary'")
        + "<p>" + html.escape("Full report: bfrbench report RUN_DIR") + "</p>"
    )
