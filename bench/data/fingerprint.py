"""A test set's content fingerprint: which faces a run scored, independent of folder and order.

The fingerprint is :func:`bench.core.filehash.files_digest` over the sorted ``(relative name,
SHA-256)`` list of the set's LQ files (``lq/NAME``) and GT files (``gt/NAME``): the same files in
any folder and any listing order give the same fingerprint, one changed pixel another. Digests are
cached by ``bench.core.filehash`` (in the process and under ``$BFRBENCH_HOME``), so a set is hashed
once. Where the suite knows a set's published fingerprint (its registry entry's
``published_fingerprint``, and optionally ``published_files``, the per-file table), a different one
is named with the number of files that differ.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.filehash import file_identity, files_digest

#: how many hex digits of a fingerprint tables and messages show
SHORT = 12


@dataclass(frozen=True)
class Fingerprint:
    """A set's fingerprint (64 hex digits) and the ``{lq/NAME or gt/NAME: sha256}`` table it hashes."""

    digest: str
    files: dict[str, str]

    @property
    def short(self) -> str:
        return self.digest[:SHORT]


@dataclass(frozen=True)
class PublishedCheck:
    """How a fingerprint compares with the published one: ``status`` is matches, differs or unknown."""

    status: str
    message: str

    @property
    def differs(self) -> bool:
        return self.status == "differs"


def _relative(path: Path, folder: Path | None) -> str | None:
    if folder is None:
        return None
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(folder)).as_posix()
    except ValueError:
        return None


def set_files(pairs: Iterable[Any], lq_dir: str | os.PathLike[str],
              gt_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """``{lq/NAME or gt/NAME: path}`` of every file the pairs use (a file outside both folders: ``other/NAME``)."""
    lq, gt = Path(lq_dir), Path(gt_dir) if gt_dir is not None else None
    out: dict[str, Path] = {}
    for pair in pairs:
        for path in (pair.lq_path, pair.gt_path):
            if path is None:
                continue
            path = Path(path)
            for prefix, folder in (("lq", lq), ("gt", gt)):
                rel = _relative(path, folder)
                if rel is not None:
                    out[f"{prefix}/{rel}"] = path
                    break
            else:
                out[f"other/{path.name}"] = path
    return out


def fingerprint_files(files: dict[str, Path]) -> Fingerprint:
    """The fingerprint of a ``{relative name: path}`` table (an unreadable file enters as its reason)."""
    table = {name: file_identity(path) for name, path in files.items()}
    return Fingerprint(files_digest(table), table)


def dataset_fingerprint(dataset: Any, pairs: Iterable[Any] | None = None) -> Fingerprint:
    """The fingerprint of ``dataset`` (a :class:`~bench.data.datasets.BenchmarkSet`), or of the ``pairs`` of it a run used."""
    pairs = dataset.pairs() if pairs is None else pairs
    return fingerprint_files(set_files(pairs, dataset.lq_dir, getattr(dataset, "gt_dir", None)))


def files_differing(ours: dict[str, str], published: dict[str, str]) -> int:
    """How many names are missing on one side or hold other bytes."""
    return sum(ours.get(k) != published.get(k) for k in set(ours) | set(published))


def read_published_files(path: str | os.PathLike[str]) -> dict[str, str]:
    """A published per-file table: JSON ``{"files": {lq/NAME: sha256, ...}}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise ValueError(f"{path}: no 'files' table")
    return {str(k): str(v) for k, v in files.items()}


def check_published(title: str, fp: Fingerprint, published: str | None,
                    published_files: dict[str, str] | None = None) -> PublishedCheck:
    """``fp`` against a set's published fingerprint: "matches", "differs" (with how many files) or "unknown"."""
    if published_files is not None and not published:
        published = files_digest(published_files)
    if not published:
        return PublishedCheck("unknown", f"no published fingerprint of {title} is known")
    if fp.digest == published:
        return PublishedCheck("matches", f"the published {title}")
    if published_files is not None:
        n = files_differing(fp.files, published_files)
        detail = f"{n} file{'s' if n != 1 else ''} differ{'s' if n == 1 else ''}"
    else:
        detail = f"fingerprint {fp.short}, published {published[:SHORT]}"
    return PublishedCheck("differs", f"not the published {title}: {detail} (its numbers are not comparable "
                                     "with published ones)")


def check_entry(name: str, fp: Fingerprint) -> PublishedCheck:
    """``fp`` against the published fingerprint the ``DATASETS`` entry ``name`` carries (unknown without one)."""
    from bench.core.registry import DATASETS

    if ":" in name or name not in DATASETS:
        return PublishedCheck("unknown", f"{name} has no published fingerprint")
    meta = DATASETS.entry(name).meta
    files = meta.get("published_files")
    table = read_published_files(files) if isinstance(files, (str, os.PathLike)) else files
    return check_published(str(meta.get("title") or name), fp, meta.get("published_fingerprint"), table)


def describe(name: str) -> str:
    """``bfrbench list``'s fingerprint cell for a registered set: short digest and published match, or "-"."""
    from bench.core.imageio import list_images
    from bench.core.registry import DATASETS

    try:
        dataset = DATASETS.create(name)
        lq_dir = Path(dataset.lq_dir)
        if not lq_dir.is_dir() or not list_images(lq_dir):  # absent (or the demo not built yet): nothing to hash
            return "-"
        fp = dataset_fingerprint(dataset)
    except Exception as exc:  # the listing never breaks on one set
        return f"- ({str(exc)[:80]})"
    check = check_entry(name, fp)
    return fp.short + {"matches": " (the published set)", "differs": f" ({check.message})"}.get(
        check.status, " (no published one known)")


__all__ = ["describe", "Fingerprint", "PublishedCheck", "set_files", "fingerprint_files", "dataset_fingerprint",
           "files_differing", "check_published", "check_entry", "read_published_files"]
