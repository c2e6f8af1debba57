"""The weights cache: where files live, pinned hashes, verification, quarantine, locks, install.

Where no SHA-256 is published, the hash of the first verified download is pinned in
``<cache>/pins.json`` and enforced afterwards (trust on first use). A file that fails its
check is moved to ``<cache>/quarantine/`` with a note saying why.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.weights.spec import WeightSpec, WeightsVerificationError, get_spec

OFFLINE_ENV = "BFRBENCH_OFFLINE"
PINS_FILE = "pins.json"
QUARANTINE_DIR = "quarantine"
CHUNK = 1 << 16


def cache_dir() -> Path:
    """``$BFRBENCH_HOME/weights`` or the platform cache directory."""
    home = os.environ.get("BFRBENCH_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("bfrbench")) / "weights"
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "bfrbench" / "weights"


def expected_path(name: str) -> Path:
    """Where the managed copy of ``name`` lives in the cache."""
    return cache_dir() / get_spec(name).filename


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def offline_mode(offline: bool | None = None) -> bool:
    """``offline`` if given, else whether ``BFRBENCH_OFFLINE`` is set to a true value."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def log(quiet: bool, msg: str) -> None:
    """A progress line on stderr unless ``quiet``."""
    if not quiet:
        print(f"bfrbench: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------- pins (TOFU hashes)


def pins_path() -> Path:
    """``<cache>/pins.json``: SHA-256 recorded at first download for specs without a published hash."""
    return cache_dir() / PINS_FILE


def load_pins() -> dict[str, dict[str, Any]]:
    """The recorded pins (empty when none); a damaged pins file is an error, not silently reset."""
    path = pins_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the pinned hashes ({exc}); fix or delete the file") from exc
    return data if isinstance(data, dict) else {}


def pin_for(spec: WeightSpec) -> dict[str, Any] | None:
    """The pin recorded for ``spec``'s file, or None (a renamed asset's old pin does not apply)."""
    pin = load_pins().get(spec.name)
    if not pin or pin.get("filename") != spec.filename:
        return None
    return pin


def record_pin(spec: WeightSpec, sha: str, size: int, origin: str) -> None:
    """Pin ``sha`` and ``size`` for ``spec`` in ``pins.json``."""
    from bench.atomic import atomic_write_json

    with file_lock(pins_path().with_suffix(".lock")):
        pins = load_pins()
        pins[spec.name] = {
            "sha256": sha,
            "size": size,
            "filename": spec.filename,
            "origin": origin,
            "pinned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_json(pins_path(), pins)


def expected_sha256(name: str) -> tuple[str | None, str]:
    """The SHA-256 a file must have and where it comes from ("published", "pinned" or "none")."""
    spec = get_spec(name)
    if spec.sha256:
        return spec.sha256, "published"
    pin = pin_for(spec)
    if pin and pin.get("sha256"):
        return str(pin["sha256"]), "pinned"
    return None, "none"


def expected_size(spec: WeightSpec) -> int | None:
    """The published or pinned size of ``spec``'s file, if any."""
    if spec.size:
        return spec.size
    pin = None if spec.sha256 else pin_for(spec)
    size = (pin or {}).get("size")
    return int(size) if size else None


# ----------------------------------------------------------------------------- verification

#: (path, size, mtime_ns) -> sha256 of files already hashed in this process
_HASHED: dict[tuple[str, int, int], str] = {}


def _hash_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def problem(spec: WeightSpec, path: Path, sha: str | None = None) -> str | None:
    """Why ``path`` is not the file ``spec`` describes, or None when it checks out."""
    size = path.stat().st_size
    pin = None if spec.sha256 else pin_for(spec)
    want_size = spec.size or (pin or {}).get("size")
    if want_size and size != want_size:
        what = "truncated" if size < want_size else "larger than expected"
        return f"is {what} ({size:,} bytes, expected {int(want_size):,})"
    want, origin = (spec.sha256, "published") if spec.sha256 else ((pin or {}).get("sha256"), "pinned")
    prefix = str(spec.extra.get("hash_prefix") or "")
    if want or prefix:
        sha = sha or _hash_cached(path)
        if want and sha != want:
            return f"fails its SHA-256 check (got {sha}, {origin} {want})"
        if prefix and not sha.startswith(prefix):
            return f"fails its SHA-256 check (got {sha}, expected a hash starting with {prefix})"
    return None


def verify(name: str, path: str | os.PathLike[str] | None = None) -> str | None:
    """Check a file (default: the cached copy) against the spec; the reason it fails, or None."""
    spec = get_spec(name)
    p = Path(path) if path is not None else expected_path(name)
    if not p.is_file():
        return "not found"
    return problem(spec, p)


def quarantine(path: Path, reason: str, filename: str | None = None) -> Path:
    """Move a bad file out of the cache into ``<cache>/quarantine/`` with a note; returns its new path."""
    qdir = cache_dir() / QUARANTINE_DIR
    qdir.mkdir(parents=True, exist_ok=True)
    name = filename or (path.name[: -len(".part")] if path.name.endswith(".part") else path.name)
    dest = qdir / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
    n = 0
    while dest.exists():  # bounded by the number of files already there
        n += 1
        dest = dest.with_name(f"{dest.name}.{n}")
    os.replace(path, dest)
    (dest.parent / f"{dest.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    return dest


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX flock), so two processes never write one ``.part``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def install(spec: WeightSpec, tmp: Path, target: Path, sha: str, origin: str, quiet: bool) -> Path:
    """Verify the complete temporary file ``tmp``; rename it over ``target`` or quarantine it."""
    pin = pin_for(spec) if not spec.sha256 else None
    why = problem(spec, tmp, sha)
    if why:
        dest = quarantine(tmp, f"{spec.name} from {origin}: {why}", target.name)
        raise WeightsVerificationError(spec.name, target, f"download from {origin} {why}", dest)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    if not spec.sha256 and pin is None:
        record_pin(spec, sha, target.stat().st_size, origin)
        log(quiet, f"{spec.name}: no published SHA-256; pinned {sha} in {pins_path()}")
    return target
