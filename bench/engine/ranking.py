"""The one ranking rule of bfrbench: console, report, suites and compare all rank through :func:`rank`.

Per benchmark, methods are compared on the images they all have:

1. A method ranks only when it has a value for every metric of the benchmark; the others are
   listed after, unranked (``- (k/N metrics)``).
2. A per-image metric is ranked on the images every ranked method has a finite value for (the
   common set): each method's value is its mean over those images, paired, and ``n`` is their
   count. When every method has exactly that set, the value is the one in ``summary.csv``.
3. A set-level metric (FID) cannot be recomputed on a common set: it is ranked only when every
   ranked method was scored on the same images; otherwise its column is shown, with each value's
   ``n``, and ranked for nobody.
4. Ranks per metric honour its direction (ties share the average rank); a method's score is its
   mean rank over the ranked metrics, lower is better.
5. A method missing images (a failed or absent output) is ranked on the common set and flagged
   ``missing K of N images``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the rule in one sentence, quoted by the console notes and the report
RULE = ("methods are compared on the images they all have (paired means over the common set, n = its size); "
        "a method missing images is ranked on that set and flagged; a method without every metric is listed "
        "unranked")

CELL_COLUMNS = ["dataset", "method", "metric", "protocol", "higher_better", "standard", "value", "n", "rank",
                "paired", "reported_value", "reported_n", "n_inf"]
METHOD_COLUMNS = ["dataset", "method", "position", "mean_rank", "n_ranked", "n_metrics", "complete", "images",
                  "images_total", "missing", "flag"]


@dataclass
class Ranking:
    """The result of :func:`rank`: one row per (dataset, method, metric) and per (dataset, method)."""

    #: CELL_COLUMNS: the value ranked on with its n, its rank (NaN: not ranked) and the summary's own value
    cells: pd.DataFrame
    #: METHOD_COLUMNS, ranked methods first (position 1..), then the unranked (position 0)
    methods: pd.DataFrame
    #: dataset -> notes on what was ranked how (common set size, unranked columns and why)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def dataset(self, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The cells and the method rows of one benchmark."""
        return self.cells[self.cells["dataset"] == name], self.methods[self.methods["dataset"] == name]


