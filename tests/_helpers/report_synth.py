"""Synthetic run folders in the runner's schema, for the report tests.

The numbers are designed so the correct leaderboard differs from the one a direction bug would
give, the worst/best image of some (method, metric) pairs is known by construction, and names,
file names and reasons carry HTML that must show as text.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

EVIL = "<script>alert(1)</script>"
EVIL_IMAGE = '"><img src=x onerror=window.__pwned=1>'
EVIL_REASON = "pyiqa missing <img src=x onerror=window.__pwned=2>"
DS_A = "synth-celeba"
DS_B = "synth-wild"

# dataset A: (psnr up, lpips down, musiq up [non-standard]); fid (down) is set-level
MEANS_A = {
    "codeformer+iqp": {"psnr": 26.0, "lpips": 0.25, "musiq": 70.0, "fid": 45.0},
    "codeformer": {"psnr": 25.0, "lpips": 0.30, "musiq": 65.0, "fid": 50.0},
    EVIL: {"psnr": 20.0, "lpips": 0.20, "musiq": 30.0, "fid": 60.0},
    "lq": {"psnr": 24.0, "lpips": 0.50, "musiq": 20.0, "fid": 90.0},
}
MEANS_B = {"codeformer+iqp": {"musiq": 60.0}, "codeformer": {"musiq": 55.0}, EVIL: {"musiq": 50.0},
           "lq": {"musiq": 40.0}}
#: the correct overall order (mean ranks 1.2, 2.2, 2.8, 3.8); ignoring directions gives 2.0, 2.2, 3.2, 2.6
EXPECTED_ORDER = ["codeformer+iqp", "codeformer", EVIL, "lq"]
METRICS = {
    "psnr": {"protocol": "basicsr-rgb", "higher_better": True, "standard": True, "needs_gt": True},
    "lpips": {"protocol": "lpips-vgg[-1,1]", "higher_better": False, "standard": True, "needs_gt": True},
    "fid": {"protocol": "pytorch-fid-ffhq512", "higher_better": False, "standard": True, "needs_gt": False},
    "musiq": {"protocol": "pyiqa-musiq-koniq-face-crop", "higher_better": True, "standard": False,
              "needs_gt": False},
}
#: per-image extremes planted for codeformer on dataset A
WORST = {("codeformer", "psnr"): "face_002", ("codeformer", "lpips"): "face_001"}
BEST = {("codeformer", "psnr"): "face_004", ("codeformer", "lpips"): "face_005"}

EYES = (136, 200, 376, 280)
MOUTH = (177, 331, 337, 411)


def _chash(method: str) -> str:
    return hashlib.sha256(method.encode()).hexdigest()[:12]


def face_image(seed: int, size: int = 512) -> np.ndarray:
    """RGB uint8: textured grey background, pure red eye band, pure blue mouth band."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    s = size / 512
    x0, y0, x1, y1 = (round(v * s) for v in EYES)
    img[y0:y1, x0:x1] = (230, 20, 20)
    x0, y0, x1, y1 = (round(v * s) for v in MOUTH)
    img[y0:y1, x0:x1] = (20, 20, 230)
    return img


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _per_image_values(means: dict[str, float], method: str, images: list[str], rng) -> dict[str, np.ndarray]:
    n = len(images)
    out = {}
    for metric, mean in means.items():
        if metric == "fid":
            out[metric] = np.full(n, np.nan)
            continue
        scale = 0.5 if metric == "psnr" else (0.01 if metric == "lpips" else 1.0)
        vals = mean + scale * rng.uniform(-1, 1, n)
        key = (method, metric)
        if key in WORST and WORST[key] in images and BEST[key] in images:
            bad = 1 if METRICS[metric]["higher_better"] else -1
            vals[images.index(WORST[key])] = mean - bad * 20 * scale
            vals[images.index(BEST[key])] = mean + bad * 20 * scale
        vals = vals - vals.mean() + mean  # the set mean is exactly the designed value
        out[metric] = vals
    return out


