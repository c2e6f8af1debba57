"""Identity metrics: ArcFace-18 architecture and VQFR preprocessing, angle / cosine, insightface ONNX path."""
from __future__ import annotations

import io
import json
import math
import warnings

import cv2
import numpy as np
import pytest
import torch

from bench.core.registry import METRICS
from bench.data.align import similarity_lstsq
from bench.metrics import MetricUnavailable
from bench.metrics.arcface_arch import ResNetArcFace, load_arcface
from bench.metrics.identity import (
    ARCFACE_DST_112,
    FFHQ_TEMPLATE_512,
    IdentityAngle,
    IdentityCosine,
    InsightFaceIdentity,
    grey128,
)
from tests._helpers.learned_helpers import random_faces
from tests._helpers.official_refs import FIXTURES


@pytest.fixture
def arcface_ckpt(random_arcface_ckpt):
    """Random ArcFace-18 weights saved with a DataParallel ``module.`` prefix, as the release (once per session)."""
    return random_arcface_ckpt


def test_arch_matches_manifest():
    manifest = json.loads((FIXTURES / "manifests" / "arcface_resnet18.json").read_text())
    state = ResNetArcFace().state_dict()
    assert list(state) == list(manifest["tensors"])
    assert {k: list(v.shape) for k, v in state.items()} == manifest["tensors"]
    assert sum(v.numel() for v in state.values()) == manifest["num_params"] == 25640807


def test_strict_load_with_and_without_prefix(tmp_path, arcface_ckpt):
    path, state = arcface_ckpt
    net = load_arcface(path)
    bare = tmp_path / "bare.pth"
    torch.save(state, bare)
    x = grey128(random_faces(2, 128, seed=1))
    with torch.no_grad():
        torch.testing.assert_close(net(x), load_arcface(bare)(x))
    broken = dict(state)
    broken.pop("fc5.weight")
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="not an ArcFace ResNet-18"):
        load_arcface(tmp_path / "broken.pth")


def _vqfr_load_image(path) -> torch.Tensor:
    """VQFR metric_paper/calculate_cos_dist.py load_image, restated."""
    image = cv2.imread(str(path), 0)
    image = cv2.resize(image, (128, 128), interpolation=cv2.INTER_LINEAR)
    image = image[np.newaxis].astype(np.float32)
    return torch.from_numpy((image - 127.5) / 127.5)


def _save_png(path, img: torch.Tensor) -> None:
    rgb = (img * 255).round().byte().permute(1, 2, 0).numpy()
    cv2.imwrite(str(path), rgb[:, :, ::-1])


def test_grey128_png_equals_cv2_imread_of_png(tmp_path):
    imgs = random_faces(2, 200, seed=3)
    for i, im in enumerate(imgs):
        _save_png(tmp_path / f"{i}.png", im)
    ours = grey128(imgs, "png")
    ref = torch.stack([_vqfr_load_image(tmp_path / f"{i}.png") for i in range(2)])
    assert ours.shape == (2, 1, 128, 128)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    # the decoder's RGB->grey is not cvtColor's: the modes really differ (1 level, 2 after the resize)
    cv = grey128(imgs, "cv2")
    diff = (cv - ours).abs().max().item() * 127.5
    assert 0.5 < diff <= 2.0 + 1e-4
    # GFPGAN's float variant
    x = imgs * 2 - 1
    g = (0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]).unsqueeze(1)
    ref_t = torch.nn.functional.interpolate(g, (128, 128), mode="bilinear", align_corners=False)
    torch.testing.assert_close(grey128(imgs, "torch"), ref_t)
    with pytest.raises(ValueError, match="grey must be"):
        grey128(imgs, "luma")


def test_ids_angle_reproduces_vqfr_script(tmp_path, arcface_ckpt):
    """Per pair: arccos(cos)/pi*180 of the embeddings of [gt, restored] read from PNGs (VQFR's loop)."""
    path, _ = arcface_ckpt
    pred, gt = random_faces(3, 160, seed=10), random_faces(3, 160, seed=11)
    net = load_arcface(path)
    expected = []
    for i in range(3):
        _save_png(tmp_path / f"gt{i}.png", gt[i])
        _save_png(tmp_path / f"re{i}.png", pred[i])
        data = torch.stack([_vqfr_load_image(tmp_path / f"gt{i}.png"), _vqfr_load_image(tmp_path / f"re{i}.png")])
        with torch.no_grad():
            out = net(data).numpy()
        cos = np.dot(out[0], out[1]) / (np.linalg.norm(out[0]) * np.linalg.norm(out[1]))
        expected.append(np.arccos(cos) / math.pi * 180)
    metric = METRICS.create("ids", weights=str(path))
    assert metric.protocol == "vqfr-arcface18-gray128-deg-drop1" and not metric.higher_better
    got = metric.update(pred, gt)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-3)
    assert min(expected) > 1.0  # all kept
    assert metric.compute() == pytest.approx(float(np.mean(expected)), abs=1e-3)


