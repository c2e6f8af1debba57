"""``daefr`` against the golden output of the official DAEFR code (LIAGM/DAEFR ``DAEFRModel``, CPU float32).

tests/fixtures/golden/daefr_64.npz holds the official network's output for the method's ``weights="random"``
stand-in (per-tensor sums recorded) on a reduced network and a fixed face; how it was made: daefr_golden.md.
"""
from __future__ import annotations

import hashlib

import numpy as np

from tests._helpers.baselines_support import assert_informative, to_batch, to_uint8
from tests._helpers.official_refs import FIXTURES
from tests.methods.daefr.conftest import SmallDAEFR


def test_matches_official_golden_64():
    small_random = SmallDAEFR(weights="random")
    with np.load(FIXTURES / "golden" / "daefr_64.npz") as z:
        golden = {k: z[k] for k in z.files}
    state = small_random.net.state_dict()
    names = [str(n) for n in golden["weight_names"]]
    assert sorted(state) == names
    sums = np.array([float(state[n].double().sum()) for n in names])
    bad = [n for n, a, b in zip(names, sums, golden["weight_sums"]) if not np.isclose(a, b, rtol=1e-6, atol=1e-6)]
    assert not bad, f"stand-in weights differ from the golden's (regenerate per daefr_golden.md): {bad[:3]}"
    face = golden["input_rgb"]
    assert hashlib.sha256(face.tobytes()).hexdigest() == str(golden["input_sha256"])
    ref = golden["output_rgb"]
    assert_informative(ref)
    ours = to_uint8(small_random.restore(to_batch(face)))[0]
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() <= 1, f"{(diff > 1).mean():.4%} of values differ by more than 1 level (max {diff.max()})"