def make_run(root: Path, n_images: int = 6, save_images: bool = True, gains: bool = True,
             profile: bool = True, manifest: bool = True) -> Path:
    """Write a run folder (and its benchmark images) under ``root``; return the run folder."""
    rng = np.random.default_rng(0)
    run = root / "run"
    run.mkdir(parents=True)
    data = root / "data"
    per_image = []
    summary = []
    all_metrics = ["psnr", "lpips", "musiq", "fid"]

    for ds, means, has_gt in ((DS_A, MEANS_A, True), (DS_B, MEANS_B, False)):
        images = [f"face_{i:03d}" for i in range(n_images)]
        if ds == DS_B:
            images[-1] = EVIL_IMAGE
        for i, image in enumerate(images):
            gt = face_image(i)
            lq = cv2.GaussianBlur(gt, (0, 0), 6)
            _write(data / ds / "lq" / f"{image}.png", lq)
            if has_gt:
                _write(data / ds / "gt" / f"{image}.png", gt)
        for method, mvals in means.items():
            vals = _per_image_values(mvals, method, images, rng)
            for i, image in enumerate(images):
                out_rel = None
                if save_images and ds == DS_A:
                    out_rel = f"images/{ds}/{method.replace('/', '_')}/{image}.png"
                    shade = 10 * (list(means).index(method) + 1)
                    _write(run / out_rel, np.clip(face_image(i).astype(int) + shade, 0, 255).astype(np.uint8))
                status, error = "ok", ""
                if ds == DS_B and method == "lq" and i == 0:
                    status, error = "error", "decode failed <b>oops</b>"
                row = {
                    "dataset": ds, "method": method, "config_hash": _chash(method),
                    "image": image, "lq_path": str(data / ds / "lq" / f"{image}.png"),
                    "gt_path": str(data / ds / "gt" / f"{image}.png") if has_gt else None,
                    "out_path": out_rel, "status": status, "error": error,
                }
                for m in all_metrics:
                    row[m] = float(vals[m][i]) if (m in vals and status == "ok") else float("nan")
                per_image.append(row)
            for m in all_metrics:
                meta = METRICS[m]
                if m not in mvals:
                    continue
                ok = [r[m] for r in per_image if r["dataset"] == ds and r["method"] == method and r["status"] == "ok"]
                value = mvals["fid"] if m == "fid" else float(np.mean(ok))
                summary.append({
                    "dataset": ds, "method": method, "method_name": method.split("+")[0],
                    "config_hash": _chash(method), "metric": m, "protocol": meta["protocol"],
                    "value": value, "n": len(ok), "higher_better": meta["higher_better"],
                    "standard": meta["standard"], "standin": method == EVIL, "status": "ok", "reason": "",
                })
        summary.append({
            "dataset": ds, "method": "codeformer", "method_name": "codeformer", "config_hash": "x",
            "metric": "pyiqa:topiq_nr-face", "protocol": "pyiqa", "value": float("nan"), "n": 0,
            "higher_better": True, "standard": True, "standin": False, "status": "skipped", "reason": EVIL_REASON,
        })

    pd.DataFrame(summary).to_csv(run / "summary.csv", index=False)
    pd.DataFrame(per_image).to_parquet(run / "per_image.parquet", index=False)
    if gains:
        pd.DataFrame([
            {"dataset": DS_A, "base_method": "codeformer", "cond_method": "codeformer+iqp", "metric": "psnr",
             "protocol": METRICS["psnr"]["protocol"], "higher_better": True, "delta_mean": 1.0, "ci_low": 0.5,
             "ci_high": 1.5, "n": n_images},
            {"dataset": DS_A, "base_method": "codeformer", "cond_method": "codeformer+iqp", "metric": "lpips",
             "protocol": METRICS["lpips"]["protocol"], "higher_better": False, "delta_mean": -0.05,
             "ci_low": -0.1, "ci_high": 0.02, "n": n_images},
            {"dataset": DS_B, "base_method": "codeformer", "cond_method": "codeformer+iqp", "metric": "musiq",
             "protocol": METRICS["musiq"]["protocol"], "higher_better": True, "delta_mean": -2.0, "ci_low": -3.0,
             "ci_high": -1.0, "n": n_images},
        ]).to_csv(run / "gains.csv", index=False)
    if profile:
        pd.DataFrame([
            {"method": "codeformer", "metric": "", "device": "cuda:0", "dtype": "float16", "batch_size": 8,
             "images_per_s": 41.5, "latency_p50_ms": 190.0, "latency_p95_ms": 210.0, "peak_mem_mb": 2300.0,
             "data_share": 0.1, "busy_share": 0.85},
            {"method": EVIL, "metric": "", "device": "cuda:0", "dtype": "float16", "batch_size": 8,
             "images_per_s": 12.0, "latency_p50_ms": 650.0, "latency_p95_ms": 700.0, "peak_mem_mb": 5100.0,
             "data_share": 0.05, "busy_share": 0.9},
            {"method": "", "metric": "lpips", "device": "cuda:0", "dtype": "float32", "batch_size": 16,
             "images_per_s": 300.0, "latency_p50_ms": 50.0, "latency_p95_ms": 55.0, "peak_mem_mb": 800.0,
             "data_share": 0.3, "busy_share": 0.6},
        ]).to_csv(run / "profile.csv", index=False)
    if manifest:
        qrng = np.random.default_rng(1)
        doc = {
            "bfrbench_version": "0.1.0", "created": "2025-01-02T03:04:05Z", "git_commit": "abc1234",
            "python": "3.11.7", "torch": "2.4.0", "packages": {"numpy": "2.0", "lpips": "0.1.4"},
            "device": "NVIDIA H100 80GB", "seeds": {"global": 0, "degradation": 1234},
            "datasets": {
                DS_A: {"n": n_images, "root": str(data / DS_A), "bad_files": [], "conversions": {}},
                DS_B: {"n": n_images, "root": str(data / DS_B),
                       "bad_files": [{"file": "broken<1>.png", "reason": "truncated PNG <no IEND>"}],
                       "conversions": {"grey.png": ["grey->rgb"]}},
            },
            "methods": {
                m: {"name": m.split("+")[0], "params": {"w": 0.5} if "codeformer" in m else {},
                    "weights": [{"name": f"{m}-weights", "path": f"/weights/{m}.pth", "sha256": "ab" * 32,
                                 "standin": m == EVIL}]}
                for m in MEANS_A
            },
            "metrics": METRICS,
            "skipped": [
                {"kind": "method", "name": "gfpgan", "dataset": "", "reason": "weights missing <gfpgan.pth>",
                 "fix": "bfrbench fetch gfpgan-v1.4"},
                {"kind": "metric", "name": "pyiqa:topiq_nr-face", "dataset": DS_A, "reason": EVIL_REASON,
                 "fix": "pip install pyiqa"},
            ],
            "quality_scores": {DS_B: {m: list(qrng.normal(0.5 + 0.1 * i, 0.1, n_images))
                                      for i, m in enumerate(MEANS_B)}},
        }
        (run / "manifest.json").write_text(json.dumps(doc, indent=2))
    return run
