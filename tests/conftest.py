"""Shared test fixtures. Tests run on CPU with no internet beyond the package registries.

Every test sees the same numerics on every machine: torch uses a fixed number of threads
(``TEST_THREADS``: 2, what tox sets, never the machine's core count; ``BFRBENCH_TEST_THREADS`` or
``OMP_NUM_THREADS`` set it explicitly, e.g. 1 on a shared, loaded machine where 2 threads oversubscribe
the cores), and the global RNGs (random, numpy, torch) are seeded before each test, so a test's result
never depends on the order tests run in. Tests that assert training outcomes also turn on
``deterministic_algorithms``.
Nothing reads outside the repository (no ../shared): fixtures live under tests/fixtures.
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: intra-op threads of torch in every test (reductions split by thread count round differently)
TEST_THREADS = int(os.environ.get("BFRBENCH_TEST_THREADS") or os.environ.get("OMP_NUM_THREADS") or 2)
#: seed of random, numpy's global RNG and torch before each test
TEST_SEED = 0


def pytest_configure(config: pytest.Config) -> None:
    os.environ["OMP_NUM_THREADS"] = str(TEST_THREADS)  # subprocesses (the bfrbench CLI) use the same count
    torch.set_num_threads(TEST_THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (or inter-op work already ran) in this process
        pass


@pytest.fixture(autouse=True)
def _fixed_numerics() -> Iterator[None]:
    """Seeded RNGs and the fixed thread count, restored if a test changed them."""
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    torch.manual_seed(TEST_SEED)
    torch.set_num_threads(TEST_THREADS)
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    if torch.are_deterministic_algorithms_enabled() != deterministic:  # the setter's first call imports
        torch.use_deterministic_algorithms(deterministic)  # torch._dynamo (~900 modules, seconds): only on a change
    torch.set_num_threads(TEST_THREADS)


@pytest.fixture
def deterministic_torch() -> Iterator[None]:
    """torch.use_deterministic_algorithms(True) for one test (tests that assert what training learns)."""
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


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


@pytest.fixture
def registries() -> Iterator[None]:
    """The registries restored after the test: use it in every test that adds a metric, method or dataset."""
    from tests._helpers.registries import restored_registries

    with restored_registries():
        yield


# ---- stand-in metric networks, built once per session (several test files load the same ones) ----------
@pytest.fixture(scope="session")
def random_fan_ckpt(tmp_path_factory) -> Path:
    """Random AWing FAN weights (seed 2) saved as facexlib's checkpoint is: {'state_dict': ...}."""
    from bench.metrics.awing_arch import FAN
    from tests._helpers.learned_helpers import save_random

    path = tmp_path_factory.mktemp("awing") / "alignment_WFLW_4HG.pth"
    save_random(FAN(), path, seed=2, wrap="state_dict")
    return path


@pytest.fixture(scope="session")
def random_arcface_ckpt(tmp_path_factory) -> tuple[Path, dict]:
    """Random ArcFace-18 weights (seed 5) saved with the release's DataParallel ``module.`` prefix, and the state."""
    from bench.metrics.arcface_arch import ResNetArcFace
    from tests._helpers.learned_helpers import save_random

    path = tmp_path_factory.mktemp("arcface") / "arcface_resnet18.pth"
    return path, save_random(ResNetArcFace(), path, seed=5, prefix="module.")


@pytest.fixture(scope="session")
def random_inception_ckpt(tmp_path_factory) -> tuple[Path, dict]:
    """Random FID-Inception weights (seed 3; valid BatchNorm statistics) saved as a checkpoint, and the state."""
    from bench.metrics.inception import FIDInceptionV3
    from tests._helpers.learned_helpers import save_random

    path = tmp_path_factory.mktemp("inception") / "pt_inception_random.pth"
    return path, save_random(FIDInceptionV3(), path, seed=3)
