"""Shared test fixtures. Tests run on CPU with no internet beyond the package registries."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def bfrbench_home(tmp_path_factory) -> Path:
    """A session-wide BFRBENCH_HOME so downloaded registry assets are fetched once per run.

    Set BFRBENCH_TEST_HOME to reuse a cache across runs (CI sets nothing: a fresh cache).
    """
    home = os.environ.get("BFRBENCH_TEST_HOME")
    path = Path(home) if home else tmp_path_factory.mktemp("bfrbench_home")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _isolated_home(bfrbench_home, monkeypatch):
    monkeypatch.setenv("BFRBENCH_HOME", str(bfrbench_home))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