def test_ids_drops_near_identical_pairs(arcface_ckpt):
    path, _ = arcface_ckpt
    x, y = random_faces(2, 128, seed=20), random_faces(2, 128, seed=21)
    vqfr = IdentityAngle(weights=str(path))
    vals = vqfr.update(torch.cat([x[:1], x[1:]]), torch.cat([x[:1], y[1:]]))
    assert vals[0] < 1e-3 and vals[1] > 1.0
    assert vqfr.compute() == pytest.approx(float(vals[1]))  # the identical pair is left out
    assert float(vqfr.state()["dropped"]) == 1
    keep_all = IdentityAngle(weights=str(path), drop_below=0)
    assert keep_all.protocol == "vqfr-arcface18-gray128-deg"
    keep_all.update(torch.cat([x[:1], x[1:]]), torch.cat([x[:1], y[1:]]))
    assert keep_all.compute() == pytest.approx(float(vals.mean()), rel=1e-9)
    only_same = IdentityAngle(weights=str(path))
    only_same.update(x, x)
    assert math.isnan(only_same.compute())
    assert IdentityAngle(weights=str(path), grey="torch").protocol.endswith("-torchgrey")


def test_ids_cos_and_merge(arcface_ckpt):
    path, _ = arcface_ckpt
    pred, gt = random_faces(4, 128, seed=30), random_faces(4, 128, seed=31)
    angle = IdentityAngle(weights=str(path), drop_below=0)
    deg = angle.update(pred, gt)
    whole = IdentityCosine(weights=str(path))
    assert whole.higher_better and whole.protocol == "arcface18-gray128-cos"
    cos = whole.update(pred, gt)
    torch.testing.assert_close(torch.rad2deg(torch.arccos(cos)), deg)
    merged = IdentityAngle(weights=str(path), drop_below=0)
    for sl in (slice(0, 3), slice(3, 4)):
        part = IdentityAngle(weights=str(path), drop_below=0)
        part.update(pred[sl], gt[sl])
        buf = io.BytesIO()
        torch.save(part.state(), buf)
        merged.merge_state(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert merged.compute() == pytest.approx(angle.compute(), rel=1e-6)  # batch sizes differ: float32 noise


def test_identity_unavailable_messages(monkeypatch, tmp_path):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path))  # an empty cache, whatever the session fetched
    monkeypatch.setenv("BFRBENCH_AUTO_FETCH", "0")  # PyPI assets are otherwise fetched on first use
    with pytest.raises(MetricUnavailable) as e:
        METRICS.create("ids")
    assert "github.com/TencentARC/GFPGAN/releases/download/v0.1.0/arcface_resnet18.pth" in str(e.value)
    assert "bfrbench fetch arcface_resnet18" in str(e.value)
    with pytest.raises(MetricUnavailable) as e:
        METRICS.create("ids-insightface")
    assert "buffalo_l.zip" in str(e.value) and "w600k_r50.onnx" in str(e.value)
    with pytest.raises(MetricUnavailable) as e:
        METRICS.create("ids-dlib")
    assert "face-recognition-models==0.3.0" in str(e.value)


# ----------------------------------------------------------------------------- insightface path


def _skimage_similarity(src, dst) -> np.ndarray:
    """insightface's estimate_norm: skimage SimilarityTransform fitted src -> dst."""
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):
        return SimilarityTransform.from_estimate(src, dst).params[:2]
    t = SimilarityTransform()
    t.estimate(src, dst)
    return t.params[:2]


