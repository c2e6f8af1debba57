"""The ``restoreformer`` / ``restoreformer++`` methods: release layout, Lightning containers, errors, batching.

Network behaviour is checked against official code in test_restoreformer_parity.py (GFPGAN's copy
of RestoreFormer) and test_restoreformer_golden.py (RestoreFormer++). The released networks accept
any multiple of 32 pixels, so the methods run here on 64x64 faces.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import bench
from bench import weights as W
from bench.core.registry import METHODS
from methods.restoreformer.method import (
    RestoreFormerMethod,
    RestoreFormerPlusPlusMethod,
    build_restoreformer,
    extract_restoreformer_state,
    standin_state_dict,
)
from tests._helpers.baselines_support import (
    assert_batch_independent,
    astronaut,
    manifest_shapes,
    to_batch,
    write_checkpoint,
)

MANIFESTS = {"restoreformer": "restoreformer", "restoreformer++": "restoreformer_plusplus"}


class SmallRF(RestoreFormerMethod):
    input_size = output_size = 64


class SmallRFPP(RestoreFormerPlusPlusMethod):
    input_size = output_size = 64


def _faces(n: int = 3) -> torch.Tensor:
    base = astronaut(64)
    return to_batch(*[np.roll(base, 11 * i, axis=0) for i in range(n)])


@pytest.fixture(scope="module")
def rfpp_release(tmp_path_factory):
    """A RestoreFormer++ checkpoint laid out as the release: Lightning ``state_dict``, ``vqvae.`` keys."""
    state = standin_state_dict(manifest_shapes("restoreformer_plusplus"), seed=2)
    return write_checkpoint(tmp_path_factory.mktemp("rf") / "RestoreFormer++.ckpt", state, "lightning"), state


@pytest.mark.parametrize("variant,params", [("restoreformer", 72_680_003), ("restoreformer++", 73_472_579)])
def test_architecture_has_the_release_names_and_shapes(variant, params):
    net = build_restoreformer(variant)
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == list(manifest_shapes(MANIFESTS[variant]).items())
    assert sum(v.numel() for v in net.state_dict().values()) == params


def test_release_checkpoint_loads_strictly(rfpp_release):
    path, state = rfpp_release
    m = bench.create_method("restoreformer++", weights=str(path))
    loaded = m.net.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    info = m.info().weights[0]
    assert not info.standin and info.name == "restoreformer++" and info.sha256 == W.sha256_file(path)
    assert "left out 2 training-only entries" in info.note  # vqvae.quantize.utility_counter + a loss weight


def test_the_other_variants_checkpoint_is_named_in_the_error(rfpp_release):
    path, _ = rfpp_release
    with pytest.raises(ValueError, match=r"RestoreFormer\+\+\.ckpt: does not match the restoreformer architecture "
                       r"\(36 unexpected .*use the method 'restoreformer\+\+'"):
        RestoreFormerMethod(weights=str(path))


def test_checkpoint_containers_are_recognised():
    sd = {"encoder.conv_in.weight": torch.zeros(1), "quant_conv.bias": torch.ones(1)}
    lightning = {"state_dict": {**{f"vqvae.{k}": v for k, v in sd.items()}, "loss.logvar": torch.zeros(1),
                                "vqvae.quantize.utility_counter": torch.zeros(3)}}
    for obj in (lightning, {"params_ema": sd}, {"params": sd}, sd, {"state_dict": sd}):
        got, _ = extract_restoreformer_state(obj)
        assert got.keys() == sd.keys() and all(got[k] is sd[k] or torch.equal(got[k], sd[k]) for k in sd)
    assert sorted(extract_restoreformer_state(lightning)[1]) == ["loss.logvar", "vqvae.quantize.utility_counter"]
    with pytest.raises(ValueError, match=r"x\.ckpt: not a RestoreFormer checkpoint.*bfrbench fetch"):
        extract_restoreformer_state({"params_ema": {"conv_body_first.weight": torch.zeros(1)}}, "x.ckpt")


@pytest.mark.parametrize("name", ["restoreformer", "restoreformer++"])
def test_missing_managed_weights_say_how_to_fetch(name):
    with pytest.raises(W.MissingWeightsError, match=rf"bfrbench fetch {name.replace('+', '[+]')}"):
        bench.create_method(name)


def test_registered():
    bench.list_methods()
    for name in ("restoreformer", "restoreformer++"):
        meta = METHODS.entry(name).meta
        assert meta["weights"] == [name] and meta["defaults"] == {} and not meta["takes_quality"]


def test_precision_is_not_a_method_parameter():
    with pytest.raises(TypeError):
        SmallRF(weights="random", dtype="bf16")  # the engine's --dtype is the one knob


@pytest.fixture(scope="module")
def small_rfpp():
    return SmallRFPP(weights="random")


def test_random_weights_are_labelled_standin_and_deterministic(small_rfpp):
    assert small_rfpp.info().standin and small_rfpp.weights_info[0].name == "restoreformer++"
    x = _faces(1)
    assert torch.equal(small_rfpp.restore(x), small_rfpp.restore(x))


def test_restore_is_batched_in_range_and_batch_independent(small_rfpp):
    x = _faces(3)
    assert_batch_independent(small_rfpp, x, atol=1e-4)


def test_method_equals_the_network_in_official_range(small_rfpp):
    x = _faces(2)
    with torch.no_grad():
        want = (small_rfpp.net(x * 2 - 1).clamp(-1, 1) + 1) / 2
    assert torch.equal(small_rfpp.restore(x), want)


def test_off_size_input_is_resized_like_cv2(small_rfpp):
    big = astronaut(96)
    small = cv2.resize(big, (64, 64), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(small_rfpp.restore(to_batch(big)), small_rfpp.restore(to_batch(small)))


def test_input_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        build_restoreformer("restoreformer")(torch.zeros(1, 3, 48, 48))
