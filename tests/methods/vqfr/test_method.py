"""The ``vqfr`` method: strict loading of the VQFR v2 layout, errors, fidelity_ratio, batching, dtype.

Network behaviour is checked against the official code in test_golden.py; here the method runs on the
golden's 64x64 network (tests/methods/vqfr/_small.py).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bench
from bench import weights as W
from bench.core.registry import METHODS
from methods.vqfr.arch import VQFRConfig, VQFRv2
from methods.vqfr.method import VQFRMethod, check_fidelity, extract_vqfr_state, standin_state_dict
from tests._helpers.baselines_support import (
    assert_batch_independent,
    astronaut,
    manifest_shapes,
    to_batch,
    to_uint8,
    write_checkpoint,
)
from tests.methods.vqfr._small import SMALL, SmallVQFR

MANIFEST = "vqfr_v2"


def _faces(n: int = 3) -> torch.Tensor:
    base = astronaut(64)
    return to_batch(*[np.roll(base, 9 * i, axis=1) for i in range(n)])


@pytest.fixture(scope="module")
def release_net() -> VQFRv2:
    return VQFRv2(VQFRConfig())


@pytest.fixture(scope="module")
def small() -> SmallVQFR:
    return SmallVQFR(weights="random")


def test_architecture_has_the_release_names_and_shapes(release_net):
    got = [(k, tuple(v.shape)) for k, v in release_net.state_dict().items()]
    assert got == list(manifest_shapes(MANIFEST).items())
    assert sum(v.numel() for v in release_net.state_dict().values()) == 83_486_539  # the official class at 239c77a (manifest num_params)


def test_a_zero_checkpoint_with_the_manifest_layout_loads_strictly(release_net):
    zeros = {k: torch.zeros(s) for k, s in manifest_shapes(MANIFEST).items()}
    release_net.load_state_dict(extract_vqfr_state({"params_ema": zeros}), strict=True)  # raises on any difference


@pytest.mark.parametrize("container", ["params_ema", "params"])
def test_checkpoint_loads_strictly_and_is_recorded(tmp_path, container):
    state = standin_state_dict({k: tuple(v.shape) for k, v in VQFRv2(SMALL).state_dict().items()}, seed=3)
    path = write_checkpoint(tmp_path / "VQFR_small.pth", state, container)
    m = SmallVQFR(weights=str(path))
    loaded = m.net.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    info = m.info()
    assert not info.standin and info.weights[0].path == str(path) and info.weights[0].name == "vqfr-v2"
    assert info.weights[0].sha256 == W.sha256_file(path) and info.params == {"fidelity_ratio": 0.0}


@pytest.mark.parametrize("change, named", [
    ("missing", "main_branch.align_func_dict.Level_4.dcn.weight"),
    ("renamed", "feat2index.1.weight"),
    ("reshaped", "quantizer.embedding.weight"),
])
def test_mismatched_checkpoint_is_one_line_naming_the_file_and_tensor(tmp_path, small, change, named):
    state = dict(small.net.state_dict())
    if change == "missing":
        del state[named]
    elif change == "renamed":
        state["feat2index.1.weights"] = state.pop(named)
    else:
        state[named] = state[named][:32]
    path = write_checkpoint(tmp_path / "broken.pth", state, "params_ema")
    with pytest.raises(W.WeightsFileError) as err:
        SmallVQFR(weights=str(path))
    msg = str(err.value)
    assert "\n" not in msg and "broken.pth: does not match the VQFR v2 network" in msg and named in msg
    assert "bfrbench fetch vqfr-v2" in msg


def test_non_vqfr_files_are_refused_with_the_fix():
    bare = {"main_branch.align_func_dict.Level_1.dcn.conv_offset.weight": torch.zeros(1)}
    assert extract_vqfr_state(bare) is bare
    with pytest.raises(ValueError, match=r"ckpt\.pth: not a VQFR v2 checkpoint.*bfrbench fetch vqfr-v2"):
        extract_vqfr_state({"state_dict": bare}, "ckpt.pth")


def test_missing_managed_weights_say_how_to_fetch():
    with pytest.raises(W.MissingWeightsError, match="bfrbench fetch vqfr-v2"):
        bench.create_method("vqfr")


def test_registered_and_catalogued():
    bench.list_methods()
    entry = METHODS.entry("vqfr")
    assert entry.meta["weights"] == ["vqfr-v2"] and not entry.meta["takes_quality"] and entry.meta["family"] == "vqfr"
    spec = W.WEIGHTS["vqfr-v2"]
    assert spec.url == "https://github.com/TencentARC/VQFR/releases/download/v2.0.0/VQFR_v2.pth"
    assert spec.license.startswith("Apache-2.0")


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.floats(allow_nan=True), st.text(max_size=6), st.none()))
def test_fidelity_ratio_is_accepted_exactly_in_the_unit_interval(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is not None and 0.0 <= number <= 1.0:
        assert check_fidelity(value) == number
    else:
        with pytest.raises(ValueError, match=r"vqfr: fidelity_ratio must be in \[0, 1\]"):
            check_fidelity(value)


def test_spec_parameter_reaches_the_network(monkeypatch):
    monkeypatch.setattr(VQFRMethod, "build_net", lambda self: VQFRv2(SMALL))  # the spec path, a small network
    m = bench.create_method("vqfr:fidelity_ratio=0.25", weights="random")
    assert m.fidelity_ratio == 0.25 and m.info().params == {"fidelity_ratio": 0.25} and m.info().standin
    with pytest.raises(ValueError, match="fidelity_ratio must be in"):
        bench.create_method("vqfr", weights="random", fidelity_ratio=1.5)


def test_restore_is_batched_deterministic_and_batch_independent(small):
    x = _faces(3)
    assert_batch_independent(small, x, atol=1e-5)


def test_fidelity_zero_is_the_texture_decoder_and_the_ratio_mixes_the_main_branch(small):
    net, x = small.net, _faces(1) * 2 - 1
    with torch.no_grad():
        feats = net.decoder.features(net.codes(x))
        main = net.main_branch(feats, net.inpfeat_extraction(x))
        for ratio in (0.0, 0.5):  # the official formula, conv_out(texture_1 + ratio * main), 0 included
            assert torch.equal(net(x, fidelity_ratio=ratio), net.decoder.conv_out(feats[1] + ratio * main))
    assert (net(x, fidelity_ratio=1.0) - net(x, fidelity_ratio=0.0)).abs().mean() > 0.01


def test_off_size_input_is_resized_like_cv2(small):
    big = astronaut(96)
    resized = cv2.resize(big, (64, 64), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(small.restore(to_batch(big)), small.restore(to_batch(resized)))


def test_bf16_autocast_stays_close_to_fp32(small):  # (fp16 is left to the GPU check)
    x = _faces(1)
    ref = to_uint8(small.restore(x)).astype(int)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the engine's precision, not the method's
        low = to_uint8(small.restore(x)).astype(int)
    assert np.abs(ref - low).mean() < 4


def test_channels_last_gives_the_same_image(small):  # the profiler's --channels-last on (deform_conv2d included)
    x = _faces(2)
    try:
        small.fidelity_ratio = 1.0  # the deformable branch runs
        ref = small.restore(x)
        small.net.to(memory_format=torch.channels_last)
        assert torch.allclose(small.restore(x.contiguous(memory_format=torch.channels_last)), ref, atol=1e-5)
    finally:
        small.net.to(memory_format=torch.contiguous_format)
        small.fidelity_ratio = 0.0
