"""``bfrbench fetch celeba-test ...``: standard test sets from the Hugging Face hub, verified and unpacked.

Each archive a set's :class:`~bench.data.datasets.DatasetSpec` names (``hub``) is read from
:data:`~bench.data.datasets.HUB_REPO` through ``huggingface_hub`` (``HF_ENDPOINT`` or ``endpoint``
points it elsewhere). The hub states each LFS file's size and SHA-256 (its ETag) and the commit it
served; the archive is downloaded into ``<data root>/.fetch/<sha256>.part`` (an interrupted download
resumes there, under a lock), refused when its SHA-256 or size differs or it exceeds
``$BFRBENCH_MAX_DOWNLOAD_BYTES``, and unpacked with bounds (member count, bytes actually written; no
member may leave the unpack folder, no link) into a temporary folder beside the set. The set appears
at ``<data root>/<set>/{lq,gt}`` by one rename, with ``fetched.json`` recording the repository, commit,
archives and the set's fingerprint. A set no hashed source serves gets its one-line instructions.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bench.core.atomic import atomic_write_json
from bench.core.errors import UserError
from bench.core.imageio import is_image_file
from bench.data.datasets import HUB_REPO, SPECS, BenchmarkSet, DatasetSpec, data_root
from bench.data.fingerprint import dataset_fingerprint
from bench.weights.cache import file_lock, offline_mode
from bench.weights.url import Limits

#: the record a fetched set carries
RECORD = "fetched.json"
#: where partial downloads and unpacking happen, under the data root
WORK_DIR = ".fetch"
#: bounds on an archive: members, and bytes unpacked (a zip bomb stops here, counted as written)
MAX_MEMBERS = 200_000
MAX_UNPACKED_BYTES = 16 << 30
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DatasetFetchError(UserError):
    """A set could not be fetched: the message names the archive, what went wrong and the fix."""


@dataclass(frozen=True)
class HubFile:
    """What the hub states about one archive: where to get it, its SHA-256, size and the commit served."""

    filename: str
    url: str
    sha256: str
    size: int
    commit: str


def fetchable() -> list[str]:
    """Every standard set's name (those with a hub source and those with manual instructions)."""
    return sorted(SPECS)


def manual_instructions(spec: DatasetSpec, root: Path) -> str:
    """The one line telling how to get a set that no hashed source serves."""
    return f"{spec.name}: " + spec.manual.format(lq=root / spec.name / "lq")


def _describe(filename: str, endpoint: str | None, revision: str) -> HubFile:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(HUB_REPO, filename, repo_type="dataset", revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, token=False, endpoint=endpoint)
    except Exception as exc:
        raise DatasetFetchError(f"{HUB_REPO}/{filename}: the hub did not describe it ({type(exc).__name__}: "
                                f"{str(exc)[:200]})", fix="check the network (or HF_ENDPOINT) and run it again") from None
    sha = (meta.etag or "").strip('"').lower()
    if not _SHA256.match(sha) or not meta.size or not meta.commit_hash:
        raise DatasetFetchError(f"{HUB_REPO}/{filename}: the hub states no SHA-256, size or commit for it "
                                f"(etag {meta.etag!r}, size {meta.size!r}); refused unverified",
                                fix="download it by hand and check it, see datasets/README.md")
    return HubFile(filename, meta.location or url, sha, int(meta.size), meta.commit_hash)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(hub: HubFile, work: Path, limits: Limits, quiet: bool = True) -> Path:
    """The verified archive at ``work/<sha256>.zip``; resumes ``work/<sha256>.part`` left by an interrupted run."""
    from huggingface_hub.file_download import http_get

    if hub.size > limits.max_bytes:
        raise DatasetFetchError(f"{hub.filename}: {hub.size:,} bytes is over the download cap of "
                                f"{limits.max_bytes:,} bytes", fix="raise BFRBENCH_MAX_DOWNLOAD_BYTES if it is expected")
    work.mkdir(parents=True, exist_ok=True)
    done, part = work / f"{hub.sha256}.zip", work / f"{hub.sha256}.part"
    with file_lock(work / f"{hub.sha256}.lock"):
        if done.is_file() and done.stat().st_size == hub.size:
            return done
        have = part.stat().st_size if part.is_file() else 0
        if have > hub.size:
            part.unlink()
            have = 0
        if have < hub.size:
            try:
                with open(part, "ab") as fh:
                    http_get(hub.url, fh, resume_size=have, expected_size=hub.size,
                             headers={"Accept-Encoding": "identity"},
                             displayed_filename=hub.filename, tqdm_class=None if not quiet else _Silent)
            except Exception as exc:
                got = part.stat().st_size if part.is_file() else 0
                raise DatasetFetchError(
                    f"{hub.filename}: download stopped at {got:,} of {hub.size:,} bytes ({type(exc).__name__}: "
                    f"{str(exc)[:160]})", fix="run the same command again: it resumes where it stopped") from None
        got = part.stat().st_size
        sha = _sha256(part)
        if got != hub.size or sha != hub.sha256:
            part.unlink()
            raise DatasetFetchError(
                f"{hub.filename}: refused: {got:,} bytes with SHA-256 {sha}, the hub states {hub.size:,} bytes "
                f"with SHA-256 {hub.sha256}; the partial file was deleted",
                fix="run it again; if it repeats, the mirror serves other bytes than the hub states")
        os.replace(part, done)
    return done


