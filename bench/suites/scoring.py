"""A suite's score and identity gate, computed from a finished run folder.

Suite-wide values follow the NTIRE RWFR evaluation (``eval.py``): a per-image metric is the
mean of its per-set means weighted by each set's size in the protocol (``images``); a set-level
metric (FID) is computed once on the outputs of every set pooled together, by merging the
metric's saved states. The gate counts, per method, the images whose gate metric falls under
their set's threshold; an image without a value (missing or failed output) counts as under it,
so leaving images out cannot pass the gate. An entry with more than ``max_below`` such images fails.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.suites.spec import Suite


@dataclass
class GateResult:
    below: int
    max_below: int
    per_dataset: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    #: False when the gate metric gave no value at all (not run: weights or package missing)
    computed: bool = True
    metric: str = ""

    @property
    def passed(self) -> bool:
        return self.computed and self.below <= self.max_below

    def describe(self) -> str:
        if not self.computed:
            return f"NOT COMPUTED: {self.metric} gave no value (see the skipped metrics for the fix)"
        verdict = "PASS" if self.passed else "FAIL"
        parts = ", ".join(f"{d} {n}" for d, n in self.per_dataset.items())
        extra = f"; {self.missing} of them without a value (missing or failed output)" if self.missing else ""
        return f"{verdict}: {self.below} images under their set's threshold (fails above {self.max_below}): {parts}{extra}"


@dataclass
class MethodScore:
    method: str
    values: dict[str, float]
    pooled: dict[str, bool]
    score: float
    gate: GateResult | None
    n: int
    missing: list[str] = field(default_factory=list)
    #: the suite table's rank (0: not ranked) and why not
    position: int = 0
    unranked: str = ""


#: the reason text that marks a suite result as not comparable with its protocol (read by the exit status)
NOT_COMPARABLE = "not comparable"


def comparability(per_image: Any, suite: Suite) -> list[str]:
    """Each suite set whose run has another number of images than the protocol's (empty: comparable)."""
    problems = []
    for d in suite.datasets:
        have = int(per_image.loc[per_image["dataset"] == d.name, "image"].nunique()) if len(per_image) else 0
        if d.images is not None and have != d.images:
            problems.append(f"{d.name}: {have} images, the protocol has {d.images}")
    return problems


def rank_scores(scores: list[MethodScore], suite: Suite, problems: list[str]) -> list[MethodScore]:
    """Rank by the one ranking rule (bench.engine.ranking): only a computed score over the same images ranks.

    A method without a score, one that failed the gate and every method of a run that is not
    comparable with the protocol are listed after, unranked, with the reason.
    """
    import pandas as pd

    from bench.engine.ranking import rank

    for s in scores:
        s.position, s.unranked = 0, ""
        if problems:
            s.unranked = f"{NOT_COMPARABLE} with {suite.tag}: " + "; ".join(problems)
        elif not suite.score:
            s.unranked = "the suite has no score"
        elif not math.isfinite(s.score):
            s.unranked = f"no score: missing {', '.join(s.missing) or 'a value'}"
        elif s.gate is not None and not s.gate.passed:
            s.unranked = "identity gate " + ("not computed" if not s.gate.computed else "failed")
    rankable = [s for s in scores if not s.unranked]
    frame = pd.DataFrame([{"dataset": suite.name, "method": s.method, "metric": "score", "value": s.score, "n": s.n,
                           "higher_better": True} for s in rankable])
    if len(frame):
        ranking = rank(frame)
        position = dict(zip(ranking.methods["method"], ranking.methods["position"]))
        for s in rankable:
            s.position = int(position.get(s.method, 0))
            if not s.position:
                s.unranked = "scored over another number of images than the other methods (see n)"
    return sorted(scores, key=lambda s: (s.position == 0, s.position, scores.index(s)))


def weighted_mean(means: dict[str, float], weights: dict[str, float]) -> float:
    """sum_d w_d * mean_d / sum_d w_d over the sets that have a finite mean (NaN if any set lacks one)."""
    if not means or any(not math.isfinite(v) for v in means.values()):
        return math.nan
    total = sum(weights[d] for d in means)
    return sum(weights[d] * v for d, v in means.items()) / total if total else math.nan


def per_image_suite_value(per_image: Any, method: str, metric: str, suite: Suite) -> float:
    """Set-size-weighted mean of per-set means of a per-image metric (NaN when a set has no value)."""
    rows = per_image[(per_image["method"] == method)]
    sets = [d.name for d in suite.datasets]
    means = {}
    for d in sets:
        v = rows[rows["dataset"] == d][metric].astype(float) if metric in rows else None
        v = v[np.isfinite(v)] if v is not None else []
        means[d] = float(np.mean(v)) if len(v) else math.nan
    counts = {d: float(((rows["dataset"] == d) & (rows["status"] == "ok")).sum()) for d in sets}
    weights = {d: float(suite.weights().get(d) or counts[d]) for d in sets}
    return weighted_mean(means, weights)


