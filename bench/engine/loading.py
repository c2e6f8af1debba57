"""Streaming batches of (LQ, GT) uint8 tensors from image pairs; bad files become error rows."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.imageio import ImageReadError, read_image, resize_to


@dataclass
class LoadedBatch:
    names: list[str]
    lq: torch.Tensor  # (B, 3, S, S) uint8
    gt: torch.Tensor | None  # (B, 3, S, S) uint8
    errors: dict[str, str]  # name -> reason, for images that could not be used
    conversions: dict[str, list[str]]
    lq_paths: list[str]
    gt_paths: list[str | None]

    def subset(self, keep: list[int]) -> LoadedBatch:
        """The batch restricted to the images at positions ``keep`` (errors and conversions kept)."""
        return LoadedBatch(
            names=[self.names[i] for i in keep],
            lq=self.lq[keep],
            gt=self.gt[keep] if self.gt is not None else None,
            errors=self.errors,
            conversions=self.conversions,
            lq_paths=[self.lq_paths[i] for i in keep],
            gt_paths=[self.gt_paths[i] for i in keep],
        )


def _load(path: Path, size: int) -> tuple[np.ndarray, list[str]]:
    img = read_image(path)
    conv = list(img.conversions)
    rgb = img.rgb
    if rgb.shape[:2] != (size, size):
        conv.append(f"resized {rgb.shape[1]}x{rgb.shape[0]}->{size}x{size} (bilinear)")
        rgb = resize_to(rgb, size)
    return rgb, conv


class PairDataset(torch.utils.data.Dataset):
    """Decodes one pair per item; never raises for a bad file (it reports the reason instead)."""

    def __init__(self, pairs: Sequence[Any], size: int = 512, need_gt: bool = False) -> None:
        self.pairs = list(pairs)
        self.size = size
        self.need_gt = need_gt

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        pair = self.pairs[i]
        item: dict[str, Any] = {
            "name": pair.name,
            "lq_path": str(pair.lq_path),
            "gt_path": str(pair.gt_path) if pair.gt_path else None,
            "error": None,
            "conversions": [],
        }
        try:
            lq, conv = _load(Path(pair.lq_path), self.size)
            item["conversions"] += [f"lq: {c}" for c in conv]
            item["lq"] = torch.from_numpy(lq).permute(2, 0, 1).contiguous()
            if pair.gt_path is not None:
                gt, conv = _load(Path(pair.gt_path), self.size)
                item["conversions"] += [f"gt: {c}" for c in conv]
                item["gt"] = torch.from_numpy(gt).permute(2, 0, 1).contiguous()
            elif self.need_gt:
                item["error"] = "no ground-truth partner for this LQ image"
        except ImageReadError as exc:
            item["error"] = f"{exc.path}: {exc.reason} ({exc.fix})"
        except Exception as exc:  # never lose the run to one file
            item["error"] = f"{type(exc).__name__}: {exc}"
        return item


def collate_pairs(items: list[dict[str, Any]]) -> LoadedBatch:
    good = [it for it in items if it["error"] is None]
    errors = {it["name"]: it["error"] for it in items if it["error"] is not None}
    has_gt = bool(good) and all("gt" in it for it in good)
    return LoadedBatch(
        names=[it["name"] for it in good],
        lq=torch.stack([it["lq"] for it in good]) if good else torch.empty(0, 3, 0, 0, dtype=torch.uint8),
        gt=torch.stack([it["gt"] for it in good]) if has_gt else None,
        errors=errors,
        conversions={it["name"]: it["conversions"] for it in items if it["conversions"]},
        lq_paths=[it["lq_path"] for it in good],
        gt_paths=[it["gt_path"] for it in good],
    )


def make_loader(
    pairs: Sequence[Any], batch_size: int, workers: int, pin_memory: bool = False, need_gt: bool = False
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        PairDataset(pairs, need_gt=need_gt),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_pairs,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=2 if workers > 0 else None,
    )
