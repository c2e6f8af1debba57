"""Paper-table checks: a run's numbers beside a published table, with the table's tolerances.

A table (YAML, built-in ones in :mod:`bench.paper_tables`) names its source, the protocol its
numbers follow, a tolerance per metric (``abs`` in the metric's unit or ``rel`` as a fraction of
the paper's value; an entry may override it) and entries ``{dataset, method, metric, value}``.
Every malformed field is one UserError naming the table and the entry; a comparison that finds
none of the table's entries in the run is an error, not a pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import UserError

TABLES_DIR = Path(__file__).resolve().parent / "paper_tables"
COLUMNS = ["dataset", "method", "metric", "paper", "ours", "diff", "tolerance", "within", "n", "protocol", "table",
           "source", "note"]
_ENTRY_KEYS = {"dataset", "method", "metric", "value", "tolerance"}


def _number(raw: Any, where: str, what: str, bound: bool = False) -> float:
    """A finite number from a table (a tolerance also >= 0); anything else is one UserError."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise UserError(f"{where}: {what} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except OverflowError as exc:
        raise UserError(f"{where}: {what} {raw!r} is too large for a number") from exc
    if not math.isfinite(value) or (bound and value < 0):
        kind = "a finite number >= 0" if bound else "a finite number"
        raise UserError(f"{where}: {what} must be {kind}, got {raw!r}")
    return value


def _name(raw: Any, where: str, what: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)) or not str(raw).strip():
        raise UserError(f"{where}: {what} must be a name, got {raw!r}")
    return str(raw)


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
        raise UserError(f"{where}: a tolerance is {{abs: X}} and/or {{rel: FRACTION}}, got {raw!r}"[:300])
    return Tolerance(abs=_number(raw["abs"], where, "abs", bound=True) if "abs" in raw else None,
                     rel=_number(raw["rel"], where, "rel", bound=True) if "rel" in raw else None)


def parse_table(data: Any, where: str) -> PaperTable:
    """A paper table from its YAML mapping; every problem is one UserError naming the file and the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list) or not data["entries"]:
        raise UserError(f"{where}: a paper table is a mapping with entries: [{{dataset, method, metric, value}}, ...]")
    if not data.get("source") or not isinstance(data["source"], (str, int, float)):
        raise UserError(f"{where}: say where the numbers come from (source: ...)")
    tolerances = data.get("tolerance") or {}
    if not isinstance(tolerances, dict):
        raise UserError(f"{where}: tolerance is a mapping metric: {{abs: X}} or {{rel: FRACTION}}")
    defaults = {_name(k, where, "a tolerance's metric"): _tolerance(v, f"{where} tolerance.{k}")
                for k, v in tolerances.items()}
    entries = []
    for i, e in enumerate(data["entries"]):
        at = f"{where} entry {i + 1}"
        if not isinstance(e, dict) or not {"dataset", "method", "metric", "value"} <= set(e):
            raise UserError(f"{at}: needs dataset, method, metric and value, got {e!r}"[:300])
        if set(e) - _ENTRY_KEYS:
            raise UserError(f"{at}: unknown keys {sorted(map(str, set(e) - _ENTRY_KEYS))}; known: {sorted(_ENTRY_KEYS)}")
        metric = _name(e["metric"], at, "metric")
        tol = _tolerance(e["tolerance"], at) if "tolerance" in e else defaults.get(metric, Tolerance())
        entries.append(TableEntry(_name(e["dataset"], at, "dataset"), _name(e["method"], at, "method"), metric,
                                  _number(e["value"], at, "value"), tol))
    for key in ("name", "title", "protocol"):
        if key in data and not isinstance(data[key], (str, int, float)):
            raise UserError(f"{where}: {key} must be text, got {data[key]!r}"[:300])
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


def parse_map(items: list[str], flag: str) -> dict[str, str]:
    """Repeated ``PAPER=RUN`` names, taken as text (``yes`` stays ``yes``); the first ``=`` splits."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise UserError(f"{flag} {item!r}: expected PAPER_NAME=RUN_NAME")
        if out.get(key.strip(), value.strip()) != value.strip():
            raise UserError(f"{flag}: {key.strip()!r} is mapped twice ({out[key.strip()]!r} and {value.strip()!r})")
        out[key.strip()] = value.strip()
    return out


def _coverage(summary: Any, per_image: Any) -> dict[tuple[str, str, str], tuple[int, int | None]]:
    """(dataset, method, metric) -> (n, images of the benchmark), from the one ranking's cells."""
    from bench.engine.ranking import rank

    if "higher_better" not in summary or "n" not in summary:
        return {}
    ranking = rank(summary, per_image)
    totals = {(r.dataset, r.method): r.images_total for r in ranking.methods.itertuples()}
    most: dict[tuple[str, str], int] = {}
    for r in ranking.cells.itertuples():
        most[(r.dataset, r.metric)] = max(most.get((r.dataset, r.metric), 0), int(r.reported_n))
    out = {}
    for r in ranking.cells.itertuples():
        total = totals.get((r.dataset, r.method))
        total = int(total) if total is not None and total == total else most[(r.dataset, r.metric)]
        out[(r.dataset, r.method, r.metric)] = (int(r.reported_n), total)
    return out