def gate(per_image: Any, method: str, suite: Suite) -> GateResult | None:
    """How many of ``method``'s images fall under their set's threshold of the gate metric."""
    if suite.gate is None:
        return None
    rows = per_image[per_image["method"] == method]
    result = GateResult(below=0, max_below=suite.gate.max_below, metric=suite.gate.metric)
    if suite.gate.metric not in rows or not np.isfinite(rows[suite.gate.metric].astype(float)).any():
        result.computed = False
        return result
    for d, threshold in suite.thresholds().items():
        sub = rows[rows["dataset"] == d]
        values = sub[suite.gate.metric].astype(float) if suite.gate.metric in sub else np.full(len(sub), np.nan)
        values = np.asarray(values, dtype=float)
        no_value = ~np.isfinite(values)
        under = int(((values < threshold) & ~no_value).sum() + no_value.sum())
        result.per_dataset[d] = under
        result.below += under
        result.missing += int(no_value.sum())
    return result


def pooled_value(run_dir: Path, summary: Any, method: str, metric: str, suite: Suite) -> float:
    """A set-level metric over every suite set at once: the metric's saved states of all units merged."""
    from bench.core.registry import METRICS
    from bench.engine.run_folder.shards import unit_states

    rows = summary[(summary["method"] == method) & (summary["metric"] == metric)]
    rows = rows[rows["dataset"].isin([d.name for d in suite.datasets])]
    if rows.empty or len(rows) < len(suite.datasets) or (rows["status"] != "ok").any():
        return math.nan
    m = METRICS.create(metric)
    m.reset()
    for chash in rows["config_hash"]:
        for state in unit_states(run_dir, chash, metric):
            m.merge_state(state)
    return float(m.compute())


def score_run(run_dir: Path, summary: Any, per_image: Any, suite: Suite) -> list[MethodScore]:
    """Every method's suite values, score and gate."""
    out = []
    methods = list(dict.fromkeys(summary["method"]))
    variables = dict(suite.score.variables) if suite.score else {}
    formula = suite.score.parsed() if suite.score else None
    for method in methods:
        values, pooled, missing = {}, {}, []
        for var, metric in variables.items():
            col = per_image[per_image["method"] == method][metric] if metric in per_image else None
            is_set_level = col is None or not np.isfinite(col.astype(float)).any()
            if is_set_level:
                try:
                    values[var] = pooled_value(run_dir, summary, method, metric, suite)
                except Exception:  # the metric cannot be rebuilt here (weights gone): no pooled number
                    values[var] = math.nan
                pooled[var] = True
            else:
                values[var] = per_image_suite_value(per_image, method, metric, suite)
                pooled[var] = False
            if not math.isfinite(values[var]):
                missing.append(var)
        score = formula.evaluate(values) if formula else math.nan
        n = int(((per_image["method"] == method) & per_image["dataset"].isin([d.name for d in suite.datasets])
                 & (per_image["status"] == "ok")).sum())  # images with an output: a missing one is not scored
        out.append(MethodScore(method, values, pooled, score, gate(per_image, method, suite), n, missing))
    return out


def suite_rows(scores: list[MethodScore], suite: Suite, summary: Any) -> list[dict[str, Any]]:
    """Summary-like rows (suite.json's ``rows``) for each method's variables, score and gate, labelled with the suite."""
    rows = []
    base = {"dataset": suite.name, "config_hash": "", "standard": True, "standin": False, "n_inf": 0}
    names = dict(zip(summary["method"], summary["method_name"]))
    for s in scores:
        common = dict(base, method=s.method, method_name=names.get(s.method, s.method), n=s.n)
        if suite.score:
            for var, metric in suite.score.variables.items():
                how = "pooled over every set" if s.pooled[var] else "per-set means weighted by set size"
                higher = _higher_better(summary, metric)
                rows.append(dict(common, metric=f"{suite.name}:{var}", protocol=f"{suite.tag}: {metric}, {how}",
                                 value=s.values[var], higher_better=higher,
                                 status="ok" if math.isfinite(s.values[var]) else "failed",
                                 reason="" if math.isfinite(s.values[var]) else f"no value of {metric} on every set"))
            ok = math.isfinite(s.score)
            reason = "" if ok else f"missing {', '.join(s.missing)} (see the skipped metrics)"
            if s.gate is not None and s.gate.computed and not s.gate.passed:
                reason = (reason + "; " if reason else "") + "identity gate failed: not ranked by the challenge"
            if s.unranked.startswith(NOT_COMPARABLE):
                reason = (reason + "; " if reason else "") + s.unranked
            rows.append(dict(common, metric=f"{suite.name}:score", protocol=f"{suite.tag}: {suite.score.label} = "
                             f"{suite.score.formula}", value=s.score, higher_better=True,
                             status="ok" if ok else "failed", reason=reason))
        if s.gate is not None:
            rows.append(dict(common, metric=f"{suite.name}:gate", protocol=f"{suite.tag}: {suite.gate.label} "
                             f"({suite.gate.metric} under the per-set threshold; at most {suite.gate.max_below})",
                             value=float(s.gate.below) if s.gate.computed else math.nan, higher_better=False,
                             status=("ok" if s.gate.passed else "failed") if s.gate.computed else "skipped",
                             reason=s.gate.describe()))
    return rows


