"""``gpen`` against golden outputs of the official GPEN code (yangxy/GPEN ``FaceGAN``, CPU paths).

tests/fixtures/golden/gpen_{64,512}.npz hold the official network's outputs for the method's
``weights="random"`` stand-in (per-tensor sums recorded) and a fixed face; how they were made:
gpen_golden.md. ``output_rgb`` is the official float output rounded as the runner rounds;
``official_written_rgb`` is what the official ``tensor2img`` writes (truncated to uint8).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import bench
from methods.gpen.arch import GPEN
from methods.gpen.method import GPENMethod
from tests._helpers.baselines_support import (
    assert_golden_weights,
    assert_informative,
    astronaut,
    load_golden,
    to_batch,
    to_uint8,
)


def _compare(ours: np.ndarray, golden: dict[str, np.ndarray]) -> None:
    ref, written = golden["output_rgb"], golden["official_written_rgb"]
    assert_informative(ref)
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() <= 1, f"{(diff > 1).mean():.4%} of values differ by more than 1 level (max {diff.max()})"
    # the official file truncates: never above our rounded value, at most one level below
    gap = ref.astype(int) - written.astype(int)
    assert gap.min() >= 0 and gap.max() <= 1


class SmallGPEN(GPENMethod):
    input_size = output_size = 64

    def build_net(self) -> GPEN:
        return GPEN(size=64, narrow=0.25)


def test_matches_official_golden_64():
    golden = load_golden("gpen_64")
    assert float(golden["narrow"]) == 0.25
    m = SmallGPEN(weights="random")
    assert_golden_weights(m.net, golden)
    face = golden["input_rgb"]
    assert hashlib.sha256(face.tobytes()).hexdigest() == str(golden["input_sha256"])
    _compare(to_uint8(m.restore(to_batch(face)))[0], golden)


@pytest.mark.slow
def test_matches_official_golden_512():
    golden = load_golden("gpen_512")
    m = bench.create_method("gpen", weights="random")
    assert_golden_weights(m.net, golden)
    face = astronaut(512)
    if hashlib.sha256(face.tobytes()).hexdigest() != str(golden["input_sha256"]):
        pytest.fail("scikit-image's astronaut image changed: regenerate the golden (see its .md note)")
    step = int(golden["stride"])
    _compare(to_uint8(m.restore(to_batch(face)))[0][::step, ::step], golden)
