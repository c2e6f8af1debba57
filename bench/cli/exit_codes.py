"""The exit status of every ``bfrbench`` command: one definition, documented in README ("Exit status").

A run always finishes everything it can first; its status then says how complete the result is.
The last two codes are set by :mod:`bench.cli.app` for any command, never by a command itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: every method and metric gave its values (skips and bad input files are listed, not fatal)
OK = 0
#: a method or a metric failed (on some images or on all), after everything else finished
FAILED = 1
#: bad usage or input: a one-line error, nothing run (set by the CLI for user errors)
USAGE = 2
#: nothing was computed: every method or every metric was skipped or failed
NOTHING = 3
#: ``--strict``: something was skipped (a method, a metric, a bad input file)
STRICT = 4
#: an unexpected internal error (a bug): one line naming the log file that holds the traceback
INTERNAL = 70
#: the machine ran out of memory or disk space (one line; the traceback is logged when it can be)
RESOURCES = 71
#: interrupted (Ctrl-C)
INTERRUPTED = 130


@dataclass
class RunStatus:
    """An exit code and the reasons behind it (one short line each)."""

    code: int = OK
    reasons: list[str] = field(default_factory=list)


def _suite_failures(suite_rows: Any) -> list[str]:
    """A suite whose score was not computed, or whose run is not comparable with its protocol (one line each)."""
    from bench.suites.scoring import NOT_COMPARABLE

    if suite_rows is None or suite_rows.empty:
        return []
    rows = suite_rows[suite_rows["metric"].astype(str).str.endswith(":score")]
    out = [f"suite {r['metric']} not computed for {r['method']}: {str(r['reason'])[:160]}"
           for _, r in rows[rows["status"] == "failed"].iterrows()]
    incomparable = rows[rows["reason"].fillna("").astype(str).str.contains(NOT_COMPARABLE)]
    if len(incomparable):
        why = str(incomparable["reason"].iloc[0])
        out.append(why[why.index(NOT_COMPARABLE):][:300])
    return out


def run_status(summary: Any, units: list, strict: bool = False, suite_rows: Any = None) -> RunStatus:
    """The status of a finished run from its summary frame, units and suite rows (see the codes above)."""
    scores = summary
    failed: list[str] = []
    reported: set[tuple[str, str, str]] = set()
    for u in units:
        method_errors = sum(1 for r in u.per_image if r["status"] == "error" and (r.get("retry") or r.get("method_error")))
        if method_errors:
            failed.append(f"method {u.label} failed on {method_errors} image(s) of {u.dataset}")
        for metric, why in getattr(u, "metric_errors", {}).items():
            n = sum(1 for r in u.per_image if metric in r.get("metric_errors", {}))
            failed.append(f"metric {metric} failed on {n} image(s) of {u.dataset} / {u.label} ({why[:120]})")
            reported.add((u.dataset, u.label, metric))
    for _, r in scores[scores["status"] == "failed"].iterrows():
        if r["metric"] == "*":  # the method could not be built (e.g. an unusable --weights file)
            failed.append(f"method {r['method']} failed: {str(r['reason'])[:200]}")
        elif (r["dataset"], r["method"], r["metric"]) not in reported:
            failed.append(f"metric {r['metric']} failed for {r['method']} on {r['dataset']}")
    failed += _suite_failures(suite_rows)
    if scores.empty or not (scores["status"] == "ok").any():
        return RunStatus(NOTHING, ["nothing was computed: every method or metric was skipped or failed"] + failed)
    if failed:
        return RunStatus(FAILED, failed)
    if strict:
        skipped = [f"{r['metric'] if r['metric'] != '*' else 'method'} {r['method']} skipped on {r['dataset']}"
                   for _, r in scores[scores["status"] == "skipped"].iterrows()]
        bad = [f"{len(bad_rows)} bad input file(s) in {u.dataset}" for u in units
               if (bad_rows := [r for r in u.per_image if r["status"] == "error" and not r.get("retry")
                                and not r.get("method_error")])]
        if skipped or bad:
            return RunStatus(STRICT, list(dict.fromkeys(skipped + bad)))
    return RunStatus(OK, [])