def test_the_one_similarity_transform_matches_skimage(rng):
    """ArcFace crops use the alignment's closed-form similarity (one implementation): skimage's Umeyama estimate."""
    for _ in range(20):
        src = FFHQ_TEMPLATE_512 * rng.uniform(0.3, 1.5) + rng.normal(0, 5, FFHQ_TEMPLATE_512.shape)
        np.testing.assert_allclose(similarity_lstsq(src, ARCFACE_DST_112), _skimage_similarity(src, ARCFACE_DST_112),
                                   atol=1e-9)


@pytest.fixture(scope="module")
def flatten_onnx(tmp_path_factory):
    """A tiny ONNX 'recognition model' that returns its input flattened: the embedding is the blob."""
    pytest.importorskip("onnx")

    class Flatten(torch.nn.Module):
        def forward(self, x):
            return torch.flatten(x, 1) * 1.0

    path = tmp_path_factory.mktemp("onnx") / "w600k_r50.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(Flatten(), (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False,
                          input_names=["input.1"], output_names=["embedding"], dynamic_axes={"input.1": {0: "b"}})
    return path


def test_insightface_preprocessing(tmp_path, flatten_onnx):
    metric = InsightFaceIdentity(weights=str(flatten_onnx))
    assert metric.size == 112 and not metric.standard
    img = random_faces(2, 512, seed=40)
    img[1, 0] = 1.0  # a saturated red channel: channel order shows in the blob
    emb = metric.embed(img)
    rgb = (img * 255).round().byte().permute(0, 2, 3, 1).numpy()
    m = _skimage_similarity(FFHQ_TEMPLATE_512, ARCFACE_DST_112)
    for i in range(2):
        crop = cv2.warpAffine(rgb[i], m, (112, 112), borderValue=0.0)
        ref = (crop.astype(np.float32).transpose(2, 0, 1) - 127.5) / 127.5
        np.testing.assert_allclose(emb[i].numpy(), ref.reshape(-1), atol=1e-6)
    assert emb[1, : 112 * 112].min() == pytest.approx(1.0)  # RGB order (red first)
    # the metric is the cosine of those embeddings; the same image scores 1
    s = metric.update(img, img.flip(0))
    ref_cos = torch.nn.functional.cosine_similarity(emb[0:1], emb[1:2]).item()
    assert s[0].item() == pytest.approx(ref_cos, abs=1e-9)
    assert metric.update(img[:1], img[:1])[0].item() == pytest.approx(1.0, abs=1e-9)
    # the model may also come as the buffalo_l zip
    import zipfile

    with zipfile.ZipFile(tmp_path / "buffalo_l.zip", "w") as zf:
        zf.write(flatten_onnx, "buffalo_l/w600k_r50.onnx")
    zipped = InsightFaceIdentity(weights=str(tmp_path / "buffalo_l.zip"))
    torch.testing.assert_close(zipped.embed(img), emb)


def test_ids_rad_reproduces_restoreformerpp_script(tmp_path, arcface_ckpt):
    """RestoreFormer++ cal_identity_distance.py: cv2.imread (BGR) / 255, RGB weights on BGR, radians."""
    path, _ = arcface_ckpt
    pred, gt = random_faces(3, 160, seed=12), random_faces(3, 160, seed=13)
    net = load_arcface(path)
    expected = []
    for i in range(3):
        feats = []
        for name, img in (("gt", gt[i]), ("re", pred[i])):
            _save_png(tmp_path / f"{name}{i}.png", img)
            bgr = cv2.imread(str(tmp_path / f"{name}{i}.png")).astype(np.float32) / 255.0
            x = torch.from_numpy(bgr).permute(2, 0, 1).unsqueeze(0)
            g = (0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]).unsqueeze(1)
            g = torch.nn.functional.interpolate(g, (128, 128), mode="bilinear", align_corners=False)
            with torch.no_grad():
                feats.append(net(g).numpy().squeeze())
        expected.append(float(np.arccos(np.dot(feats[0], feats[1]) / (np.linalg.norm(feats[0]) * np.linalg.norm(feats[1])))))
    metric = METRICS.create("ids-rad", weights=str(path))
    assert metric.protocol == "rfpp-arcface18-bgrgray01-128-rad" and not metric.higher_better
    got = metric.update(pred, gt)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert metric.compute() == pytest.approx(float(np.mean(expected)), rel=1e-6)
    same = metric.update(gt[:1], gt[:1])  # the script's unclipped arccos would give NaN here
    assert 0 <= same.item() < 1e-3
