"""A fully reused rerun builds no network: each method's identity is recorded in the run folder.

After a method is built, ``method_records.json`` records its spec, the :class:`MethodInfo` the unit
keys are made from, its output size, and the size and modification time of every weights file it
read. A rerun with the same spec whose files are unchanged gets a :class:`RecordedMethod` instead
of the network: it answers ``info()`` (so unit keys match) and is built for real only when a unit
has batches left to compute.

"Unchanged" means the same bytes: weights files and a unit's images are known by their SHA-256
(``bench.core.filehash``), never by size and modification time, which a replaced file can share.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.config import MethodSpec, content_hash
from bench.core.filehash import file_digest, file_identity
from methods.base import MethodInfo, WeightsInfo

RECORD = Path("method_records.json")


def _spec_key(spec: MethodSpec) -> list[Any]:
    return [spec.name, [list(p) for p in spec.params], spec.weights, spec.alias]


def _files(info: MethodInfo) -> dict[str, str] | None:
    """The SHA-256 of every weights file ``info`` names; None when one cannot be read."""
    out: dict[str, str] = {}
    for w in info.weights:
        if w.path:
            try:
                out[w.path] = file_digest(w.path)
            except OSError:
                return None
    return out


def data_fingerprint(pairs: Iterable[Any]) -> str:
    """A unit's data: every image's name and the SHA-256 of its LQ and GT files (32 hex digits).

    An unreadable file enters as its reason (it is a bad image of the run), so the fingerprint
    changes when it is mended.
    """
    return content_hash([[p.name] + [file_identity(path) for path in (p.lq_path, p.gt_path) if path is not None]
                         for p in pairs], 32)


class RecordedMethod:
    """What a rerun knows of a method without building it: its info and output size."""

    #: as :class:`methods.base.RestorationMethod`: a recorded method restores, and is bound to no dataset
    reads_outputs = False
    binds_dataset = False

    def __init__(self, spec: MethodSpec, info: MethodInfo, output_size: int | None) -> None:
        self.spec, self._info, self.output_size = spec, info, output_size

    def info(self) -> MethodInfo:
        return self._info


def _read(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded(run_dir: Path, spec: MethodSpec, run_seed: int | None = None) -> RecordedMethod | None:
    """The recorded method for ``spec`` when its record is still true (same spec, same weights files, and for a
    stochastic method, whose record carries the ``run_seed`` its noise was drawn from, the same run seed)."""
    entry = _read(run_dir).get(spec.label)
    if not isinstance(entry, dict) or entry.get("spec") != _spec_key(spec):
        return None
    try:
        info = MethodInfo(name=entry["info"]["name"], params=entry["info"]["params"],
                          weights=[WeightsInfo(**w) for w in entry["info"]["weights"]])
    except (KeyError, TypeError):
        return None
    if _files(info) != entry.get("files"):
        return None
    if run_seed is not None and info.params.get("run_seed", run_seed) != run_seed:
        return None
    return RecordedMethod(spec, info, entry.get("output_size"))


def record(run_dir: Path, spec: MethodSpec, method: Any) -> None:
    """Write (or refresh) ``spec``'s entry for a method that was built."""
    from bench.core.atomic import atomic_write_json

    info = method.info()
    files = _files(info)
    if files is None:
        return
    data = _read(run_dir)
    data[spec.label] = {
        "spec": _spec_key(spec),
        "info": {"name": info.name, "params": info.params, "weights": [dataclasses.asdict(w) for w in info.weights]},
        "output_size": getattr(method, "output_size", None),
        "files": files,
    }
    atomic_write_json(run_dir / RECORD, data)
