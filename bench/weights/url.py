"""Bounded HTTP(S) downloads into the cache.

Resumable (HTTP Range on a ``.part`` file kept between attempts), size- and SHA-256-checked,
renamed into the cache only once verified. Every download is bounded: never more bytes than the
expected size (or a hard cap when the size is unknown; an oversized file is deleted), an overall
deadline, and a minimum transfer rate, so neither an endless nor a dripping response can hold the
process. A file is pinned only when the length the server stated has arrived.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UserError
from bench.core.progress import on_terminal
from bench.weights.cache import (
    CHUNK,
    ensure_dir,
    expected_size,
    install,
    is_plain_file,
    log,
    open_new,
    problem,
    sha256_file,
)
from bench.weights.spec import MissingWeightsError, WeightSpec

MAX_BYTES_ENV = "BFRBENCH_MAX_DOWNLOAD_BYTES"
DEADLINE_ENV = "BFRBENCH_DOWNLOAD_DEADLINE"
#: the cap for a file of unknown size (the largest known checkpoint is 0.55 GB)
DEFAULT_MAX_BYTES = 4 << 30


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise UserError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class Limits:
    """Bounds on one download: size cap, overall deadline, minimum rate, per-read timeout."""

    #: bytes allowed when neither the spec nor a pin gives the size
    max_bytes: int = DEFAULT_MAX_BYTES
    #: wall-clock seconds for the whole download, all retries included
    deadline: float = 4 * 3600.0
    #: bytes per second the transfer must average over each ``rate_window``
    min_rate: float = 8 * 1024.0
    rate_window: float = 60.0
    #: seconds one read may wait for data
    timeout: float = 60.0

    @classmethod
    def from_env(cls, default_max_bytes: int = DEFAULT_MAX_BYTES, **overrides: float | None) -> Limits:
        """Defaults (``default_max_bytes`` for the size cap), then ``$BFRBENCH_MAX_DOWNLOAD_BYTES`` /
        ``$BFRBENCH_DOWNLOAD_DEADLINE``, then ``overrides``."""
        base = cls(
            max_bytes=int(_env_number(MAX_BYTES_ENV, default_max_bytes)),
            deadline=_env_number(DEADLINE_ENV, cls.deadline),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**base.__dict__, **given})


class _Interrupted(Exception):
    """The server closed the connection before the promised bytes arrived."""


class _TooLarge(Exception):
    """The response is (or would become) larger than the file can be; the partial file was deleted."""


class _TooSlow(Exception):
    """The transfer fell below the minimum rate."""


class _DeadlineExceeded(Exception):
    """The overall deadline passed."""


class _SizeMismatch(Exception):
    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        return None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def _part_size(part: Path) -> int:
    """Bytes in our ``.part`` file; anything else planted there (a symlink, a folder) is removed."""
    if is_plain_file(part):
        return part.stat().st_size
    if os.path.lexists(part):
        if os.path.isdir(part) and not os.path.islink(part):
            raise OSError(f"{part} is a folder; remove it")
        os.unlink(part)
    return 0


def _download_once(
    url: str, part: Path, *, limits: Limits, deadline: float, quiet: bool, desc: str, want_size: int | None,
) -> int | None:
    """One HTTP request appending to ``part``; returns the total size the server stated (or None)."""
    import urllib.request

    from bench import __version__

    have = _part_size(part)
    headers = {"User-Agent": f"bfrbench/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    left = deadline - time.monotonic()
    if left <= 0:
        raise _DeadlineExceeded()
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=min(limits.timeout, left)) as resp:
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        if resp.status == 206:
            rng = _content_range(resp.headers.get("Content-Range"))
            if rng is None or rng[0] != have:
                part.unlink()  # the server does not continue where we stopped: start over
                raise _Interrupted(f"server answered the range request with {resp.headers.get('Content-Range')!r}")
            total, append = rng[1], True
        else:  # 200: the whole file; start over
            have, append = 0, False
            total = remaining
        if want_size and total and total != want_size:
            raise _SizeMismatch(total)
        cap = want_size or limits.max_bytes
        if total and total > cap:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise _TooLarge(f"the server announces {total:,} bytes, more than the {cap:,}-byte limit")
        from tqdm.auto import tqdm

        received = 0
        window_start, window_bytes = time.monotonic(), 0
        read = getattr(resp, "read1", resp.read)
        fd = open_new(part, append=append)
        with os.fdopen(fd, "ab" if append else "wb") as fh, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=quiet or not on_terminal(), leave=False, file=sys.stderr,
        ) as bar:
            try:
                while True:
                    block = read(CHUNK)
                    if not block:
                        break
                    if have + received + len(block) > cap:
                        raise _TooLarge(f"the response passed the {cap:,}-byte limit")
                    fh.write(block)
                    received += len(block)
                    window_bytes += len(block)
                    bar.update(len(block))
                    now = time.monotonic()
                    if now > deadline:
                        raise _DeadlineExceeded()
                    if now - window_start >= limits.rate_window:
                        rate = window_bytes / (now - window_start)
                        if rate < limits.min_rate:
                            raise _TooSlow(f"{rate:,.0f} B/s, below the minimum {limits.min_rate:,.0f} B/s")
                        window_start, window_bytes = now, 0
            except _TooLarge:
                fh.close()
                part.unlink()  # oversized: never kept, not even in quarantine
                raise
            fh.flush()
            os.fsync(fh.fileno())
        if remaining is not None and received < remaining:
            raise _Interrupted(f"connection closed after {received:,} of {remaining:,} bytes")
        return total


def download(
    url: str, part: Path, want_size: int | None, errors: list[str], *,
    desc: str, quiet: bool, retries: int, backoff: float, limits: Limits, deadline: float,
) -> tuple[bool, bool]:
    """Fill ``part`` from ``url``, resuming after each failure.

    Returns (done, complete): ``done`` once the server has sent everything; ``complete`` when the
    length it stated was received (only such a file may be pinned).
    """
    import http.client
    import urllib.error

    for attempt in range(1, max(1, retries) + 1):
        have = _part_size(part)
        if want_size and have > want_size:
            part.unlink()  # longer than the file can be: not a prefix of it
            have = 0
        elif want_size and have == want_size:
            return True, True  # complete from an earlier run; verification decides
        try:
            total = _download_once(
                url, part, limits=limits, deadline=deadline, quiet=quiet, desc=desc, want_size=want_size,
            )
            size = _part_size(part)
            if total is not None and size < total:
                raise _Interrupted(f"have {size:,} of {total:,} bytes")
            return True, total is not None and size == total
        except _SizeMismatch as exc:
            errors.append(f"{url}: the server sends {exc.total:,} bytes, expected {int(want_size or 0):,}")
            return False, False  # a mirror may have the right file
        except _TooLarge as exc:
            errors.append(f"{url}: {exc}; the partial file was deleted")
            return False, False
        except _DeadlineExceeded:
            raise
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                # the .part is not a prefix the server can continue: start again from byte 0
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
                errors.append(f"{url}: HTTP 416 for a {have:,}-byte partial file; starting again")
                continue
            errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
            if exc.code in (400, 401, 403, 404, 410):
                return False, False  # retrying will not help
        except (urllib.error.URLError, http.client.HTTPException, OSError, _Interrupted, _TooSlow) as exc:
            if isinstance(exc, TimeoutError) and time.monotonic() >= deadline:
                raise _DeadlineExceeded() from exc
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
        if attempt < retries:
            pause = min(30.0, backoff * 2 ** (attempt - 1))
            if time.monotonic() + pause >= deadline:
                raise _DeadlineExceeded()
            time.sleep(pause)
    return False, False


def fetch_url(
    spec: WeightSpec, target: Path, *, quiet: bool, retries: int, timeout: float, backoff: float,
    limits: Limits | None = None, repin: bool = False,
) -> Path:
    """Download ``spec`` (its URL, then its mirrors) to ``target`` through a verified ``.part`` file."""
    urls = [u for u in [spec.url, *spec.extra.get("mirrors", ())] if u]
    if not urls:
        raise MissingWeightsError(
            spec.name, target, "has no direct download URL", by_hand=True,
        )
    limits = limits or Limits.from_env(timeout=timeout)
    ensure_dir(target.parent)
    part = target.with_name(target.name + ".part")
    want_size = expected_size(spec, ignore_pin=repin)
    if repin:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()  # a .part grown against the old pin is no prefix to trust
    hub = from_torch_hub(spec, urls, part, target, quiet=quiet, repin=repin)
    if hub is not None:
        return hub
    errors: list[str] = []
    deadline = time.monotonic() + limits.deadline
    for url in urls:
        log(quiet, f"{spec.name}: downloading {url}")
        try:
            done, complete = download(
                url, part, want_size, errors, desc=spec.filename, quiet=quiet,
                retries=retries, backoff=backoff, limits=limits, deadline=deadline,
            )
        except _DeadlineExceeded:
            errors.append(f"{url}: the {limits.deadline:,.0f}-second download deadline passed")
            break
        if done:
            return install(spec, part, target, sha256_file(part), url, quiet, complete=complete, repin=repin)
    kept = (
        f"; the partial file {part} ({part.stat().st_size:,} bytes) is kept and the next fetch resumes it"
        if is_plain_file(part) else ""
    )
    raise MissingWeightsError(
        spec.name, target, f"could not be downloaded ({'; '.join(summarise(errors)[-4:]) or 'no attempt made'}){kept}",
        fix=("check the network (behind a proxy: set HTTPS_PROXY), then "
             + (f"rerun `bfrbench fetch {spec.name}` to resume the partial file" if kept else "retry")
             + f"; or download {urls[0]} by hand and place it at {target}"),
    )


def torch_hub_checkpoints() -> Path | None:
    """torch hub's download folder (``torch.hub.get_dir()/checkpoints``), or None without torch."""
    try:
        import torch.hub
    except ImportError:
        return None
    return Path(torch.hub.get_dir()) / "checkpoints"


