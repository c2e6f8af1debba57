"""IQPIR against golden outputs of the official code (tests/fixtures/golden/iqpir_seeded_golden.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from bench.core.device import to_uint8_levels
from methods.iqp_bfr.arch import CodeLookupNet
from tests.official_refs import load_manifest, seeded_state_dict

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden" / "iqpir_seeded_golden.npz"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN))


@pytest.fixture(scope="module")
def seeded_sd(golden) -> dict[str, torch.Tensor]:
    return seeded_state_dict(load_manifest("iqpir_dual_codebook_score_add")["tensors"], seed=int(golden["seed"]))


def _input(golden) -> torch.Tensor:
    small = np.random.default_rng(int(golden["input_seed"])).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def test_predicted_codes_match_official(golden, seeded_sd):
    net = CodeLookupNet("iqpir").eval()
    net.load_state_dict(seeded_sd, strict=True)
    with torch.no_grad():
        z, _ = net.encode(_input(golden) * 2 - 1)
        for score in ("0.9", "0.3"):
            lq, cond = net.condition(z, float(score))
            logits = net.predict_logits(lq, cond)[0]
            codes = logits.argmax(dim=1).numpy()
            assert (codes != golden[f"codes_{score}"]).sum() <= 2, score  # allow a BLAS near-tie or two
            np.testing.assert_allclose(logits[:2].numpy(), golden[f"logits_{score}"], atol=2e-4)


@pytest.mark.slow
@pytest.mark.parametrize("w", ["0", "0.5"])
def test_restore_matches_official_output(golden, seeded_sd, w, tmp_path):
    path = tmp_path / "iqpir_seeded.pth"
    torch.save({"params_ema": seeded_sd}, path)
    method = bench.create_method("iqp-bfr", weights=str(path), quality=0.9, fidelity=float(w))
    out = (to_uint8_levels(method.restore(_input(golden)))[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    sub = out[::4, ::4].astype(int)
    assert (np.abs(sub - golden[f"out_w{w}_sub4"]) <= 1).mean() >= 0.99
    blocks = out.reshape(32, 16, 32, 16, 3).astype(np.float64).mean((1, 3))
    assert np.abs(blocks - golden[f"out_w{w}_blockmean16"]).max() < 0.1
    assert out.std() > 10  # not a constant image
