"""``vqfr`` against golden outputs of the official VQFR code (TencentARC/VQFR ``VQFRv2``, CPU).

tests/fixtures/golden/vqfr_{64,512}.npz hold the official network's outputs (``VQFR_Demo.enhance``'s
aligned path, ``tensor2img`` rounding) for the method's ``weights="random"`` stand-in (per-tensor sums
recorded) and a fixed face, at each stored ``fidelity_ratio``; how they were made: vqfr_golden.md.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import bench
from tests._helpers.baselines_support import (
    assert_golden_weights,
    assert_informative,
    astronaut,
    load_golden,
    to_batch,
    to_uint8,
)
from tests.methods.vqfr._small import SmallVQFR


def _compare(method, face: np.ndarray, golden: dict[str, np.ndarray]) -> None:
    step = int(golden["stride"])
    for ratio in golden["fidelity"]:
        method.fidelity_ratio = float(ratio)
        ours = to_uint8(method.restore(to_batch(face)))[0][::step, ::step]
        ref = golden[f"output_rgb_f{float(ratio):g}"]
        assert_informative(ref)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1, f"fidelity {ratio}: {(diff > 1).mean():.4%} of values off by > 1 level (max {diff.max()})"


def test_matches_official_golden_64():
    golden = load_golden("vqfr_64")
    m = SmallVQFR(weights="random")
    assert_golden_weights(m.net, golden)
    face = golden["input_rgb"]
    assert hashlib.sha256(face.tobytes()).hexdigest() == str(golden["input_sha256"])
    assert list(golden["fidelity"]) == [0.0, 0.5, 1.0]
    _compare(m, face, golden)


@pytest.mark.soak  # two 512 forwards of the 83 M-parameter network: about a minute on one core
def test_matches_official_golden_512():
    golden = load_golden("vqfr_512")
    m = bench.create_method("vqfr", weights="random")
    assert_golden_weights(m.net, golden)
    face = astronaut(512)
    if hashlib.sha256(face.tobytes()).hexdigest() != str(golden["input_sha256"]):
        pytest.fail("scikit-image's astronaut image changed: regenerate the golden (see its .md note)")
    _compare(m, face, golden)