class _Silent:
    """A tqdm stand-in that shows nothing (``--quiet``)."""

    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *a: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


def _member_path(name: str, archive: str) -> PurePosixPath:
    """A member's relative path, refused when it is absolute, climbs out or names a drive."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DatasetFetchError(f"{archive}: member {name!r} would land outside the data root; the archive is "
                                "refused and nothing of it was unpacked", fix="get the set from its official source")
    return path


def unpack(archive: Path, dest: Path, label: str) -> None:
    """Unpack the zip ``archive`` into the new folder ``dest``, every member checked before anything is written."""
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DatasetFetchError(f"{label}: not a readable zip archive ({exc})", fix="run the fetch again") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise DatasetFetchError(f"{label}: {len(members):,} members, over the bound of {MAX_MEMBERS:,}; refused")
        plan = []
        for m in members:
            rel = _member_path(m.filename, label)
            if stat.S_ISLNK(m.external_attr >> 16):
                raise DatasetFetchError(f"{label}: member {m.filename!r} is a link; the archive is refused and nothing "
                                        "of it was unpacked", fix="get the set from its official source")
            plan.append((m, rel))
        written = 0
        for m, rel in plan:
            target = dest.joinpath(*rel.parts)
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(target, "xb") as out:
                for block in iter(lambda: src.read(1 << 20), b""):
                    written += len(block)
                    if written > MAX_UNPACKED_BYTES:
                        raise DatasetFetchError(f"{label}: unpacks to more than {MAX_UNPACKED_BYTES:,} bytes; refused")
                    out.write(block)


def image_folder(root: Path, label: str) -> Path:
    """The one folder under ``root`` holding the images (macOS ``__MACOSX`` folders and hidden files skipped)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__MACOSX" and not d.startswith(".")]
        if any(is_image_file(Path(f)) and not f.startswith(".") for f in files):
            found.append(Path(folder))
    if len(found) != 1:
        raise DatasetFetchError(f"{label}: expected one folder of images, found {len(found)} "
                                f"({', '.join(str(f.relative_to(root)) for f in found[:4])})",
                                fix="unpack it by hand into the canonical layout, see datasets/README.md")
    return found[0]


def fetch_set(name: str, *, root: str | os.PathLike[str] | None = None, endpoint: str | None = None,
              revision: str = "main", force: bool = False, offline: bool | None = None, quiet: bool = True) -> Path:
    """Fetch the standard set ``name`` into ``<root>/<name>/{lq,gt}``; its folder (already there: unchanged)."""
    if name not in SPECS:
        raise UserError(f"{name!r} is not a standard test set; `bfrbench fetch --list` shows them")
    spec = SPECS[name]
    base = Path(root) if root is not None else data_root()
    target = base / name
    if not spec.hub:
        raise DatasetFetchError(manual_instructions(spec, base))
    if (target / RECORD).is_file() and not force:
        return target
    if target.exists() and any(target.iterdir()) and not force:
        raise DatasetFetchError(f"{name}: {target} exists and was not made by `bfrbench fetch`; left untouched",
                                fix="move it away or pass --force to replace it with the hub's copy")
    if offline_mode(offline):
        raise DatasetFetchError(f"{name}: not fetched and offline (BFRBENCH_OFFLINE / --offline)",
                                fix=f"run `bfrbench fetch {name}` where the hub can be reached")
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None  # read now: huggingface_hub reads it on import
    limits = Limits.from_env()
    work = base / WORK_DIR
    files = [(_describe(fn, endpoint, revision), side) for fn, side in spec.hub]
    archives = [(download(hub, work, limits, quiet), hub, side) for hub, side in files]
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
    try:
        for archive, hub, side in archives:
            unpacked = staging / f".unpack-{side}"
            unpacked.mkdir()
            unpack(archive, unpacked, hub.filename)
            os.replace(image_folder(unpacked, hub.filename), staging / side)
            shutil.rmtree(unpacked)
        fp = dataset_fingerprint(BenchmarkSet(name, staging / "lq",
                                              staging / "gt" if (staging / "gt").is_dir() else None))
        atomic_write_json(staging / RECORD, {
            "dataset": name, "repo": f"datasets/{HUB_REPO}", "revision": revision,
            "commit": sorted({hub.commit for _, hub, _ in archives}),
            "archives": [{"file": hub.filename, "sha256": hub.sha256, "size": hub.size, "side": side}
                         for _, hub, side in archives],
            "dataset_fingerprint": fp.digest,
        })
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}-old-", dir=base))
            os.replace(target, old / name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for archive, _, _ in archives:
        archive.unlink(missing_ok=True)
    return target


def listing(root: str | os.PathLike[str] | None = None) -> list[tuple[str, str, str]]:
    """``fetch --list``'s rows for the test sets: name, fetched (yes/-), source."""
    base = Path(root) if root is not None else data_root()
    return [(name, "yes" if fetched_record(name, base) else "-",
             f"hf://datasets/{HUB_REPO}: " + ", ".join(f for f, _ in spec.hub) if spec.hub else "by hand (see fetch NAME)")
            for name, spec in sorted(SPECS.items())]


def fetched_record(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """A fetched set's ``fetched.json`` (None when it was not fetched)."""
    path = (Path(root) if root is not None else data_root()) / name / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


__all__ = ["DatasetFetchError", "HubFile", "fetchable", "listing", "fetch_set", "fetched_record", "manual_instructions",
           "download", "unpack", "image_folder"]
