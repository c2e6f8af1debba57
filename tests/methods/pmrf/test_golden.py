"""``pmrf`` against the official PMRF code (ohayonguy/PMRF b6f16a4, ``generate_reconstructions``) on stand-in weights.

tests/fixtures/golden/pmrf_128.npz holds the official output for the reduced networks of
tests/_helpers/pmrf_tiny.py on ``standin_state_dict`` weights, a 128 x 128 astronaut, 3 Euler steps, the source
noise being ours for (seed 0, key "astronaut"); made by tests/fixtures/golden/make_pmrf_golden.py (NATTEN
replaced there by a brute-force masked attention with NATTEN's window rule, see its docstring).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._helpers.baselines_support import assert_informative, to_batch, to_uint8
from tests._helpers.official_refs import FIXTURES
from tests._helpers.pmrf_tiny import TinyPMRF


class GoldenPMRF(TinyPMRF):
    input_size = output_size = 128


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "golden" / "pmrf_128.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def ours(golden) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = GoldenPMRF(steps=int(golden["steps"]), weights="random")
    m.bind_noise(int(golden["seed"]), [str(golden["key"])])
    y = to_batch(golden["input_rgb"])
    out = m.restore(y)
    with torch.no_grad():
        z0 = m.net.posterior_mean(y)
    return to_uint8(out)[0], to_uint8(z0)[0], out[0].permute(1, 2, 0).numpy()


def test_posterior_mean_matches_official(golden, ours):
    diff = np.abs(ours[1].astype(int) - golden["posterior_mean_rgb"].astype(int))
    assert diff.max() <= 1, f"SwinIR: max {diff.max()} grey levels"


def test_flow_output_matches_official_within_one_level(golden, ours):
    ref = golden["output_rgb"]
    assert_informative(ref)
    assert float(golden["saturated_fraction"]) < 0.05  # the comparison is not over clipped pixels
    diff = np.abs(ours[0].astype(int) - ref.astype(int))
    assert diff.max() <= 1, f"{(diff > 1).mean():.4%} of values differ by more than 1 level (max {diff.max()})"
    # the float outputs agree far below a grey level (the measured figure is in docs/methods.md)
    assert np.abs(ours[2] - golden["output_float"].transpose(1, 2, 0)).max() < 1e-4


def test_other_noise_gives_another_output(golden):
    m = GoldenPMRF(steps=int(golden["steps"]), weights="random")
    m.bind_noise(1, [str(golden["key"])])  # another run seed
    out = to_uint8(m.restore(to_batch(golden["input_rgb"])))[0]
    assert np.abs(out.astype(int) - golden["output_rgb"].astype(int)).max() > 1
