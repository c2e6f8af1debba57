"""The ``gfpgan`` method: strict loading of the release layout, containers, errors, batching, noise, dtype.

Network behaviour is checked against the official code in test_gfpgan_parity.py; here the method
runs on a narrow 64x64 GFPGANv1Clean (same code paths, a fraction of the cost) where it must run.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import bench
from bench import weights as W
from bench.core.registry import METHODS
from methods.gfpgan.arch import GFPGANv1Clean
from methods.gfpgan.method import GFPGANMethod, build_gfpgan, extract_gfpgan_state, make_noise, standin_state_dict
from tests._helpers.baselines_support import (
    assert_batch_independent,
    astronaut,
    manifest_shapes,
    to_batch,
    to_uint8,
    write_checkpoint,
)

MANIFEST = "gfpgan_v1.4_clean"


class SmallGFPGAN(GFPGANMethod):
    """The method on a 64x64, quarter-width GFPGANv1Clean."""

    input_size = output_size = 64

    def build_net(self) -> GFPGANv1Clean:
        return GFPGANv1Clean(out_size=64, narrow=0.25)


def _faces(n: int = 3) -> torch.Tensor:
    base = astronaut(64)
    return to_batch(*[np.roll(base, 9 * i, axis=1) for i in range(n)])


def test_architecture_has_the_release_names_and_shapes():
    net = build_gfpgan()
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == list(manifest_shapes(MANIFEST).items())
    assert sum(v.numel() for v in net.state_dict().values()) == 87_143_276


def test_release_checkpoint_loads_strictly(tmp_path):
    state = standin_state_dict(manifest_shapes(MANIFEST), seed=3)
    path = write_checkpoint(tmp_path / "GFPGANv1.4.pth", state, "params_ema")
    m = bench.create_method("gfpgan", weights=str(path))
    loaded = m.net.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    info = m.info()
    assert not info.standin and info.weights[0].path == str(path)
    assert info.weights[0].sha256 == W.sha256_file(path) and info.weights[0].name == "gfpgan-v1.4"


def test_checkpoint_containers_are_recognised():
    a, b = {"conv_body_first.weight": torch.zeros(1)}, {"conv_body_first.weight": torch.ones(1)}
    assert extract_gfpgan_state({"params_ema": a, "params": b}) is a  # GFPGANer prefers params_ema
    assert extract_gfpgan_state({"params": b}) is b
    assert extract_gfpgan_state(a) is a
    with pytest.raises(ValueError, match=r"ckpt\.pth: not a GFPGAN checkpoint.*bfrbench fetch gfpgan-v1.4"):
        extract_gfpgan_state({"state_dict": a}, "ckpt.pth")


def test_mismatched_checkpoint_names_the_file(tmp_path):
    net = SmallGFPGAN(weights="random").net
    state = {k: v for k, v in net.state_dict().items() if k != "final_linear.bias"}
    path = write_checkpoint(tmp_path / "broken.pth", state, "params_ema")
    with pytest.raises(ValueError, match=r"broken\.pth: does not match the GFPGANv1Clean architecture.*final_linear"):
        SmallGFPGAN(weights=str(path))


@pytest.mark.parametrize("version,name", [("1.4", "gfpgan-v1.4"), ("1.3", "gfpgan-v1.3")])
def test_missing_managed_weights_say_how_to_fetch(version, name):
    with pytest.raises(W.MissingWeightsError, match=f"bfrbench fetch {name}"):
        bench.create_method("gfpgan", version=version)


def test_registered_with_official_defaults():
    bench.list_methods()
    meta = METHODS.entry("gfpgan").meta
    assert meta["weights"] == ["gfpgan-v1.4"] and not meta["takes_quality"]
    assert meta["defaults"] == {"version": "1.4", "noise": "seeded", "seed": 0}


@pytest.mark.parametrize("kw,msg", [({"version": "2"}, "version"), ({"noise": "fresh"}, "noise")])
def test_bad_parameters_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SmallGFPGAN(weights="random", **kw)


def test_random_weights_are_labelled_standin_and_seeded():
    a, b, c = SmallGFPGAN(weights="random"), SmallGFPGAN(weights="random"), SmallGFPGAN(weights="random", seed=1)
    assert a.info().standin and a.weights_info[0].name == "gfpgan-v1.4"
    x = _faces(1)
    assert torch.equal(a.restore(x), b.restore(x))
    assert not torch.equal(a.restore(x), c.restore(x))


def test_restore_is_batched_in_range_and_batch_independent():
    m = SmallGFPGAN(weights="random")
    x = _faces(3)
    assert_batch_independent(m, x, atol=1e-5)


def test_noise_modes():
    x = _faces(2)
    seeded = SmallGFPGAN(weights="random")
    stored = SmallGFPGAN(weights="random", noise="stored")
    with torch.no_grad():
        want_stored = (stored.net(x * 2 - 1).clamp(-1, 1) + 1) / 2
        want_seeded = (seeded.net(x * 2 - 1, make_noise(seeded.net.noise_shapes(), 0, x.device)).clamp(-1, 1) + 1) / 2
    assert torch.equal(stored.restore(x), want_stored)
    assert torch.equal(seeded.restore(x), want_seeded)
    assert (want_stored - want_seeded).abs().mean() > 1e-3  # the noise maps matter
    # seeded noise is the official draw: torch.manual_seed(s) then normal_() per map, in layer order
    torch.manual_seed(7)
    official = [torch.empty(1, 1, h, w).normal_() for h, w in seeded.net.noise_shapes()]
    assert all(torch.equal(a, b) for a, b in zip(official, make_noise(seeded.net.noise_shapes(), 7, x.device)))


def test_off_size_input_is_resized_like_cv2():
    m = SmallGFPGAN(weights="random")
    big = astronaut(96)
    small = cv2.resize(big, (64, 64), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(m.restore(to_batch(big)), m.restore(to_batch(small)))


@pytest.mark.slow  # bf16 convolutions are slow on CPUs without bf16 units (~30 s)
def test_bf16_autocast_stays_close_to_fp32():
    x = _faces(1)
    ref = to_uint8(SmallGFPGAN(weights="random").restore(x)).astype(int)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the engine's precision, not the method's
        low = to_uint8(SmallGFPGAN(weights="random").restore(x)).astype(int)
    assert np.abs(ref - low).mean() < 6
