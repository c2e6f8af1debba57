"""``restoreformer`` against official code: GFPGAN's copy of RestoreFormer (``gfpgan==1.3.8`` wheel).

That copy is the RestoreFormer release configuration (8 heads, decoder attention at 16x16) with the
official parameter names; it is loaded with the same deterministic random weights, run through the
official preprocessing on BGR uint8, and compared with ``method.restore``. Default: 64x64 faces
(the network takes any multiple of 32); ``slow``: 512.
"""
from __future__ import annotations

import numpy as np
import pytest

import bench
from methods.restoreformer.method import RestoreFormerMethod, standin_state_dict
from tests._helpers.baselines_support import (
    assert_informative,
    assert_matches,
    astronaut,
    manifest_shapes,
    official_forward,
    official_restoreformer_module,
    to_batch,
    to_uint8,
    write_checkpoint,
)

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def official_pair(tmp_path_factory):
    """GFPGAN's RestoreFormer loaded from a release-layout checkpoint, and that checkpoint's path."""
    state = standin_state_dict(manifest_shapes("restoreformer"), seed=0)
    path = write_checkpoint(tmp_path_factory.mktemp("rf") / "RestoreFormer.ckpt", state, "lightning")
    net = official_restoreformer_module().RestoreFormer().eval()
    net.load_state_dict(state, strict=True)
    return net, path


class SmallRF(RestoreFormerMethod):
    input_size = output_size = 64


def test_gfpgan_copy_has_the_official_restoreformer_manifest(official_pair):
    net, _ = official_pair
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == list(manifest_shapes("restoreformer").items())


def test_matches_official_64(official_pair):
    net, path = official_pair
    faces = [astronaut(64), np.ascontiguousarray(astronaut(64)[::-1])]
    refs = [official_forward(lambda x: net(x, weight=0.5)[0], f) for f in faces]
    ours = to_uint8(SmallRF(weights=str(path)).restore(to_batch(*faces)))
    for got, ref in zip(ours, refs):
        assert_informative(ref)
        assert_matches(got, ref, tol=1, frac=0.999)


@pytest.mark.slow
def test_matches_official_512(official_pair):
    net, path = official_pair
    face = astronaut(512)
    ref = official_forward(lambda x: net(x, weight=0.5)[0], face)
    ours = to_uint8(bench.create_method("restoreformer", weights=str(path)).restore(to_batch(face)))[0]
    assert_informative(ref)
    assert_matches(ours, ref, tol=1, frac=0.99)

