"""ArcFace-18 parity with the official ResNetArcFace (gfpgan==1.3.8 wheel), same random weights."""
from __future__ import annotations

import pytest
import torch

from bench.metrics.arcface_arch import ResNetArcFace
from bench.metrics.identity import grey128
from tests._helpers.learned_helpers import random_faces, random_state
from tests._helpers.official_refs import StubRegistry, load_official_module

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def official():
    stubs = {"basicsr": {}, "basicsr.utils": {}, "basicsr.utils.registry": {"ARCH_REGISTRY": StubRegistry()}}
    return load_official_module("gfpgan==1.3.8", "gfpgan/archs/arcface_arch.py", stubs)


@pytest.mark.parametrize("use_se", [False, True])
def test_arcface_matches_official(official, use_se):
    ours = ResNetArcFace(use_se=use_se).eval()
    ref = official.ResNetArcFace(block="IRBlock", layers=[2, 2, 2, 2], use_se=use_se).eval()
    state = random_state(ref, seed=7)
    ref.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)  # identical names and shapes
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = grey128(random_faces(3, 256, seed=3))
    with torch.no_grad():
        a, b = ours(x), ref(x)
    assert a.shape == (3, 512) and a.std() > 1e-3
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
