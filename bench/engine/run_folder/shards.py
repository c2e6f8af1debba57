"""A unit's folder: its key (unit.json), one shard per finished batch, and done.json.

A shard is ``torch.save`` of ``{"rows": [...], "states": {metric: {name: tensor}}, "geometry": {...}}``,
read back with ``weights_only=True``. A shard that cannot be read (truncated, foreign, another
format) is no result: :func:`read_shard` answers None and the runner drops it and computes the
batch again. Nothing outside this package opens a shard.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_bytes, atomic_write_json
from bench.engine.run_folder.layout import UNITS, shard_file_name, shard_order

log = logging.getLogger("bfrbench")

UNIT_KEY = "unit.json"
DONE = "done.json"


def shard_paths(unit_dir: Path) -> list[Path]:
    """The unit's shard files, in image order."""
    return sorted(unit_dir.glob("shard_*.pt"), key=lambda p: shard_order(p.name))


def _valid(obj: Any) -> bool:
    return (isinstance(obj, dict) and isinstance(obj.get("rows"), list) and isinstance(obj.get("states"), dict)
            and all(isinstance(r, dict) and isinstance(r.get("image"), str) for r in obj["rows"]))


def read_shard(path: Path) -> dict[str, Any] | None:
    """A shard's content, or None when the file is not a readable shard (truncated, foreign, unsafe)."""
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            pickle.UnpicklingError, UnicodeDecodeError) as exc:
        log.warning("%s: not a readable shard (%s: %s)", path, type(exc).__name__, exc)
        return None
    return obj if _valid(obj) else None


def write_shard(unit_dir: Path, first_index: int, shard: dict[str, Any]) -> str:
    """Write one finished batch's shard atomically; returns its file name."""
    import torch

    buf = io.BytesIO()
    torch.save(shard, buf)
    name = shard_file_name(first_index)
    atomic_write_bytes(unit_dir / name, buf.getvalue())
    return name


def remove_unit_files(paths: list[Path], unit_dir: Path) -> None:
    """Delete shards (and the unit's done mark): the unit is then computed afresh."""
    for path in [*paths, unit_dir / DONE]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def is_done(unit_dir: Path) -> bool:
    return (unit_dir / DONE).exists()


def mark_done(unit_dir: Path, images: int) -> None:
    """The unit is finished: a rerun merges its shards without computing anything."""
    atomic_write_json(unit_dir / DONE, {"finished": _dt.datetime.now().isoformat(), "images": images})


def write_unit_key(unit_dir: Path, key: dict[str, Any]) -> None:
    atomic_write_json(unit_dir / UNIT_KEY, key)


def unit_dirs(run_dir: Path, chash: str) -> list[Path]:
    """The folders of the unit with content hash ``chash``."""
    return sorted((run_dir / UNITS).glob(f"*__{chash}"))


def unit_states(run_dir: Path, chash: str, metric: str) -> Iterator[dict[str, Any]]:
    """Every saved state of ``metric`` in the unit ``chash``, shard by shard (for pooling across units)."""
    for unit_dir in unit_dirs(run_dir, chash):
        for path in shard_paths(unit_dir):
            shard = read_shard(path)
            if shard is None:
                raise ValueError(f"{path}: not a readable shard; rerun `bfrbench run` into this folder to recompute it")
            if metric in shard["states"]:
                yield shard["states"][metric]
