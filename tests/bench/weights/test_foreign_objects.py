"""A checkpoint holding Python objects besides tensors: refused in one line naming the one-time conversion,
also for a managed (cached) copy, where fetching it again would not help."""
from __future__ import annotations

import sys
import types

import pytest
import torch

from bench import weights as W


class _Callback:  # stands for a Lightning callback class, used as a dict key as Lightning does
    pass


def _save_foreign(path, monkeypatch) -> None:
    mod = types.ModuleType("fake_pl_callbacks")
    _Callback.__module__, _Callback.__qualname__ = "fake_pl_callbacks", "ModelCheckpoint"
    mod.ModelCheckpoint = _Callback
    monkeypatch.setitem(sys.modules, "fake_pl_callbacks", mod)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"callbacks": {_Callback: {}}, "state_dict": {"w": torch.ones(1)}}, path)
    monkeypatch.delitem(sys.modules, "fake_pl_callbacks")


@pytest.mark.parametrize("managed", [False, True])
def test_foreign_objects_name_the_conversion(tmp_path, monkeypatch, managed):
    # a home of its own: the managed copy written here must not reach later tests (daefr's "missing weights" test
    # found it in the session's shared cache and failed, depending on the order the tests ran in)
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    path = W.expected_path("daefr") if managed else tmp_path / "mine.ckpt"
    _save_foreign(path, monkeypatch)
    with pytest.raises(W.WeightsFileError) as err:
        W.load_state_dict(path)
    text = str(err.value)
    assert "besides tensors" in text and f"python -m bench.weights.lightning {path} {path.with_suffix('.pth')}" in text
    assert "--force" not in text and "\n" not in text
