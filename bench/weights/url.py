"""Direct HTTP(S) downloads into the cache: resumable (HTTP Range on a ``.part`` file kept between
attempts), size- and SHA-256-checked, renamed into the cache only once verified."""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from bench.weights.cache import CHUNK, install, log, pin_for, sha256_file
from bench.weights.spec import MissingWeightsError, WeightSpec

_CHUNK = CHUNK


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


def fetch_url(spec: WeightSpec, target: Path, *, quiet: bool, retries: int, timeout: float, backoff: float) -> Path:
    urls = [u for u in [spec.url, *spec.extra.get("mirrors", ())] if u]
    if not urls:
        raise MissingWeightsError(
            spec.name, target, "has no direct download URL: download it by hand and place it at the expected path"
        )
    part = target.with_name(target.name + ".part")
    pin = None if spec.sha256 else pin_for(spec)
    want_size = spec.size or (pin or {}).get("size")
    errors: list[str] = []
    for url in urls:
        log(quiet, f"{spec.name}: downloading {url}")
        if _download_with_retries(
            url, part, want_size, errors, desc=spec.filename, quiet=quiet,
            retries=retries, timeout=timeout, backoff=backoff,
        ):
            return install(spec, part, target, sha256_file(part), url, quiet)
    kept = (
        f"; the partial file {part} ({part.stat().st_size:,} bytes) is kept and the next fetch resumes it"
        if part.exists() else ""
    )
    raise MissingWeightsError(
        spec.name, target, f"could not be downloaded ({'; '.join(errors[-4:]) or 'no attempt made'}){kept}"
    )


