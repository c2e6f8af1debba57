"""niqe's device path against the host reference (issue #9): per-image relative difference and seconds per image.

    python scripts/niqe_device_check.py FACES_DIR [--device cuda] [--batch 16] [--out OUT.json]

FACES_DIR holds PNG faces, e.g. ``.gpu_assets/faces`` made by ``scripts/gpu_check.sh --prepare``
(its lq/ and gt/ are both read). Besides the faces it scores degraded and odd-sized versions
(4x4 blocks, 192x288 and 600x500 crops / mirrors) and one flat image. BFRBENCH_HOME must hold
``niqe_pris_params.npz`` (``.gpu_assets/home`` does).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.metrics.niqe import NIQE


def _faces(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(folder.rglob("*.png")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            out[f"{path.parent.name}/{path.stem}"] = np.ascontiguousarray(bgr[:, :, ::-1])
    return out


def _variants(faces: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A few degraded and odd-sized images from the first faces, and a flat one."""
    out = {}
    for name, img in list(faces.items())[:6]:
        h, w = img.shape[:2]
        small = img[: h // 4 * 4, : w // 4 * 4].reshape(h // 4, 4, w // 4, 4, 3).mean((1, 3)).round()
        out[f"{name}_block4"] = np.repeat(np.repeat(small, 4, 0), 4, 1).astype(np.uint8)
        out[f"{name}_192x288"] = np.ascontiguousarray(img[100:292, 100:388])
        out[f"{name}_600x500"] = np.pad(img, ((44, 44), (0, 0), (0, 0)), mode="reflect")[:600, :500]
    out["flat_grey"] = np.full((256, 256, 3), 128, np.uint8)
    return out


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("faces", type=Path)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    dev = torch.device(args.device)
    images = _faces(args.faces)
    images.update(_variants(images))
    ref_metric, dev_metric = NIQE(impl="reference"), NIQE().to(dev)

    by_size: dict[tuple, list[str]] = {}
    for name, img in images.items():
        by_size.setdefault(img.shape, []).append(name)
    ref, got = {}, {}
    t_ref = t_dev = 0.0
    n_timed = 0
    for names in by_size.values():
        for start in range(0, len(names), args.batch):
            chunk = names[start:start + args.batch]
            x = torch.cat([_tensor(images[n]) for n in chunk])
            t0 = time.perf_counter()
            r = ref_metric.score(x)
            t1 = time.perf_counter()
            xd = x.to(dev)
            dev_metric.score(xd)  # warm-up (first call per size builds the tables)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            d = dev_metric.score(xd)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t3 = time.perf_counter()
            if x.shape[-1] == 512 and x.shape[-2] == 512:
                t_ref, t_dev, n_timed = t_ref + t1 - t0, t_dev + t3 - t2, n_timed + len(chunk)
            ref.update(zip(chunk, r.tolist()))
            got.update(zip(chunk, d.cpu().tolist()))
    rel = {n: abs(got[n] - ref[n]) / abs(ref[n]) for n in ref if np.isfinite(ref[n])}
    nan_agree = all(np.isnan(got[n]) for n in ref if not np.isfinite(ref[n]))
    worst = sorted(rel.items(), key=lambda kv: -kv[1])[:5]
    summary = {"device": str(dev), "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
               "images": len(ref), "finite": len(rel), "nan_where_reference_nan": nan_agree,
               "max_rel": max(rel.values()), "over_1e-5": sum(v > 1e-5 for v in rel.values()), "worst": worst,
               "batch": args.batch, "timed_512_images": n_timed,
               "reference_s_per_image": t_ref / max(n_timed, 1), "device_s_per_image": t_dev / max(n_timed, 1)}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "reference": ref, "device": got}, indent=1))


if __name__ == "__main__":
    main()
