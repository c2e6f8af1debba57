"""The weights cache: where files live, pinned hashes, verification, quarantine, locks, install.

Where no SHA-256 is published, the hash of the first verified download is pinned in
``<cache>/pins.json`` and enforced afterwards (trust on first use). A file that fails its
check is moved to ``<cache>/quarantine/`` with a note saying why.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

from bench.core.errors import UserError
from bench.weights.spec import WeightSpec, WeightsVerificationError, get_spec

OFFLINE_ENV = "BFRBENCH_OFFLINE"
#: octal mode of a newly created cache directory (default 0700: private); e.g. 2770 for a group cache
CACHE_MODE_ENV = "BFRBENCH_CACHE_MODE"
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


def cache_mode() -> int:
    """The mode new cache directories get: ``$BFRBENCH_CACHE_MODE`` (octal) or 0o700."""
    raw = os.environ.get(CACHE_MODE_ENV, "").strip()
    if not raw:
        return 0o700
    try:
        mode = int(raw, 8)
    except ValueError:
        raise UserError(f"{CACHE_MODE_ENV}={raw!r} is not an octal mode; use e.g. 700 or 2770") from None
    if not 0 <= mode <= 0o7777:
        raise UserError(f"{CACHE_MODE_ENV}={raw!r} is not a file mode; use e.g. 700 or 2770")
    return mode


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with :func:`cache_mode`; refuse a symlink or non-directory there."""
    if not os.path.lexists(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, cache_mode())
            os.chmod(path, cache_mode())  # mkdir's mode is filtered by the umask
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: the cache folder is a symlink or a file; remove it (or set BFRBENCH_HOME elsewhere)")
    return path


def open_new(path: Path, *, append: bool = False) -> int:
    """A file descriptor for writing ``path`` that never follows a symlink planted there.

    ``append`` reopens an existing regular file of ours (a ``.part`` to resume); otherwise anything
    already at ``path`` is removed first and the file is created exclusively (mode 0600).
    """
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if append:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.getuid():
            raise OSError(errno.EPERM, "not a plain file of this user; refusing to append", str(path))
        return os.open(path, flags | os.O_APPEND)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # removes a planted symlink itself, never its target
    return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)


def is_plain_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (an ``lstat`` check: a symlink is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


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


class PinsFileError(UserError, ValueError):
    """``pins.json`` exists but is not a valid table of pins; nothing is trusted from it."""


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _check_pins(path: Path, data: Any) -> dict[str, dict[str, Any]]:
    fix = "fix the file or delete it (the next `bfrbench fetch NAME` pins each file again)"
    if not isinstance(data, dict):
        raise PinsFileError(f"{path}: expected a JSON object of pins by asset name, got {type(data).__name__}; {fix}")
    for name, pin in data.items():
        ok = (
            isinstance(pin, dict)
            and isinstance(pin.get("sha256"), str) and _HEX64.fullmatch(pin["sha256"])
            and isinstance(pin.get("size"), int) and not isinstance(pin["size"], bool) and pin["size"] > 0
            and isinstance(pin.get("filename"), str) and pin["filename"]
        )
        if not ok:
            raise PinsFileError(
                f"{path}: the pin for {name!r} needs sha256 (64 hex digits), size (bytes > 0) and filename, "
                f"got {pin!r}; {fix}"
            )
    return data


def load_pins() -> dict[str, dict[str, Any]]:
    """The recorded pins (empty when none); a damaged or malformed pins file is an error, never ignored."""
    path = pins_path()
    if not os.path.lexists(path):
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PinsFileError(f"{path}: cannot read the pinned hashes ({exc}); fix or delete the file") from exc
    return _check_pins(path, data)


def pin_for(spec: WeightSpec, ignore_pin: bool = False) -> dict[str, Any] | None:
    """The pin recorded for ``spec``'s file, or None (a renamed asset's old pin does not apply)."""
    if ignore_pin or spec.sha256:
        return None
    pin = load_pins().get(spec.name)
    if not pin or pin.get("filename") != spec.filename:
        return None
    return pin


def record_pin(spec: WeightSpec, sha: str, size: int, origin: str) -> None:
    """Pin ``sha`` and ``size`` for ``spec`` in ``pins.json``."""
    from bench.core.atomic import atomic_write_json

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


def expected_size(spec: WeightSpec, ignore_pin: bool = False) -> int | None:
    """The published or pinned size of ``spec``'s file, if any."""
    if spec.size:
        return spec.size
    pin = pin_for(spec, ignore_pin)
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


def problem(spec: WeightSpec, path: Path, sha: str | None = None, ignore_pin: bool = False) -> str | None:
    """Why ``path`` is not the file ``spec`` describes, or None when it checks out."""
    size = path.stat().st_size
    pin = pin_for(spec, ignore_pin)
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
    qdir = ensure_dir(ensure_dir(cache_dir()) / QUARANTINE_DIR)
    name = filename or (path.name[: -len(".part")] if path.name.endswith(".part") else path.name)
    dest = qdir / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
    n = 0
    while dest.exists():  # bounded by the number of files already there
        n += 1
        dest = dest.with_name(f"{dest.name}.{n}")
    os.replace(path, dest)
    with os.fdopen(open_new(dest.parent / f"{dest.name}.reason.txt"), "w", encoding="utf-8") as fh:
        fh.write(reason + "\n")
    return dest


def file_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive advisory lock (the project's one lock helper, file mode 0600), so two processes never
    write one ``.part``."""
    from bench.core.locks import file_lock as _lock

    ensure_dir(path.parent)
    return _lock(path, mode=0o600)


def install(
    spec: WeightSpec, tmp: Path, target: Path, sha: str, origin: str, quiet: bool, *,
    complete: bool = True, repin: bool = False,
) -> Path:
    """Verify the complete temporary file ``tmp``; rename it over ``target`` or quarantine it.

    A file without a published hash is pinned only when ``complete`` (its stated total length
    arrived); ``repin`` replaces an existing pin instead of checking against it.
    """
    pin = pin_for(spec, ignore_pin=repin)
    if not spec.sha256 and pin is None and not spec.size and not complete:
        tmp.unlink()
        raise WeightsVerificationError(
            spec.name, target, f"download from {origin} did not state its length, so a truncated file cannot be "
            "told apart from a complete one; nothing was pinned (ask the server for Content-Length or add size/sha256 "
            "to the spec)",
        )
    why = problem(spec, tmp, sha, ignore_pin=repin)
    if why:
        dest = quarantine(tmp, f"{spec.name} from {origin}: {why}", target.name)
        if ", pinned " in why:  # fetching again gives the same bytes: say how to accept them, if trusted
            why += (f"; if the source changed the file on purpose and you have checked it, "
                    f"`bfrbench fetch {spec.name} --force --repin` pins the new one")
        raise WeightsVerificationError(spec.name, target, f"download from {origin} {why}", dest)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, cache_mode() & 0o666)  # 0600 by default; group-readable in a group cache
    os.replace(tmp, target)
    if not spec.sha256 and pin is None:
        if repin and pin_for(spec) is not None:
            log(quiet, f"{spec.name}: replacing the pinned SHA-256 (--repin)")
        record_pin(spec, sha, target.stat().st_size, origin)
        log(quiet, f"{spec.name}: no published SHA-256; pinned {sha} in {pins_path()}")
    return target
