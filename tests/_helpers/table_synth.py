"""Small run folders with chosen per-image values, written by the run folder's own writer.

``write_run`` takes per-image values per (dataset, method, metric) and writes, through
:meth:`bench.engine.run_folder.RunFolder.write_run`, summary.csv (means and n from those values, as
the runner computes them), results.json, per_image.parquet and manifest.json.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.engine.run_folder import GAINS_COLUMNS, SUMMARY_COLUMNS, RunFolder

#: metric -> (protocol, higher_better, standard, needs_gt), the report_synth protocols
FACTS = {
    "psnr": ("basicsr-rgb", True, True, True),
    "ssim": ("basicsr-rgb", True, True, True),
    "lpips": ("lpips-vgg[-1,1]", False, True, True),
    "niqe": ("basicsr-niqe", False, True, False),
    "fid": ("pytorch-fid-ffhq512", False, True, False),
}


def write_run(run: Path, values: dict[tuple[str, str, str], np.ndarray], *, set_level: dict | None = None,
              facts: dict | None = None, standin: set[str] = frozenset(), fingerprint: str | None = None) -> Path:
    """A run folder at ``run``: ``values[(dataset, method, metric)]`` are per-image values (image i is
    ``face_{i:03d}``; NaN = missing); ``set_level[(dataset, method, metric)]`` a set-level value (FID)."""
    facts = {**FACTS, **(facts or {})}
    set_level = set_level or {}
    run.mkdir(parents=True)
    metrics = list(dict.fromkeys([k[2] for k in values] + [k[2] for k in set_level]))
    units = list(dict.fromkeys([k[:2] for k in values] + [k[:2] for k in set_level]))
    per_image, summary = [], []
    for ds, method in units:
        n_img = max((len(v) for k, v in values.items() if k[:2] == (ds, method)), default=0)
        for i in range(n_img):
            row = {"dataset": ds, "method": method, "config_hash": f"h-{method}", "image": f"face_{i:03d}",
                   "lq_path": None, "gt_path": None, "out_path": None, "status": "ok", "error": ""}
            for m in metrics:
                v = values.get((ds, method, m))
                row[m] = float(v[i]) if v is not None and i < len(v) else math.nan
            per_image.append(row)
        for m in metrics:
            proto, hb, std, _ = facts[m]
            if (ds, method, m) in values:
                v = np.asarray(values[(ds, method, m)], dtype=float)
                v = v[np.isfinite(v)]
                value, n = float(v.mean()), int(v.size)
            elif (ds, method, m) in set_level:
                value, n = float(set_level[(ds, method, m)]), n_img
            else:
                continue
            summary.append({"dataset": ds, "method": method, "method_name": method.split(":")[0],
                            "config_hash": f"h-{method}", "metric": m, "protocol": proto, "value": value, "n": n,
                            "higher_better": hb, "standard": std, "standin": method in standin, "status": "ok",
                            "reason": "", "kind": "score", "ci_low": math.nan, "ci_high": math.nan, "n_inf": 0})
    manifest = {"bfrbench_version": "0.1.0", "created": "2026-01-01T00:00:00",
                "metrics": {m: {"protocol": facts[m][0], "higher_better": facts[m][1], "standard": facts[m][2],
                                "needs_gt": facts[m][3]} for m in metrics},
                "methods": {m: {"name": m.split(":")[0]} for _, m in units},
                "datasets": {ds: {"n": 0, "dataset_fingerprint": fingerprint} for ds in dict.fromkeys(d for d, _ in units)}}
    RunFolder(run).write_run(pd.DataFrame(summary, columns=[*SUMMARY_COLUMNS]), pd.DataFrame(columns=[*GAINS_COLUMNS]),
                             pd.DataFrame(per_image), manifest)
    return run


def second_run(run: Path, dataset: str = "synth-celeba", n: int = 6, psnr_protocol: str | None = None,
               fingerprint: str | None = None) -> Path:
    """Two more methods (gfpgan, restoreformer) on ``dataset``: psnr, lpips per image and FID."""
    rng = np.random.default_rng(7)
    values, set_level = {}, {}
    for method, psnr, lpips, fid in (("gfpgan", 25.5, 0.28, 48.0), ("restoreformer", 24.5, 0.27, 47.0)):
        values[(dataset, method, "psnr")] = psnr + rng.normal(0, 0.3, n)
        values[(dataset, method, "lpips")] = lpips + rng.normal(0, 0.01, n)
        set_level[(dataset, method, "fid")] = fid
    facts = {"psnr": (psnr_protocol, True, True, True)} if psnr_protocol else None
    return write_run(run, values, set_level=set_level, facts=facts, fingerprint=fingerprint)
