"""Which installed packages are at the versions of requirements/lock.txt (the test environment's pins).

Reference tests come in two kinds. Exact checks (bit-level or 1e-9 agreement with a stored value)
hold only in the environment the value was made in: mark them ``@requires_locked("numpy", ...)``
so they run under the lock (tox, CI) and skip, saying why, elsewhere. Cross-version checks always
run, with a tolerance justified by drift measured across versions and written next to the test.
"""
from __future__ import annotations

import re
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[2] / "requirements" / "lock.txt"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def locked_versions() -> dict[str, str]:
    """{normalised name: pinned version} of requirements/lock.txt."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def unlocked(*packages: str) -> list[str]:
    """'name installed X, lock Y' for each package not at its locked version (not installed counts)."""
    pins, out = locked_versions(), []
    for p in packages:
        want = pins.get(_norm(p))
        if want is None:
            raise KeyError(f"{p} is not pinned in {LOCK}")
        try:
            have = version(p)
        except PackageNotFoundError:
            have = "missing"
        if have.split("+")[0] != want.split("+")[0]:  # a local build tag (+cpu) is the same release
            out.append(f"{p} installed {have}, lock {want}")
    return out


def requires_locked(*packages: str) -> pytest.MarkDecorator:
    """Skip an exact reference check unless these packages are at their locked versions."""
    diff = unlocked(*packages)
    return pytest.mark.skipif(bool(diff), reason="exact check needs the locked versions (make test / tox): " + "; ".join(diff))