def compare(summary: Any, table: PaperTable, method_map: dict[str, str] | None = None,
            dataset_map: dict[str, str] | None = None, per_image: Any = None) -> Any:
    """One row per table entry: paper, ours, diff (ours - paper), tolerance, within, and a note on ``n``.

    Raises UserError when none of the table's entries is in the run (a comparison of nothing).
    """
    import pandas as pd

    method_map, dataset_map = method_map or {}, dataset_map or {}
    scores = summary
    coverage = _coverage(scores, per_image)
    rows = []
    for e in table.entries:
        label, dataset = method_map.get(e.method, e.method), dataset_map.get(e.dataset, e.dataset)
        hit = scores[(scores["dataset"] == dataset) & (scores["method"] == label) & (scores["metric"] == e.metric)]
        ours = float(hit["value"].iloc[0]) if len(hit) else math.nan
        ok = math.isfinite(ours)
        diff = ours - e.value if ok else math.nan
        within = ("yes" if abs(diff) <= e.tolerance.allowed(e.value) + 1e-12 else "no") if ok else "not in run"
        n, total = coverage.get((dataset, label, e.metric), (None, None))
        note = f"over {n} of {total} images" if ok and n is not None and total and n < total else ""
        rows.append({
            "dataset": dataset, "method": label, "metric": e.metric, "paper": e.value, "ours": ours, "diff": diff,
            "tolerance": e.tolerance.describe(), "within": within,
            "n": int(hit["n"].iloc[0]) if len(hit) and "n" in hit and hit["n"].iloc[0] == hit["n"].iloc[0] else 0,
            "protocol": str(hit["protocol"].iloc[0]) if len(hit) and "protocol" in hit else "", "table": table.name,
            "source": table.source, "note": note,
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    if not df["within"].isin(["yes", "no"]).any():
        raise UserError(
            f"{table.name}: compared nothing: none of its {len(df)} entries has a value in this run "
            f"(the table has datasets {sorted({e.dataset for e in table.entries})[:5]} and methods "
            f"{sorted({e.method for e in table.entries})[:5]}; the run has datasets "
            f"{sorted(set(scores['dataset']))[:5]} and methods {sorted(set(scores['method']))[:5]})"[:600],
            fix="map the names with --map PAPER_METHOD=RUN_METHOD and --map-dataset TABLE_DATASET=RUN_DATASET, "
                "or run the table's datasets and metrics")
    return df


def format_comparison(df: Any, table: PaperTable) -> str:
    heads = ["dataset", "method", "metric", "paper", "ours", "n", "diff", "tolerance", "within"]
    body = []
    for r in df.itertuples(index=False):
        body.append([r.dataset, r.method, r.metric, f"{r.paper:.4g}", "-" if math.isnan(r.ours) else f"{r.ours:.4g}",
                     "-" if math.isnan(r.ours) else str(int(r.n)),
                     "-" if math.isnan(r.diff) else f"{r.diff:+.4g}", r.tolerance,
                     {"yes": "yes", "no": "NO"}.get(r.within, r.within)])
    notes = "note" in df and df["note"].fillna("").astype(bool).any()
    if notes:
        heads.append("note")
        for row, r in zip(body, df.itertuples(index=False)):
            row.append(r.note or "")
    widths = [max(len(str(x)) for x in col) for col in zip(heads, *body)]
    lines = [f"{table.title or table.name} — {table.source}"]
    if table.protocol:
        lines.append(f"protocol: {table.protocol}")
    lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in body]
    counts = df["within"].value_counts().to_dict()
    lines.append(f"within tolerance: {counts.get('yes', 0)}, outside: {counts.get('no', 0)}, "
                 f"not in this run: {counts.get('not in run', 0)}")
    if notes:
        k = int(df["note"].fillna("").astype(bool).sum())
        lines.append(f"{k} value(s) over fewer images than the benchmark has (note): the paper's are over all of them")
    return "\n".join(lines)


def write_comparison(run_dir: Path, df: Any) -> Path:
    """comparison.csv in the run folder (rows of earlier tables with another name are kept)."""
    from bench.engine.run_folder import RunFolder

    return RunFolder(run_dir).write_comparison(df)


__all__ = ["PaperTable", "TableEntry", "Tolerance", "builtin_tables", "compare", "format_comparison", "load_table",
           "parse_map", "parse_table", "write_comparison", "COLUMNS"]


def dataset_warnings(datasets: dict[str, Any], compared: Any, why: str = "the paper's values are of the published "
                     "set") -> list[str]:
    """One warning per dataset in ``compared`` that the run did not score in its published form: a fingerprint
    other than the published one (known then or now), or a --limit subset; a note where the run recorded none."""
    from bench.core.registry import DATASETS

    out = []
    for name in sorted(set(compared)):
        info = datasets.get(name) or {}
        digest, status = info.get("dataset_fingerprint"), info.get("published_fingerprint")
        published = DATASETS.entry(name).meta.get("published_fingerprint") if ":" not in name and name in DATASETS \
            else None
        if digest and published and digest != published and status != "differs":  # known since the run was made
            status, info = "differs", {**info, "published_note": f"not the published {name}: fingerprint "
                                                                 f"{str(digest)[:12]}, published {published[:12]}"}
        if status in ("differs", "subset"):
            out.append(f"WARNING {name}: {info.get('published_note') or status}; {why}")
        elif not digest:
            out.append(f"note {name}: the run records no dataset fingerprint (made before bfrbench recorded them): "
                       "whether it scored the published images is unknown")
    return out
