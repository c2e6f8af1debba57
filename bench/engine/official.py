"""The official-style loop: one image at a time, read from disk, restore, write a PNG, metrics read the PNGs back.

This is what released BFR scripts do; ``bfrbench profile`` times it against the engine on the
same images and reports how far apart their metric values are.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.device import synchronize, to_uint8

Clock = Callable[[], float]

def _read_rgb_tensor(path: Path, size: int) -> torch.Tensor:
    """As the official scripts read: cv2 BGR -> RGB float [0, 1], bilinear resize when needed."""
    import cv2

    from bench.core.imageio import check_bounded

    check_bounded(Path(path).read_bytes(), path)  # the header's size against the pixel cap, before decoding
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        from bench.core.errors import UserError

        raise UserError(f"{path}: cannot be read as an image; check the file or remove it")
    if bgr.shape[:2] != (size, size):
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float().div_(255.0)

def official_style(
    method: torch.nn.Module,
    metrics: dict[str, torch.nn.Module],
    pairs: Sequence[Any],
    out_dir: Path,
    *,
    device: torch.device,
    size: int = 512,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """One image at a time: read, restore (fp32), write PNG; then each metric reads the PNGs back.

    The PNGs are scratch data written the way the official scripts write them (``cv2.imwrite``).
    """
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    method = method.eval().to(device)
    with torch.no_grad():  # untimed warm-up, as a script's model load would be
        method.restore(_read_rgb_tensor(Path(pairs[0].lq_path), size).unsqueeze(0).to(device))
    synchronize(device)
    t0 = clock()
    written: list[Path] = []
    with torch.no_grad():
        for p in pairs:
            x = _read_rgb_tensor(Path(p.lq_path), size).unsqueeze(0).to(device)
            if getattr(method, "stochastic", False):  # the image's own noise, as in the engine's run
                method.bind_noise(method.noise_seed, [p.name])
            y = method.restore(x)
            img = to_uint8(y[0].float()).permute(1, 2, 0).cpu().numpy()
            path = out_dir / f"{p.name}.png"
            cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))
            written.append(path)
    t_restore = clock() - t0
    values: dict[str, list[float]] = {}
    finals: dict[str, float] = {}
    t1 = clock()
    with torch.no_grad():
        for name, m in metrics.items():
            m = m.to(device)
            m.reset()
            per: list[float] = []
            for p, path in zip(pairs, written):
                pred = _read_rgb_tensor(path, size).unsqueeze(0).to(device)
                gt = _read_rgb_tensor(Path(p.gt_path), size).unsqueeze(0).to(device) if m.needs_gt else None
                v = m.update(pred, gt)
                if v is not None:
                    per.append(float(v.reshape(-1)[0]))
            values[name] = per
            finals[name] = float(m.compute())
    synchronize(device)
    t_metrics = clock() - t1
    return {"restore_s": t_restore, "metrics_s": t_metrics, "total_s": t_restore + t_metrics,
            "images": len(written), "per_image": values, "values": finals}
