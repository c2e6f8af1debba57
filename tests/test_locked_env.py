"""requirements/lock.txt: consistent with pyproject.toml and lock.in, and read right by tests/_helpers/locked.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests._helpers import locked

REPO = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_lock_pins_every_requirement_within_its_range():
    """A dependency added or a floor raised in pyproject.toml without `make lock` fails here."""
    pins = locked.locked_versions()
    problems = []
    for req in _pyproject_requirements():
        pinned = pins.get(locked._norm(req.name))
        if pinned is None:
            problems.append(f"{req.name}: not in requirements/lock.txt")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} outside {req.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_lock_keeps_the_pins_of_lock_in():
    pins = locked.locked_versions()
    for line in (REPO / "requirements" / "lock.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            assert req.specifier.contains(pins[locked._norm(req.name)]), line


def test_unlocked_names_packages_off_their_pins(monkeypatch):
    pins = locked.locked_versions()
    fake = {"numpy": "0.0.1", "torch": pins["torch"] + "+cpu"}
    monkeypatch.setattr(locked, "version", lambda p: fake.get(p) or pins[locked._norm(p)])
    assert locked.unlocked("numpy", "torch", "scipy") == [f"numpy installed 0.0.1, lock {pins['numpy']}"]
    with pytest.raises(KeyError, match="not pinned"):
        locked.unlocked("no-such-package")