def from_torch_hub(spec: WeightSpec, urls: list[str], part: Path, target: Path, *, quiet: bool,
                   repin: bool = False) -> Path | None:
    """The file torch hub already downloaded under the URL's file name (torchvision, pytorch-fid ...),
    copied into the cache once it checks out (size and SHA-256, as a download); None when absent or wrong."""
    folder = torch_hub_checkpoints()
    if folder is None or spec.sha256 is None:  # only a file with a published hash is taken on its name
        return None
    for url in urls:
        found = folder / url.rsplit("/", 1)[-1].split("?", 1)[0]
        if not is_plain_file(found):
            continue
        why = problem(spec, found, sha256_file(found), ignore_pin=repin)
        if why is not None:
            log(quiet, f"{spec.name}: torch hub's {found} {why}; downloading instead")
            continue
        log(quiet, f"{spec.name}: found in torch hub's cache ({found}); copied, not downloaded")
        shutil.copyfile(found, part)
        return install(spec, part, target, sha256_file(part), str(found), quiet, repin=repin)
    return None


def summarise(errors: list[str]) -> list[str]:
    """Each distinct error once, in first-seen order, with its count (``... (4 attempts)``) when it repeated."""
    counts: dict[str, int] = {}
    for e in errors:
        counts[e] = counts.get(e, 0) + 1
    return [e if n == 1 else f"{e} ({n} attempts)" for e, n in counts.items()]