def _higher_better(summary: Any, metric: str) -> bool:
    rows = summary[summary["metric"] == metric]
    return bool(rows["higher_better"].iloc[0]) if len(rows) else True


def format_suite_table(scores: list[MethodScore], suite: Suite) -> str:
    """Methods in rank order (see :func:`rank_scores`), with each variable, the score, the gate and n.

    Only a computed score ranks: the others are listed after with ``-`` and the reason.
    """
    if not scores:
        return ""
    variables = list(suite.score.variables) if suite.score else []
    heads = (["rank", "method", *variables] + (["score"] if suite.score else []) + (["gate"] if suite.gate else [])
             + ["n", "not ranked because"])
    body = []
    for s in scores:
        row = [str(s.position) if s.position else "-", s.method]
        row += [f"{s.values[v]:.4f}" if math.isfinite(s.values[v]) else "-" for v in variables]
        if suite.score:
            row.append(f"{s.score:.4f}" if math.isfinite(s.score) else "not computed")
        if suite.gate:
            if not s.gate.computed:
                row.append("not computed")
            elif s.gate.passed:
                row.append(f"pass ({s.gate.below}<={s.gate.max_below})")
            else:
                row.append(f"FAIL ({s.gate.below}>{s.gate.max_below})")
        row += [str(s.n), s.unranked if not s.unranked.startswith(NOT_COMPARABLE) else NOT_COMPARABLE]
        body.append(row)
    if not any(s.unranked for s in scores):
        heads, body = heads[:-1], [r[:-1] for r in body]
    widths = [max(len(x) for x in col) for col in zip(heads, *body)]
    lines = [f"\n== {suite.tag}: score and identity gate ==" if suite.gate else f"\n== {suite.tag} =="]
    lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
    lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(lines)


def with_run_names(suite: Suite) -> Suite:
    """The suite with each dataset under the name its run tables use (a registered set may name itself otherwise)."""
    import dataclasses

    from bench.core import plugins
    from bench.core.registry import DATASETS

    plugins.load_all()
    suite.register_datasets()
    renamed = []
    for d in suite.datasets:
        try:
            name = getattr(DATASETS.create(d.name), "name", d.name)
        except Exception:  # not resolvable here: keep the suite's name
            name = d.name
        renamed.append(dataclasses.replace(d, name=name))
    return dataclasses.replace(suite, datasets=renamed)


def suite_document(suite: Suite, scores: list[MethodScore], summary: Any, problems: list[str]) -> dict[str, Any]:
    """suite.json's content: the suite's facts, its rows (as the report shows them) and each method's result."""
    return {
        "name": suite.name, "title": suite.title, "year": suite.year, "source": suite.source, "path": suite.path,
        "score": None if suite.score is None else {"label": suite.score.label, "formula": suite.score.formula,
                                                   "variables": suite.score.variables},
        "gate": None if suite.gate is None else {"label": suite.gate.label, "metric": suite.gate.metric,
                                                 "max_below": suite.gate.max_below, "thresholds": suite.thresholds()},
        "weights": suite.weights(),
        "comparable": not problems, "not_comparable": problems,
        "rows": suite_rows(scores, suite, summary),
        "results": [{"method": s.method, "values": s.values, "pooled": s.pooled, "score": s.score, "n": s.n,
                     "rank": s.position or None, "not_ranked": s.unranked,
                     "gate": None if s.gate is None else {"below": s.gate.below, "passed": s.gate.passed,
                                                          "computed": s.gate.computed,
                                                          "per_dataset": s.gate.per_dataset, "missing": s.gate.missing}}
                    for s in scores],
    }


def apply_suite(run_dir: Path, suite: Suite, quiet: bool = False) -> dict[str, Any]:
    """Score a finished run folder by ``suite``: write suite.json, print the suite table; returns the document."""
    from bench.core.errors import UserError
    from bench.engine.run_folder import RunFolder

    suite = with_run_names(suite)
    folder = RunFolder(run_dir)
    summary, per_image = folder.summary(), folder.per_image()
    if per_image is None:
        raise UserError(f"{run_dir}: no per_image.parquet; run `bfrbench run` into this folder first")
    problems = comparability(per_image, suite)
    scores = rank_scores(score_run(run_dir, summary, per_image, suite), suite, problems)
    document = suite_document(suite, scores, summary, problems)
    folder.write_suite(document)
    if not quiet:
        print(format_suite_table(scores, suite))
    if problems:  # never only in a file: the console says it, quiet or not
        import sys

        print(f"{suite.tag}: {NOT_COMPARABLE} with the protocol, so nothing is ranked: " + "; ".join(problems),
              file=sys.stderr)
    return document


__all__ = ["GateResult", "MethodScore", "NOT_COMPARABLE", "comparability", "rank_scores", "weighted_mean", "per_image_suite_value", "gate", "pooled_value", "score_run",
           "suite_rows", "suite_document", "format_suite_table", "apply_suite"]
