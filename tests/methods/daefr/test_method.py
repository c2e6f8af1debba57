"""The ``daefr`` method: the released layout, strict loading and its errors, Lightning files, batching, dtype.

Network behaviour is checked against the official code in test_golden.py; here the method runs on the
reduced 64x64 network of conftest.py.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import bench
from bench import weights as W
from bench.core.registry import METHODS
from bench.weights import lightning
from methods.daefr.method import build_daefr, extract_daefr_state, standin_state_dict
from tests._helpers.baselines_support import assert_batch_independent, astronaut, manifest_shapes, to_batch, to_uint8
from tests.methods.daefr.conftest import TinyDAEFR

MANIFEST = "daefr_model"


def _faces(n: int = 3) -> torch.Tensor:
    base = astronaut(64)
    return to_batch(*[np.roll(base, 9 * i, axis=1) for i in range(n)])


@pytest.fixture(scope="module")
def tiny_state(tiny_random) -> dict[str, torch.Tensor]:
    return standin_state_dict({k: tuple(v.shape) for k, v in tiny_random.net.state_dict().items()}, seed=3)


def test_release_network_has_the_manifest_names_and_shapes():
    with torch.device("meta"):  # shapes only: no 152M-parameter allocation
        net = build_daefr()
    shapes = manifest_shapes(MANIFEST)
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == list(shapes.items())
    assert sum(v.numel() for v in net.state_dict().values()) == 152_151_235
    # a zeros state dict with the manifest's names and shapes loads strictly (expanded: no memory)
    zeros = {k: torch.zeros(()).expand(s) for k, s in shapes.items()}
    net.load_state_dict(zeros, strict=True, assign=True)


@pytest.mark.parametrize("change, match", [
    ("rename", r"does not match the DAEFR network.*cross_attention\.q\.weight"),
    ("drop", r"does not match the DAEFR network.*ft_layers\.1\.linear1\.bias"),
    ("reshape", r"does not match the DAEFR network.*feat_emb\.weight"),
])
def test_mismatched_checkpoint_is_one_line_naming_file_and_tensor(tiny_state, tmp_path, change, match):
    state = dict(tiny_state)
    if change == "rename":
        state["cross_attention.q.weight_renamed"] = state.pop("cross_attention.q.weight")
    elif change == "drop":
        del state["ft_layers.1.linear1.bias"]
    else:
        state["feat_emb.weight"] = state["feat_emb.weight"][:, :-1].clone()
    path = tmp_path / "broken.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(W.WeightsFileError, match=r"broken\.ckpt: " + match) as err:
        TinyDAEFR(weights=str(path))
    assert "\n" not in str(err.value)


def test_lightning_checkpoint_loads_strictly_without_training_entries(tiny_state, tmp_path):
    state = dict(tiny_state)
    sd = dict(state, **{"loss.discriminator.main.0.weight": torch.zeros(4, 3, 4, 4)})
    path = tmp_path / "DAEFR_model.ckpt"
    torch.save({"epoch": 3, "global_step": 100, "optimizer_states": [], "state_dict": sd}, path)
    m = TinyDAEFR(weights=str(path))
    loaded = m.net.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    info = m.info()
    assert not info.standin and info.weights[0].name == "daefr" and info.weights[0].sha256 == W.sha256_file(path)


def test_non_daefr_files_are_refused_with_the_fix():
    with pytest.raises(W.WeightsFileError, match=r"x\.pth: not a DAEFR checkpoint.*bfrbench fetch daefr"):
        extract_daefr_state({"params_ema": {"conv.weight": torch.zeros(1)}}, "x.pth")


class _Callback:  # stands for pytorch_lightning.callbacks.ModelCheckpoint: a class used as a dict key
    pass


def _foreign_checkpoint(path, state, monkeypatch) -> None:
    import sys
    import types

    mod = types.ModuleType("fake_lightning_cb")
    _Callback.__module__, _Callback.__qualname__ = "fake_lightning_cb", "ModelCheckpoint"
    mod.ModelCheckpoint = _Callback
    monkeypatch.setitem(sys.modules, "fake_lightning_cb", mod)
    torch.save({"callbacks": {_Callback: {"best_model_score": torch.tensor(0.5)}}, "state_dict": state}, path)
    monkeypatch.delitem(sys.modules, "fake_lightning_cb")


def test_foreign_objects_name_the_conversion_that_then_loads(tiny_state, tmp_path, monkeypatch):
    state = dict(tiny_state)
    src = tmp_path / "DAEFR_model.ckpt"
    _foreign_checkpoint(src, state, monkeypatch)
    with pytest.raises(W.WeightsFileError, match=r"DAEFR_model\.ckpt: .*besides tensors.*python -m bench\.weights\."
                                                 r"lightning .*DAEFR_model\.ckpt .*DAEFR_model\.pth") as err:
        TinyDAEFR(weights=str(src))
    assert "\n" not in str(err.value)
    assert lightning.foreign_globals(src) == ["fake_lightning_cb.ModelCheckpoint"]
    dst = tmp_path / "DAEFR_model.pth"
    assert lightning.main([str(src), str(dst)]) == 0
    loaded = TinyDAEFR(weights=str(dst)).net.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


class _Payload:  # pickles as a call: loading it with weights_only=False would run it
    def __init__(self, call):
        self.call = call

    def __reduce__(self):
        return self.call


def test_conversion_runs_no_code_from_the_file(tmp_path):
    import os
    import shutil

    marker = tmp_path / "ran"
    src = tmp_path / "evil.ckpt"
    # a harmless-looking call is stood in for by an inert placeholder: converted, not run
    torch.save({"hook": _Payload((shutil.copyfile, (str(src), str(marker)))), "state_dict": {"w": torch.ones(2)}}, src)
    assert lightning.main([str(src), str(tmp_path / "out.pth")]) == 0
    assert not marker.exists()
    assert torch.equal(torch.load(tmp_path / "out.pth", weights_only=True)["state_dict"]["w"], torch.ones(2))
    # a call into a module torch blocks outright is refused, and not run either
    torch.save({"hook": _Payload((os.system, (f"touch {marker}",))), "state_dict": {"w": torch.ones(2)}}, src)
    assert lightning.main([str(src), str(tmp_path / "out2.pth")]) == 2
    assert not marker.exists() and not (tmp_path / "out2.pth").exists()


def test_conversion_refuses_a_file_without_state_dict(tmp_path, capsys):
    src = tmp_path / "x.ckpt"
    torch.save({"epoch": 1}, src)
    assert lightning.main([str(src), str(tmp_path / "y.pth")]) == 2
    assert "no 'state_dict' of tensors" in capsys.readouterr().err and not (tmp_path / "y.pth").exists()


def test_missing_managed_weights_say_how_to_fetch():
    with pytest.raises(W.MissingWeightsError, match="bfrbench fetch daefr"):
        bench.create_method("daefr")


def test_registered_and_catalogued():
    bench.list_methods()
    meta = METHODS.entry("daefr").meta
    assert meta["weights"] == ["daefr"] and not meta["takes_quality"] and meta["family"] == "daefr"
    spec = W.WEIGHTS["daefr"]
    assert spec.url.endswith("LIAGM/DAEFR_pretrain_model/resolve/main/DAEFR_model.ckpt") and spec.license.startswith("MIT")


def test_restore_is_batched_deterministic_and_batch_independent(tiny_random):
    m = tiny_random
    assert m.info().standin
    x = _faces(3)
    assert_batch_independent(m, x, atol=1e-5)
    _, idx = m.net.code_indices(x * 2 - 1)
    assert idx.shape == (3, 256) and idx.unique().numel() > 16  # the stand-in uses many codes


def test_off_size_input_is_resized_like_cv2(tiny_random):
    big = astronaut(96)
    small = cv2.resize(big, (64, 64), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(tiny_random.restore(to_batch(big)), tiny_random.restore(to_batch(small)))


def test_bf16_autocast_stays_close_to_fp32(tiny_random):
    x = _faces(1)
    ref = to_uint8(tiny_random.restore(x)).astype(int)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the engine's precision, not the method's
        low = to_uint8(tiny_random.restore(x)).astype(int)
    assert np.abs(ref - low).mean() < 8
