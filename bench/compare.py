"""Paper-table checks: a run's numbers beside a published table, with the table's tolerances.

A table (YAML, built-in ones in :mod:`bench.paper_tables`) names its source, the protocol its
numbers follow, a tolerance per metric (``abs`` in the metric's unit or ``rel`` as a fraction of
the paper's value; an entry may override it) and entries ``{dataset, method, metric, value}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import UserError

TABLES_DIR = Path(__file__).resolve().parent / "paper_tables"
COLUMNS = ["dataset", "method", "metric", "paper", "ours", "diff", "tolerance", "within", "n", "protocol", "table",
           "source"]


@dataclass(frozen=True)
class Tolerance:
    abs: float | None = None
    rel: float | None = None

    def allowed(self, paper: float) -> float:
        """The largest |ours - paper| that counts as reproduced."""
        bounds = [b for b in (self.abs, None if self.rel is None else self.rel * abs(paper)) if b is not None]
        return max(bounds) if bounds else 0.0

    def describe(self) -> str:
        parts = ([f"±{self.abs:g}"] if self.abs is not None else []) + (
            [f"±{self.rel * 100:g}%"] if self.rel is not None else [])
        return " or ".join(parts) or "exact"


@dataclass(frozen=True)
class TableEntry:
    dataset: str
    method: str
    metric: str
    value: float
    tolerance: Tolerance


@dataclass
class PaperTable:
    name: str
    title: str
    source: str
    protocol: str = ""
    entries: list[TableEntry] = field(default_factory=list)


def _tolerance(raw: Any, where: str) -> Tolerance:
    if raw is None:
        return Tolerance()
    if not isinstance(raw, dict) or not set(raw) <= {"abs", "rel"} or not raw:
        raise UserError(f"{where}: a tolerance is {{abs: X}} and/or {{rel: FRACTION}}, got {raw!r}")
    return Tolerance(abs=float(raw["abs"]) if "abs" in raw else None, rel=float(raw["rel"]) if "rel" in raw else None)


def parse_table(data: Any, where: str) -> PaperTable:
    if not isinstance(data, dict) or not data.get("entries"):
        raise UserError(f"{where}: a paper table is a mapping with entries: [{{dataset, method, metric, value}}, ...]")
    if not data.get("source"):
        raise UserError(f"{where}: say where the numbers come from (source: ...)")
    defaults = {str(k): _tolerance(v, f"{where} tolerance.{k}") for k, v in (data.get("tolerance") or {}).items()}
    entries = []
    for i, e in enumerate(data["entries"]):
        if not isinstance(e, dict) or not {"dataset", "method", "metric", "value"} <= set(e):
            raise UserError(f"{where}: entry {i + 1} needs dataset, method, metric and value, got {e!r}")
        tol = _tolerance(e["tolerance"], f"{where} entry {i + 1}") if "tolerance" in e else defaults.get(
            str(e["metric"]), Tolerance())
        entries.append(TableEntry(str(e["dataset"]), str(e["method"]), str(e["metric"]), float(e["value"]), tol))
    return PaperTable(name=str(data.get("name", Path(where).stem)), title=str(data.get("title", "")),
                      source=" ".join(str(data["source"]).split()), protocol=str(data.get("protocol", "")),
                      entries=entries)


def builtin_tables() -> list[str]:
    return sorted(p.stem for p in TABLES_DIR.glob("*.yaml"))


def load_table(name_or_path: str) -> PaperTable:
    """A built-in table by name (``codeformer-paper``) or any table file."""
    from bench.core.options import read_yaml_file

    path = Path(name_or_path).expanduser()
    if not path.is_file():
        path = TABLES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserError(f"paper table {name_or_path!r}: no such file and no built-in table of that name "
                            f"(built-in: {', '.join(builtin_tables())})")
    data = read_yaml_file(path, "table")
    return parse_table(data, str(path))


def compare(summary: Any, table: PaperTable, method_map: dict[str, str] | None = None) -> Any:
    """One row per table entry: paper, ours, diff (ours - paper), tolerance and whether it is within it."""
    import pandas as pd

    method_map = method_map or {}
    scores = summary[(summary["kind"] == "score")] if "kind" in summary else summary
    rows = []
    for e in table.entries:
        label = method_map.get(e.method, e.method)
        hit = scores[(scores["dataset"] == e.dataset) & (scores["method"] == label) & (scores["metric"] == e.metric)]
        ours = float(hit["value"].iloc[0]) if len(hit) else math.nan
        ok = math.isfinite(ours)
        diff = ours - e.value if ok else math.nan
        within = ("yes" if abs(diff) <= e.tolerance.allowed(e.value) + 1e-12 else "no") if ok else "not in run"
        rows.append({
            "dataset": e.dataset, "method": label, "metric": e.metric, "paper": e.value, "ours": ours, "diff": diff,
            "tolerance": e.tolerance.describe(), "within": within,
            "n": int(hit["n"].iloc[0]) if len(hit) else 0,
            "protocol": str(hit["protocol"].iloc[0]) if len(hit) else "", "table": table.name,
            "source": table.source,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def format_comparison(df: Any, table: PaperTable) -> str:
    heads = ["dataset", "method", "metric", "paper", "ours", "diff", "tolerance", "within"]
    body = []
    for r in df.itertuples(index=False):
        body.append([r.dataset, r.method, r.metric, f"{r.paper:.4g}", "-" if math.isnan(r.ours) else f"{r.ours:.4g}",
                     "-" if math.isnan(r.diff) else f"{r.diff:+.4g}", r.tolerance,
                     {"yes": "yes", "no": "NO"}.get(r.within, r.within)])
    widths = [max(len(str(x)) for x in col) for col in zip(heads, *body)]
    lines = [f"{table.title or table.name} — {table.source}"]
    if table.protocol:
        lines.append(f"protocol: {table.protocol}")
    lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in body]
    counts = df["within"].value_counts().to_dict()
    lines.append(f"within tolerance: {counts.get('yes', 0)}, outside: {counts.get('no', 0)}, "
                 f"not in this run: {counts.get('not in run', 0)}")
    return "\n".join(lines)


def write_comparison(run_dir: Path, df: Any) -> Path:
    """comparison.csv in the run folder (rows of earlier tables with another name are kept)."""
    import pandas as pd

    from bench.core.csvsafe import read_frame, write_frame

    path = run_dir / "comparison.csv"
    if path.is_file():
        old = read_frame(path)
        if "table" in old:
            df = pd.concat([old[~old["table"].isin(set(df["table"]))], df], ignore_index=True)
    write_frame(df, path)
    return path


__all__ = ["PaperTable", "TableEntry", "Tolerance", "builtin_tables", "compare", "format_comparison", "load_table",
           "parse_table", "write_comparison", "COLUMNS"]
