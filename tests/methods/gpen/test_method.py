"""The ``gpen`` method: strict loading of the GPEN-BFR-512 layout, errors, batching, resizing, dtype.

Network behaviour is checked against the official code in test_golden.py; here the method runs on a
64x64 quarter-width FullGenerator (every code path of the 512 model, a fraction of the cost).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import bench
from bench import weights as W
from bench.core.registry import METHODS
from methods.gpen.arch import GPEN, fir_filter, fir_kernel
from methods.gpen.method import GPENMethod, build_gpen, extract_gpen_state, standin_state_dict
from tests._helpers.baselines_support import (
    assert_batch_independent,
    astronaut,
    manifest_shapes,
    to_batch,
    to_uint8,
    write_checkpoint,
)

MANIFEST = "gpen_bfr_512"


class SmallGPEN(GPENMethod):
    """The method on a 64x64, quarter-width FullGenerator."""

    input_size = output_size = 64

    def build_net(self) -> GPEN:
        return GPEN(size=64, narrow=0.25)


def _faces(n: int = 3) -> torch.Tensor:
    base = astronaut(64)
    return to_batch(*[np.roll(base, 9 * i, axis=1) for i in range(n)])


def test_architecture_has_the_release_names_and_shapes():
    net = build_gpen()
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == list(manifest_shapes(MANIFEST).items())
    assert sum(v.numel() for v in net.state_dict().values()) == 71_005_559


def test_checkpoint_loads_strictly_and_is_recorded(tmp_path):
    state = standin_state_dict({k: tuple(v.shape) for k, v in GPEN(size=64, narrow=0.25).state_dict().items()}, seed=3)
    path = write_checkpoint(tmp_path / "GPEN-BFR-64.pth", state, "bare")  # the release files are bare state dicts
    m = SmallGPEN(weights=str(path))
    loaded = m.net.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    info = m.info()
    assert not info.standin and info.weights[0].path == str(path) and info.weights[0].name == "gpen-bfr-512"
    assert info.weights[0].sha256 == W.sha256_file(path)


def test_standin_kernels_are_the_built_fir_buffers():
    net = GPEN(size=64, narrow=0.25)
    state = standin_state_dict({k: tuple(v.shape) for k, v in net.state_dict().items()})
    kernels = [k for k in state if k.endswith("kernel")]
    assert len(kernels) == 4 + 4 + 4  # encoder blurs, upsampling-conv blurs, RGB upsamplers
    assert all(torch.equal(state[k], net.state_dict()[k]) for k in kernels)


def test_fir_upsampling_keeps_a_constant_image_constant():
    # a x2 FIR upsampler with gain 4 maps a constant to the same constant away from the borders
    y = fir_filter(torch.ones(1, 2, 8, 8), fir_kernel(gain=4.0), (2, 1), up=2)
    assert y.shape == (1, 2, 16, 16) and torch.allclose(y[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))


def test_non_gpen_files_are_refused_with_the_fix():
    a = {"final_linear.0.weight": torch.zeros(1)}
    assert extract_gpen_state(a) is a
    with pytest.raises(ValueError, match=r"ckpt\.pth: not a GPEN checkpoint.*bfrbench fetch gpen-bfr-512"):
        extract_gpen_state({"params_ema": a}, "ckpt.pth")


def test_mismatched_checkpoint_names_the_file(tmp_path):
    state = {k: v for k, v in SmallGPEN(weights="random").net.state_dict().items() if k != "ecd2.0.2.bias"}
    path = write_checkpoint(tmp_path / "broken.pth", state, "bare")
    with pytest.raises(ValueError, match=r"broken\.pth: does not match the GPEN FullGenerator.*ecd2\.0\.2\.bias"):
        SmallGPEN(weights=str(path))


def test_missing_managed_weights_say_how_to_fetch():
    with pytest.raises(W.MissingWeightsError, match="bfrbench fetch gpen-bfr-512"):
        bench.create_method("gpen")


def test_registered_and_catalogued():
    bench.list_methods()
    meta = METHODS.entry("gpen").meta
    assert meta["weights"] == ["gpen-bfr-512"] and not meta["takes_quality"] and meta["family"] == "gpen"
    spec = W.WEIGHTS["gpen-bfr-512"]
    assert spec.url.endswith("/robin/models/GPEN-BFR-512.pth") and spec.license


def test_restore_is_batched_deterministic_and_batch_independent():
    m = SmallGPEN(weights="random")
    assert m.info().standin
    x = _faces(3)
    assert_batch_independent(m, x, atol=1e-5)
    assert torch.equal(m.restore(x[:1]), SmallGPEN(weights="random").restore(x[:1]))  # no noise: deterministic


def test_encoder_features_reach_the_generator():
    # GPEN's concatenated "noise" is the encoder's feature maps: zero strengths change the output
    m = SmallGPEN(weights="random")
    x = _faces(1)
    ref = m.restore(x)
    for name, p in m.net.named_parameters():
        if name.endswith("noise.weight"):
            p.data.zero_()
    assert (m.restore(x) - ref).abs().mean() > 1e-3


def test_off_size_input_is_resized_like_cv2():
    m = SmallGPEN(weights="random")
    big = astronaut(96)
    small = cv2.resize(big, (64, 64), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(m.restore(to_batch(big)), m.restore(to_batch(small)))


def test_bf16_autocast_stays_close_to_fp32():  # (fp16 autocast on CPU takes ~45 s here: left to the GPU check)
    x = _faces(1)
    m = SmallGPEN(weights="random")
    ref = to_uint8(m.restore(x)).astype(int)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the engine's precision, not the method's
        low = to_uint8(m.restore(x)).astype(int)
    assert np.abs(ref - low).mean() < 4
