"""Training data: a folder of aligned HQ faces + a per-image quality score CSV, degraded on the fly.

Every sample is a pure function of (seed, step, slot): the epoch permutation comes from
``rng_for(seed, "perm:<epoch>")`` and each sample's flip and degradation from
``rng_for(seed, "sample:<step>:<slot>")``. Training that stops and resumes therefore sees
exactly the batches an uninterrupted run sees, with no sampler state to save.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from bench.core.csvsafe import restore
from bench.core.errors import UserError


# -- scores -----------------------------------------------------------------------------
def read_scores(path: str | os.PathLike[str], column: str = "score") -> dict[str, float]:
    """Image name -> score from a score CSV (``bfrbench score-dataset`` output: image, score, ...)."""
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            if "image" not in fields or column not in fields:
                raise UserError(
                    f"{p}: a score CSV needs columns 'image' and {column!r} (has {fields}); "
                    "write one with `bfrbench score-dataset DIR --iqa NAME --out scores.csv`"
                )
            out: dict[str, float] = {}
            for row in reader:
                try:
                    out[Path(restore(row["image"])).name] = float(row[column])
                except ValueError as exc:
                    raise UserError(f"{p}: row for {row['image']!r} has a non-numeric {column} ({row[column]!r})") from exc
    except OSError as exc:
        raise UserError(f"{p}: cannot read the score CSV ({exc.strerror or exc}); check data.scores in the config") from exc
    return out


# -- the dataset --------------------------------------------------------------------------
@dataclass
class DataConfig:
    """The ``data:`` section of a training config."""

    root: str = ""
    scores: str | None = None
    score_column: str = "score"
    #: score given to images missing from the CSV; None makes a missing score an error
    default_score: float | None = None
    size: int = 512
    #: side at which degradation is applied (the presets are defined for 512 faces)
    degrade_size: int | None = None
    degradation: str = "codeformer-large"
    #: stage 3: the small degradation (CodeFormer stage III), the large one kept as ``lq_large``
    small_degradation: str | None = None
    hflip: bool = True
    batch_size: int = 4
    #: training on the clean image itself (stage 1 VQGAN): no LQ made
    degrade: bool = True
    #: keep decoded faces in memory (None: only when the set fits in 2 GiB)
    cache_images: bool | None = None
    #: background workers building batches (0: in the training process)
    num_workers: int = 0
    #: the last N images (name order) are held out: never trained on, evaluated with ``eval.root: holdout``
    holdout: int = 0
    #: which images of the folder this set uses: ``train`` (all but the held-out ones) or ``holdout``
    split: str = "train"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DataConfig:
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown data option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def held_out_split(paths: list[Path], holdout: int, split: str, root: Path) -> list[Path]:
    """The training or held-out part of a folder: the last ``holdout`` images (name order) are held out."""
    if split not in ("train", "holdout"):
        raise UserError(f"data split {split!r}: use train or holdout")
    if holdout <= 0:
        if split == "holdout":
            raise UserError("eval.root 'holdout' needs data.holdout: N (images kept out of training)")
        return paths
    if holdout >= len(paths):
        raise UserError(f"data.holdout {holdout}: {root} has only {len(paths)} images; hold out fewer")
    return paths[-holdout:] if split == "holdout" else paths[:-holdout]


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> (3, H, W) float in [-1, 1] (the networks' range)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(127.5).sub(1.0)


class FaceTrainSet:
    """Aligned HQ faces from a folder with their quality scores; LQ made on the fly."""

    def __init__(self, cfg: DataConfig, seed: int = 0, need_scores: bool = True) -> None:
        from bench.core.imageio import list_images, read_image

        self.cfg, self.seed = cfg, int(seed)
        root = Path(cfg.root).expanduser()
        if not root.is_dir():
            raise UserError(f"training data folder {root} does not exist; set data.root to a folder of aligned faces")
        paths = list_images(root)
        if not paths:
            raise UserError(f"{root} holds no images; set data.root to a folder of aligned HQ faces (PNG/JPEG)")
        paths = held_out_split(sorted(paths, key=lambda p: p.name), int(cfg.holdout), cfg.split, root)
        scores = read_scores(cfg.scores, cfg.score_column) if cfg.scores else {}
        if need_scores and not scores and cfg.default_score is None:
            raise UserError(
                "this stage needs a quality score per training image: set data.scores to a CSV from "
                "`bfrbench score-dataset` (or data.default_score)"
            )
        self.paths: list[Path] = list(paths)
        self.names = [p.name for p in paths]
        self.scores: list[float] = []
        for p in paths:
            s = scores.get(p.name, cfg.default_score)
            if s is None and not need_scores:
                s = float("nan")  # not used by this stage
            elif s is None:
                raise UserError(f"{p}: no score in {cfg.scores}; score the folder again or set data.default_score")
            self.scores.append(float(s))
        dsize = cfg.degrade_size or cfg.size
        cache = cfg.cache_images
        if cache is None:  # keep small sets in memory; stream large ones (FFHQ-70k) from disk
            cache = len(paths) * dsize * dsize * 3 <= 2 << 30
        self._cache: dict[int, np.ndarray] | None = {} if cache else None
        self._read = read_image
        from bench.data.degrade import degrade, get_preset, rng_for

        for preset in {cfg.degradation, cfg.small_degradation} - {None}:
            try:
                get_preset(preset)
            except ValueError as exc:
                raise UserError(f"data.degradation: {exc}") from exc
        self._degrade, self._rng_for = degrade, rng_for

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> np.ndarray:
        """The HQ face at the degradation size, uint8 HxWx3 (cached when the set is small)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        rgb = self._read(self.paths[index]).rgb
        dsize = self.cfg.degrade_size or self.cfg.size
        if rgb.shape[:2] != (dsize, dsize):
            interp = cv2.INTER_AREA if rgb.shape[0] > dsize else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (dsize, dsize), interpolation=interp)
        if self._cache is not None:
            self._cache[index] = rgb
        return rgb

    def _resize(self, rgb: np.ndarray) -> np.ndarray:
        s = self.cfg.size
        if rgb.shape[:2] == (s, s):
            return rgb
        interp = cv2.INTER_AREA if rgb.shape[0] > s else cv2.INTER_LINEAR
        return cv2.resize(rgb, (s, s), interpolation=interp)

    def indices(self, step: int) -> list[int]:
        """Image indices of the batch for a (0-based) step: epoch-wise permutations, no repeats within an epoch."""
        n, b = len(self), self.cfg.batch_size
        out = []
        for slot in range(b):
            k = step * b + slot
            epoch, pos = divmod(k, n)
            perm = self._rng_for(self.seed, f"perm:{epoch}").permutation(n)
            out.append(int(perm[pos]))
        return out

    def sample(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        """One training sample: gt / lq (/ lq_large) as (3, S, S) in [-1, 1], the score and the name."""
        hq = self.image(index)
        if self.cfg.hflip and rng.random() < 0.5:
            hq = np.ascontiguousarray(hq[:, ::-1])
        item: dict[str, Any] = {"gt": _to_tensor(self._resize(hq)), "score": self.scores[index], "name": self.names[index]}
        if self.cfg.degrade:
            main = self.cfg.small_degradation or self.cfg.degradation
            item["lq"] = _to_tensor(self._resize(self._degrade(hq, main, rng)))
            if self.cfg.small_degradation:
                item["lq_large"] = _to_tensor(self._resize(self._degrade(hq, self.cfg.degradation, rng)))
        return item

    def fixed_batches(self, batch_size: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Every image once, in name order, each degraded with its own fixed rng: a held-out evaluation set."""
        n = len(self) if limit is None else min(limit, len(self))
        items = [self.sample(i, self._rng_for(self.seed, f"eval:{self.names[i]}")) for i in range(n)]
        return [_stack(items[k : k + batch_size]) for k in range(0, n, batch_size)]

    def batch(self, step: int) -> dict[str, Any]:
        """The batch of a (0-based) step, stacked: a pure function of (seed, step)."""
        items = [self.sample(i, self._rng_for(self.seed, f"sample:{step}:{slot}")) for slot, i in enumerate(self.indices(step))]
        return _stack(items)


def _stack(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": [it["name"] for it in items], "score": torch.tensor([it["score"] for it in items])}
    for key in ("gt", "lq", "lq_large"):
        if key in items[0]:
            out[key] = torch.stack([it[key] for it in items])
    return out


class StepBatches(torch.utils.data.Dataset):
    """Batches of steps ``start .. total-1`` as a map-style dataset, for a DataLoader with workers."""

    def __init__(self, data: FaceTrainSet, start: int, total: int) -> None:
        self.data, self.start, self.total = data, int(start), int(total)

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __getitem__(self, k: int) -> dict[str, Any]:
        return self.data.batch(self.start + k)


def iterate_batches(data: FaceTrainSet, start: int, total: int, num_workers: int = 0):
    """Yield the batches of steps start..total-1 in order (workers prefetch; order and content are fixed)."""
    if num_workers <= 0:
        for step in range(start, total):
            yield data.batch(step)
        return
    loader = torch.utils.data.DataLoader(
        StepBatches(data, start, total), batch_size=None, shuffle=False, num_workers=num_workers,
        persistent_workers=False, prefetch_factor=4,
    )
    yield from loader