def score_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows a ranking may use: kind ``score``, status ok, a finite value; the last duplicate wins."""
    df = summary
    if "kind" in df:
        df = df[df["kind"].fillna("score") == "score"]
    if "status" in df:
        df = df[df["status"] == "ok"]
    df = df[np.isfinite(df["value"].astype(float))]
    keys = ["dataset", "method", "metric"] + (["protocol"] if "protocol" in df else [])
    return df.drop_duplicates(subset=keys, keep="last")


def _ok_images(per_image: pd.DataFrame | None, dataset: str) -> tuple[dict[str, frozenset[str]], int]:
    """method -> the images it restored (status ok), and how many images the benchmark has."""
    if per_image is None or per_image.empty or "image" not in per_image:
        return {}, 0
    rows = per_image[per_image["dataset"] == dataset]
    ok = rows[rows["status"] == "ok"] if "status" in rows else rows
    sets = {str(m): frozenset(g["image"].astype(str)) for m, g in ok.groupby("method", sort=False)}
    for m in rows["method"].unique():
        sets.setdefault(str(m), frozenset())
    return sets, int(rows["image"].nunique())


def per_image_values(per_image: pd.DataFrame | None, dataset: str, metric: str,
                     methods: list[str]) -> dict[str, pd.Series] | None:
    """method -> per-image values (indexed by image, the last row of a repeated image) of a metric that has
    them; None for a set-level metric."""
    if per_image is None or metric not in per_image:
        return None
    rows = per_image[(per_image["dataset"] == dataset) & per_image["method"].isin(methods)]
    if "status" in rows:
        rows = rows[rows["status"] == "ok"]
    values = rows[metric].astype(float)
    if not np.isfinite(values.to_numpy()).any() and not np.isinf(values.to_numpy()).any():
        return None
    out = {}
    for m in methods:
        sub = rows[rows["method"] == m]
        values = sub.set_index(sub["image"].astype(str))[metric].astype(float)
        out[m] = values[~values.index.duplicated(keep="last")]
    return out


def common_images(values: dict[str, pd.Series]) -> frozenset[str]:
    """The images every method has a finite value for (the set a per-image metric is ranked on)."""
    finite = [frozenset(s.index[np.isfinite(s.to_numpy())]) for s in values.values()]
    return frozenset.intersection(*finite) if finite else frozenset()


def _rank_values(values: dict[str, float], higher_better: bool) -> dict[str, float]:
    """1 = best, ties share the average rank."""
    import pandas as pd

    s = pd.Series(values, dtype=float)
    return s.rank(ascending=not higher_better, method="average").to_dict()


def _rank_dataset(scores: pd.DataFrame, per_image: pd.DataFrame | None, dataset: str,
                  cells: list[dict], methods_out: list[dict], notes: list[str]) -> None:
    grp = scores[scores["dataset"] == dataset]
    keys = list(dict.fromkeys(zip(grp["metric"], grp["protocol"])))
    protocols_of: dict[str, int] = {}
    for metric, _ in keys:
        protocols_of[metric] = protocols_of.get(metric, 0) + 1
    methods = list(dict.fromkeys(grp["method"]))
    have = {m: set(zip(grp[grp["method"] == m]["metric"], grp[grp["method"] == m]["protocol"])) for m in methods}
    complete = [m for m in methods if have[m] >= set(keys)]
    ok_sets, total = _ok_images(per_image, dataset)
    ranks: dict[str, dict[tuple[str, str], float]] = {m: {} for m in methods}
    for key in keys:
        metric, protocol = key
        rows = grp[(grp["metric"] == metric) & (grp["protocol"] == protocol)].set_index("method")
        higher = bool(rows["higher_better"].iloc[0])
        shown: dict[str, tuple[float, int, bool]] = {
            m: (float(r["value"]), int(r["n"]) if not _nan(r.get("n")) else 0, False) for m, r in rows.iterrows()}
        per = per_image_values(per_image, dataset, metric, complete) if protocols_of[metric] == 1 else None
        rankable: bool
        if per is not None and complete:
            finite = {m: frozenset(s.index[np.isfinite(s.to_numpy())]) for m, s in per.items()}
            common = common_images(per)
            if all(f == common for f in finite.values()):
                rankable = bool(common) or all(shown[m][1] == shown[complete[0]][1] for m in complete)
            else:
                dropped = len(frozenset.union(*finite.values()) - common)
                if common:
                    shown.update({m: (float(per[m].loc[sorted(common)].mean()), len(common), True) for m in complete})
                    notes.append(f"{metric}: ranked on the {len(common)} images every ranked method has a finite "
                                 f"value for ({dropped} left out)")
                    rankable = True
                else:
                    notes.append(f"{metric}: not ranked: no image has a value for every method")
                    rankable = False
        else:  # a set-level metric (or no per-image table): comparable only over one image set
            same_sets = len({ok_sets.get(m) for m in complete}) <= 1 if ok_sets else True
            same_n = len({shown[m][1] for m in complete}) <= 1
            rankable = same_sets and same_n
            if complete and not rankable:
                notes.append(f"{metric}: not ranked: a set-level value over different images cannot be paired "
                             "(see each value's n)")
        if rankable and complete:
            for m, r in _rank_values({m: shown[m][0] for m in complete}, higher).items():
                ranks[m][key] = r
        for m, r in rows.iterrows():
            value, n, paired = shown[m]
            cells.append({
                "dataset": dataset, "method": m, "metric": metric, "protocol": protocol, "higher_better": higher,
                "standard": bool(r["standard"]) if "standard" in r and not _nan(r["standard"]) else True,
                "value": value, "n": n, "rank": ranks[m].get(key, math.nan), "paired": paired,
                "reported_value": float(r["value"]), "reported_n": int(r["n"]) if not _nan(r.get("n")) else 0,
                "n_inf": int(r["n_inf"]) if "n_inf" in r and not _nan(r["n_inf"]) else 0,
            })
    mean_rank = {m: float(np.mean(list(ranks[m].values()))) for m in complete if ranks[m]}
    ordered = sorted(mean_rank, key=lambda m: (mean_rank[m], methods.index(m)))
    for pos, m in enumerate(ordered + [m for m in methods if m not in mean_rank], 1):
        images = len(ok_sets[m]) if m in ok_sets else None
        missing = total - images if images is not None and total else 0
        flag = f"missing {missing} of {total} images" if missing else ""
        methods_out.append({
            "dataset": dataset, "method": m, "position": pos if m in mean_rank else 0,
            "mean_rank": mean_rank.get(m, math.nan), "n_ranked": len(ranks[m]),
            "n_metrics": len(have[m] & set(keys)), "complete": m in complete,
            "images": images, "images_total": total or None, "missing": missing, "flag": flag,
        })


def _nan(v: object) -> bool:
    try:
        return v is None or math.isnan(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def rank(summary: pd.DataFrame, per_image: pd.DataFrame | None = None) -> Ranking:
    """Rank the methods of every benchmark of ``summary`` by the rule of this module.

    ``summary``: summary.csv rows (dataset, method, metric, value, n, higher_better; protocol,
    standard, n_inf, kind and status when present). ``per_image``: per_image.parquet (dataset,
    method, image, status, one column per metric), which pairs the values; without it values are
    ranked only where every method has the same ``n``.
    """
    import pandas as pd

    scores = score_rows(summary).copy()
    if "protocol" not in scores:
        scores["protocol"] = ""
    scores["protocol"] = scores["protocol"].fillna("").astype(str)
    if "n" not in scores:
        scores["n"] = math.nan
    cells: list[dict] = []
    methods: list[dict] = []
    notes: dict[str, list[str]] = {}
    for dataset in dict.fromkeys(scores["dataset"]):
        notes[dataset] = []
        _rank_dataset(scores, per_image, dataset, cells, methods, notes[dataset])
    return Ranking(pd.DataFrame(cells, columns=CELL_COLUMNS), pd.DataFrame(methods, columns=METHOD_COLUMNS), notes)


__all__ = ["RULE", "Ranking", "rank", "score_rows", "per_image_values", "common_images", "CELL_COLUMNS", "METHOD_COLUMNS"]
