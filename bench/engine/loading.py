"""Streaming batches of (LQ, GT) uint8 tensors from image pairs; bad files become error rows.

The one loader of the engine: a DataLoader with workers sized to the machine and pinned memory
when batches go to a GPU, plus :class:`DecodedCache`, which keeps a decoded set in memory so that
several methods over the same set decode it once per run.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.imageio import ImageReadError, read_image, resize_to


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
        if getattr(pair, "problem", None):
            item["error"] = pair.problem
            return item
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


def default_workers(device_type: str = "cuda") -> int:
    """DataLoader workers for this machine: one per usable core but one (for the main process), at most 8; none
    where the device is the CPU, whose method and metrics already use every core (a loader process only competes
    with them: ``profile --e2e`` of ``classical``, 6 faces on 2 cores, restored in 0.40-0.51 s with none and in
    0.74-0.79 s with one, the decoding it saved 0.06-0.12 s)."""
    if device_type == "cpu":
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(0, min(8, cores - 1))


def make_loader(
    pairs: Sequence[Any], batch_size: int, workers: int | None = None, pin_memory: bool = False,
    need_gt: bool = False, size: int = 512,
) -> torch.utils.data.DataLoader:
    """In-order batches of ``pairs``; ``workers=None`` sizes the worker pool to the machine."""
    workers = default_workers() if workers is None else workers
    return torch.utils.data.DataLoader(
        PairDataset(pairs, size=size, need_gt=need_gt),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_pairs,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=2 if workers > 0 else None,
    )


#: bytes of decoded images the run keeps in memory (BFRBENCH_DECODE_CACHE_MB overrides; 0 turns it off)
DEFAULT_CACHE_MB = 2048


class DecodedCache:
    """Decoded (LQ, GT) uint8 images of one set, kept so the next method over it skips decoding.

    Filled from the batches a loader yields (bad files included, as their error); used only when
    every image a unit needs is held. Stops filling once ``budget_bytes`` would be exceeded.
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        if budget_bytes is None:
            budget_bytes = int(os.environ.get("BFRBENCH_DECODE_CACHE_MB", DEFAULT_CACHE_MB)) * 2**20
        self.budget = int(budget_bytes)
        self.bytes = 0
        self.full = False
        self._items: dict[str, dict[str, Any]] = {}

    @staticmethod
    def key(pair: Any) -> str:
        return f"{pair.name}\0{pair.lq_path}\0{pair.gt_path}"

    def has_all(self, pairs: Sequence[Any]) -> bool:
        return bool(pairs) and all(self.key(p) in self._items for p in pairs)

    def add(self, pairs_by_name: dict[str, Any], batch: LoadedBatch) -> None:
        """Remember every image of ``batch`` (``pairs_by_name`` maps its names to their pairs)."""
        if self.full:
            return
        for i, name in enumerate(batch.names):
            lq = batch.lq[i].clone()
            gt = batch.gt[i].clone() if batch.gt is not None else None
            size = lq.numel() + (gt.numel() if gt is not None else 0)
            if self.bytes + size > self.budget:
                self.full = True
                return
            self.bytes += size
            self._items[self.key(pairs_by_name[name])] = {
                "name": name, "lq": lq, "gt": gt, "error": None, "conversions": batch.conversions.get(name, []),
                "lq_path": batch.lq_paths[i], "gt_path": batch.gt_paths[i],
            }
        for name, reason in batch.errors.items():
            pair = pairs_by_name[name]
            self._items[self.key(pair)] = {
                "name": name, "error": reason, "conversions": batch.conversions.get(name, []),
                "lq_path": str(pair.lq_path), "gt_path": str(pair.gt_path) if pair.gt_path else None,
            }

    def batches(self, pairs: Sequence[Any], batch_size: int, need_gt: bool = False,
                pin_memory: bool = False) -> Iterator[LoadedBatch]:
        """The cached images of ``pairs`` in order, ``batch_size`` at a time (as the loader would yield them)."""
        for start in range(0, len(pairs), batch_size):
            items = []
            for p in pairs[start:start + batch_size]:
                item = dict(self._items[self.key(p)])
                if item["error"] is None and need_gt and item.get("gt") is None:
                    item["error"] = "no ground-truth partner for this LQ image"
                if item.get("gt") is None:
                    item.pop("gt", None)
                items.append(item)
            batch = collate_pairs(items)
            if pin_memory and batch.names:
                batch.lq = batch.lq.pin_memory()
                batch.gt = batch.gt.pin_memory() if batch.gt is not None else None
            yield batch


def iter_batches(
    pairs: Sequence[Any], batch_size: int, workers: int | None = None, pin_memory: bool = False,
    need_gt: bool = False, size: int = 512, cache: DecodedCache | None = None,
) -> Iterator[LoadedBatch]:
    """Batches of ``pairs``: from ``cache`` when it holds them all, else from the loader (filling ``cache``)."""
    if cache is not None and cache.has_all(pairs):
        yield from cache.batches(pairs, batch_size, need_gt, pin_memory)
        return
    by_name = {p.name: p for p in pairs}
    for batch in make_loader(pairs, batch_size, workers, pin_memory, need_gt, size):
        if cache is not None:
            cache.add(by_name, batch)
        yield batch
