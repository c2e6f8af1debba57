"""The official whole-image pipeline against facexlib 0.3.0 itself (issue #25), stage by stage.

Both sides get the same seeded RetinaFace ResNet-50 weights, the same parser and background stand-ins
and the same ``restore`` (a fixed colour transform), so only the pipelines are compared:

* detector network: raw outputs equal (atol 1e-4); boxes, scores and landmarks after thresholding,
  sorting and NMS equal (atol 1e-3 px) on the same image with a threshold that keeps a few hundred anchors;
* the geometric stages given the same landmarks (random weights find no real face, so the landmarks
  come from where the test pasted its faces): kept faces, affine matrices (1e-9), aligned crops
  (equal), inverse affines (1e-9), and the final image within 1 grey level, on whole images with
  1, 3 and 0 faces (one cut by the image border), at upscale 1 and 2, with and without a background
  upsampler and the square-mask variant (``use_parse=False``);
* the CodeFormer flavour against CodeFormer's own facelib helper (codeformer-pip 0.0.4), final image
  within 1 grey level, and ``restore --pipeline official|official-codeformer`` end to end (stand-in networks).
"""
from __future__ import annotations

from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.data.align import align_face, face_template
from bench.data.face_parsing import FaceParser, mask_from_labels
from bench.data.official_pipeline import CODEFORMER, OfficialOptions, OfficialPipeline, detect_landmarks
from bench.data.retinaface_resnet50 import RetinaFaceR50, load_retinaface_r50
from bench.data.whole_image import restore_whole
from tests._helpers.official_refs import load_manifest, seeded_state_dict
from tests._helpers.pipeline_refs import (
    codeformer_restore_helper,
    facexlib_parsenet,
    facexlib_restore_helper,
    facexlib_retinaface,
)

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def fx():
    """facexlib's RetinaFace module and FaceRestoreHelper module (tests/_helpers/pipeline_refs.py)."""
    return facexlib_retinaface(), facexlib_restore_helper()


def _new_helper(mod, *args, **kwargs):
    """A FaceRestoreHelper built by its own __init__, its model loaders answering None (the test sets the models)."""
    with mock.patch.multiple(mod, init_detection_model=lambda *a, **k: None, init_parsing_model=lambda *a, **k: None):
        return mod.FaceRestoreHelper(*args, **kwargs)


@pytest.fixture(scope="module")
def cf_helper():
    return codeformer_restore_helper()


@pytest.fixture(scope="module")
def r50_state():
    sd = seeded_state_dict(load_manifest("retinaface_resnet50")["tensors"], seed=25)
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = 1.0 + sd[k].abs() * 5  # positive variances (the generic scaling draws N(0, 0.02))
    return sd


def _synthetic_face(seed: int) -> np.ndarray:
    """A 512 'aligned face': textured ellipse, darker eyes and mouth at the FFHQ template points."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), (0, 0), 6)
    cv2.ellipse(img, (256, 280), (170, 220), 0, 0, 360, (200, 160, 130), -1)
    for x, y in face_template(512).astype(int):
        cv2.circle(img, (int(x), int(y)), 14, (40, 30, 30), -1)
    return cv2.GaussianBlur(img, (0, 0), 2)


def _scene(placements: list[tuple[float, float, float, float]], h: int = 300, w: int = 360, seed: int = 0):
    """A whole image with synthetic faces warped in at (cx, cy, side, angle); returns (rgb, landmarks list)."""
    rng = np.random.default_rng(seed)
    canvas = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 4)
    lms = []
    for i, (cx, cy, side, angle) in enumerate(placements):
        m = cv2.getRotationMatrix2D((256.0, 256.0), angle, side / 512.0)
        m[:, 2] += np.array([cx, cy]) - 256.0
        face = cv2.warpAffine(_synthetic_face(i), m, (w, h), flags=cv2.INTER_LINEAR)
        inside = cv2.warpAffine(np.ones((512, 512), np.float32), m, (w, h))[:, :, None]
        canvas = (inside * face + (1 - inside) * canvas).astype(np.uint8)
        lms.append((face_template(512) @ m[:, :2].T + m[:, 2]).astype(np.float32))
    return canvas, lms


SCENES = {
    "one": [(180, 150, 150, 8.0)],
    "three_one_at_border": [(80, 90, 110, -12.0), (230, 170, 130, 5.0), (345, 60, 120, 20.0)],
    "none": [],
}


def _restore(crops: list[np.ndarray]) -> list[np.ndarray]:
    """A fixed, colour-order-aware 'restoration': channels rolled, contrast changed."""
    return [np.clip(c[:, :, [1, 2, 0]].astype(np.float32) * 0.7 + 40, 0, 255).astype(np.uint8) for c in crops]


def _labels(rgb: np.ndarray) -> np.ndarray:
    """The stand-in parser's classes: skin (1) in an ellipse, hair (17) where red dominates, else background."""
    yy, xx = np.mgrid[:512, :512]
    lab = np.where(((xx - 256) / 190.0) ** 2 + ((yy - 270) / 230.0) ** 2 < 1, 1, 0)
    return np.where((lab == 1) & (rgb[:, :, 0].astype(int) > rgb[:, :, 1].astype(int) + 40), 17, lab)


class StandInParser:
    """Our side of the parser stand-in: facexlib's mask recipe (bench.data.face_parsing) on ``_labels``."""

    def soft_masks(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        return [mask_from_labels(_labels(f)) for f in faces]


class FacexlibParserNet(torch.nn.Module):
    """facexlib's side: logits whose argmax is ``_labels`` of the (de-normalised, RGB) input."""

    def forward(self, x: torch.Tensor):
        rgb = ((x[0] * 0.5 + 0.5) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        logits = torch.nn.functional.one_hot(torch.from_numpy(_labels(rgb)), 19).permute(2, 0, 1)[None].float()
        return logits, None


class KnownFaces:
    """A detector returning fixed detections (N, 15): boxes around the landmarks, score 0.99.

    The landmarks are given on an image of ``shape``; on a resized image they are scaled with it.
    """

    def __init__(self, lms: list[np.ndarray], shape: tuple[int, ...] = (300, 360)) -> None:
        rows = []
        for lm in lms:
            lo, hi = lm.min(0) - 40, lm.max(0) + 40
            rows.append(np.concatenate([lo, hi, [0.99], lm.reshape(-1)]).astype(np.float32))
        self.dets, self.shape = np.array(rows, np.float32).reshape(-1, 15), shape[:2]

    def detect(self, rgb, conf_threshold=0.8, nms_threshold=0.4):
        sy, sx = rgb.shape[0] / self.shape[0], rgb.shape[1] / self.shape[1]
        scale = np.array([sx, sy, sx, sy, 1.0] + [sx, sy] * 5, np.float32)
        return (self.dets * scale)[self.dets[:, 4] > conf_threshold]

    def detect_faces(self, bgr, conf_threshold=0.8):  # facexlib's name for the same
        return self.detect(bgr, conf_threshold)


class NearestUpsampler:
    """Background upsampler stand-in: nearest-neighbour resize by ``outscale`` (RGB in, RGB out)."""

    def enhance(self, rgb: np.ndarray, outscale: float) -> np.ndarray:
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, (int(w * outscale), int(h * outscale)), interpolation=cv2.INTER_NEAREST)


def _facexlib_run(helper_mod, bgr, detector, upscale, use_parse=True, bg=None, parse_net=None):
    """GFPGAN's ``GFPGANer.enhance`` flow through facexlib's FaceRestoreHelper; returns the helper and image."""
    h = _new_helper(helper_mod, upscale, face_size=512, crop_ratio=(1, 1), det_model="retinaface_resnet50",
                    save_ext="png", use_parse=use_parse, device=torch.device("cpu"))
    h.face_det, h.face_parse = detector, parse_net or FacexlibParserNet()
    h.read_image(bgr)
    h.get_face_landmarks_5(only_center_face=False, eye_dist_threshold=5)
    h.align_warp_face()
    for crop in h.cropped_faces:
        h.add_restored_face(_restore([crop[:, :, ::-1]])[0][:, :, ::-1].copy())
    h.get_inverse_affine(None)
    out = h.paste_faces_to_input_image(upsample_img=None if bg is None else bg[:, :, ::-1].copy())
    return h, out[:, :, ::-1]


CASES = [("one", 1, True, False), ("one", 2, True, True), ("none", 1, True, False), ("none", 2, True, True),
         *(("three_one_at_border", *c) for c in [(1, True, False), (2, True, False), (2, True, True), (2, False, False)])]


@pytest.mark.parametrize(("scene", "upscale", "use_parse", "with_bg"), CASES)
def test_pipeline_stages_and_image_match_facexlib(fx, scene, upscale, use_parse, with_bg):
    rgb, lms = _scene(SCENES[scene], seed=len(scene))
    bg = NearestUpsampler().enhance(rgb, upscale) if with_bg else None
    ref, ref_img = _facexlib_run(fx[1], np.ascontiguousarray(rgb[:, :, ::-1]), KnownFaces(lms), upscale, use_parse, bg)

    opts = OfficialOptions(use_parse=use_parse)
    faces = detect_landmarks(rgb, KnownFaces(lms), opts)
    assert len(faces) == len(ref.all_landmarks_5) == len(lms)
    for f, lm in zip(faces, ref.all_landmarks_5):
        np.testing.assert_allclose(f.landmarks5, lm, atol=1e-6)
    crops = []
    pipe = OfficialPipeline(KnownFaces(lms), StandInParser(), NearestUpsampler() if with_bg else None, opts)
    out = restore_whole(rgb, lambda c: (crops.extend(c), _restore(c))[1], upscale=upscale, pipeline=pipe)
    assert out.faces == len(lms)
    for ours, theirs in zip(crops, ref.cropped_faces):
        np.testing.assert_array_equal(ours, theirs[:, :, ::-1])  # alignment: same crop, same border colour
    from bench.data.align import estimate_affine, inverse_affine

    for f, a, inv in zip(faces, ref.affine_matrices, ref.inverse_affine_matrices):
        np.testing.assert_allclose(estimate_affine(f.landmarks5), a, atol=1e-9)
        np.testing.assert_allclose(inverse_affine(a, upscale), inv, atol=1e-9)  # facexlib's offset included
    assert out.image.shape == ref_img.shape == (rgb.shape[0] * upscale, rgb.shape[1] * upscale, 3)
    diff = np.abs(out.image.astype(int) - ref_img.astype(int))
    assert diff.max() <= 1, (scene, upscale, diff.max(), (diff > 0).mean())
    if lms:  # the faces changed the image: a pipeline that pasted nothing would fail here
        plain = cv2.resize(rgb if bg is None else bg, ref_img.shape[1::-1], interpolation=cv2.INTER_LANCZOS4)
        assert np.abs(out.image.astype(int) - plain).max() > 20


def _codeformer_run(helper_mod, bgr, detector, upscale, bg=None):
    """``inference_codeformer.py``'s whole-image flow through CodeFormer's facelib helper."""
    h = helper_mod.FaceRestoreHelper(upscale, face_size=512, crop_ratio=(1, 1), det_model="retinaface_resnet50",
                                     save_ext="png", use_parse=True, device=torch.device("cpu"))
    h.face_detector, h.face_parse = detector, FacexlibParserNet()
    h.clean_all()
    h.read_image(bgr)
    h.get_face_landmarks_5(only_center_face=False, resize=640, eye_dist_threshold=5)
    h.align_warp_face()
    for crop in h.cropped_faces:
        h.add_restored_face(_restore([crop[:, :, ::-1]])[0][:, :, ::-1].copy(), crop)
    h.get_inverse_affine(None)
    out = h.paste_faces_to_input_image(upsample_img=None if bg is None else bg[:, :, ::-1].copy(), draw_box=False)
    return h, out[:, :, ::-1]


@pytest.mark.parametrize(("scene", "upscale", "with_bg"),
                         [("one", 2, True), ("three_one_at_border", 1, False), ("three_one_at_border", 2, False),
                          ("none", 2, False)])
def test_codeformer_flavour_matches_codeformers_facelib(cf_helper, scene, upscale, with_bg):
    rgb, lms = _scene(SCENES[scene], seed=len(scene))
    bg = NearestUpsampler().enhance(rgb, upscale) if with_bg else None
    ref, ref_img = _codeformer_run(cf_helper, np.ascontiguousarray(rgb[:, :, ::-1]), KnownFaces(lms), upscale, bg)
    crops = []
    pipe = OfficialPipeline(KnownFaces(lms), StandInParser(), NearestUpsampler() if with_bg else None, CODEFORMER)
    out = restore_whole(rgb, lambda c: (crops.extend(c), _restore(c))[1], upscale=upscale, pipeline=pipe)
    assert out.faces == len(ref.all_landmarks_5) == len(lms)
    for ours, theirs in zip(crops, ref.cropped_faces):
        np.testing.assert_array_equal(ours, theirs[:, :, ::-1])
    h0 = 512 * upscale  # the 300x360 input is first enlarged to a 512 short side, as CodeFormer's read_image
    assert out.image.shape == ref_img.shape == (h0, int(360 * 512 / 300) * upscale, 3)
    diff = np.abs(out.image.astype(int) - ref_img.astype(int))
    assert diff.max() <= 1, (scene, upscale, diff.max(), (diff > 0).mean())


def test_eye_distance_threshold_and_center_face_as_facexlib(fx):
    rgb, lms = _scene(SCENES["three_one_at_border"], seed=3)
    tiny = (face_template(512) * 0.008 + 30).astype(np.float32)  # eye distance 1 px: dropped
    det = KnownFaces([*lms, tiny])
    ref, _ = _facexlib_run(fx[1], np.ascontiguousarray(rgb[:, :, ::-1]), det, 1)
    assert len(detect_landmarks(rgb, det)) == len(ref.all_landmarks_5) == 3
    centre = detect_landmarks(rgb, det, OfficialOptions(only_center_face=True))
    h = _new_helper(fx[1], 1, use_parse=True, device=torch.device("cpu"))
    h.face_det = det
    h.read_image(np.ascontiguousarray(rgb[:, :, ::-1]))
    h.get_face_landmarks_5(only_center_face=True, eye_dist_threshold=5)
    assert len(centre) == 1
    np.testing.assert_allclose(centre[0].landmarks5, h.all_landmarks_5[0], atol=1e-6)


@pytest.fixture(scope="module")
def detector_pair(fx, r50_state):
    ours = load_retinaface_r50(state_dict=r50_state)
    theirs = fx[0].RetinaFace(network_name="resnet50", device="cpu")
    theirs.load_state_dict(r50_state, strict=True)
    return ours, theirs.eval()


def test_retinaface_refuses_a_checkpoint_not_of_the_manifest(detector_pair, r50_state):
    assert isinstance(detector_pair[0], RetinaFaceR50)  # the manifest's names and shapes loaded strictly
    bad = dict(r50_state)
    bad.pop("ssh1.conv3X3.0.weight")
    with pytest.raises(RuntimeError, match="ssh1.conv3X3.0.weight"):
        load_retinaface_r50(state_dict=bad)


def test_retinaface_outputs_and_detections_match_facexlib(detector_pair):
    ours, theirs = detector_pair
    rgb, _ = _scene(SCENES["three_one_at_border"], h=160, w=200, seed=7)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    with torch.no_grad():
        x = torch.from_numpy(bgr.astype(np.float32).transpose(2, 0, 1))[None] - theirs.mean_tensor
        ref_raw = theirs(x)
    raw = ours.raw(rgb)
    for a, b in zip(raw, ref_raw):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    scores = raw[1][0, :, 1].numpy()
    thr = float(np.quantile(scores, 0.9))  # random weights: keep the top 10 % so NMS has work to do
    with torch.no_grad():  # as FaceRestoreHelper calls it
        ref = theirs.detect_faces(bgr, conf_threshold=thr, nms_threshold=0.4)
    got = ours.detect(rgb, conf_threshold=thr, nms_threshold=0.4)
    assert got.shape == ref.shape and 0 < len(got) < (scores > thr).sum()
    np.testing.assert_allclose(got[:, 4], ref[:, 4], atol=1e-5)  # scores
    np.testing.assert_allclose(got[:, :4], ref[:, :4], atol=1e-3)  # boxes (px)
    np.testing.assert_allclose(got[:, 5:], ref[:, 5:], atol=1e-3)  # landmarks (px)


def test_restore_cli_official_upscale_2_with_background_on_a_whole_imgs_folder(tmp_path, monkeypatch, registries, capsys):
    """CodeFormer's ``inputs/whole_imgs`` layout: one photo with faces (RGBA), one without; stand-in networks."""
    from bench.cli.app import main
    from bench.core.registry import METHODS
    from bench.data import official_pipeline
    from tests._helpers.runner_helpers import GreenMethod

    METHODS.add("test-green", GreenMethod)
    rgb, lms = _scene(SCENES["three_one_at_border"], seed=11)
    src = tmp_path / "inputs" / "whole_imgs"
    src.mkdir(parents=True)
    alpha = np.full(rgb.shape[:2], 200, np.uint8)
    cv2.imwrite(str(src / "group.png"), np.dstack([rgb[:, :, ::-1], alpha]))
    cv2.imwrite(str(src / "empty.png"), _scene([], seed=2)[0][:, :, ::-1])
    built = []

    def fake_load(device="cpu", bg_upsampler=None, options=None, **kw):  # the managed weights are not here
        built.append((bg_upsampler, options.flavour, options.only_center_face))
        known = KnownFaces(lms)
        return OfficialPipeline(_PerImage(known), StandInParser(), NearestUpsampler() if bg_upsampler else None, options)

    monkeypatch.setattr(official_pipeline, "load_official_pipeline", fake_load)
    out = tmp_path / "results"
    argv = ["restore", "--method", "test-green", "--input", str(src), "--output", str(out), "--device", "cpu",
            "--pipeline", "official", "--upscale", "2", "--bg-upsampler", "realesrgan-x2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert built == [("realesrgan-x2", "facexlib", False)]
    assert "group.png: 3 faces\n" in printed and "empty.png: no face found" in printed
    assert "(3 faces restored) through the official pipeline" in printed
    group = cv2.imread(str(out / "group.png"), cv2.IMREAD_UNCHANGED)
    assert group.shape == (600, 720, 4) and (group[:, :, 3] == 200).all()  # twice the size, alpha kept
    cx, cy = (lms[1][0] + lms[1][1]) / 2 * 2  # between the eyes of the middle face, at 2x
    assert group[int(cy), int(cx), 1] > 240 and group[int(cy), int(cx), 2] < 15  # BGR: green pasted there
    empty = cv2.imread(str(out / "empty.png"))
    assert empty.shape == (600, 720, 3)
    # CodeFormer's flavour: the 300x360 inputs are enlarged to a 512 short side first, then doubled
    argv[argv.index("official")] = "official-codeformer"
    argv[argv.index(str(out))] = str(tmp_path / "cf")
    assert main([*argv[:-2], "--only-center-face"]) == 0
    assert built[-1] == (None, "codeformer", True)
    assert "group.png: 1 face\n" in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / "cf" / "group.png"), cv2.IMREAD_UNCHANGED).shape == (1024, 1228, 4)


class _PerImage:
    """KnownFaces for the image with faces; nothing for a plain background (as a real detector would)."""

    def __init__(self, known: KnownFaces) -> None:
        self.known = known

    def detect(self, rgb, conf_threshold=0.8, nms_threshold=0.4):
        return self.known.detect(rgb, conf_threshold) if _has_faces(rgb) else np.zeros((0, 15), np.float32)


def _has_faces(rgb: np.ndarray) -> bool:
    return bool((np.abs(rgb.astype(int) - [200, 160, 130]).sum(2) < 30).mean() > 0.05)  # the synthetic skin


def test_restore_default_official_without_its_weights_is_one_line_naming_the_fast_pipeline(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from bench import weights as wm
    from bench.cli.app import main

    def offline(name, *a, **k):
        raise wm.MissingWeightsError(name, Path(tmp_path / "w.pth"), "could not be downloaded", by_hand=True)

    monkeypatch.setattr(wm, "fetch", offline)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    argv = ["restore", "--method", "lq", "--input", str(src), "--output", str(tmp_path / "o")]  # official: the default
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "retinaface-resnet50" in err[0] and "--pipeline fast" in err[0], err
    assert not (tmp_path / "o" / "a.png").exists()


def test_official_with_a_real_parsenet_matches_facexlib(fx):
    """The parsing network itself in the loop (reduced width, stand-in weights, same on both sides)."""
    from bench.data.nets.parsenet import ParseNet
    from bench.weights.standin import conv_standin_state

    small = {"in_size": 512, "out_size": 512, "base_ch": 4, "res_depth": 1, "ch_range": (4, 16)}
    ours = ParseNet(**small)
    state = conv_standin_state(ours, seed=25)
    ours.load_state_dict(state)
    theirs = facexlib_parsenet().ParseNet(**small)
    theirs.load_state_dict(state)
    rgb, lms = _scene(SCENES["one"], seed=5)
    ref, ref_img = _facexlib_run(fx[1], np.ascontiguousarray(rgb[:, :, ::-1]), KnownFaces(lms), 2,
                                 parse_net=theirs.eval())
    out = restore_whole(rgb, _restore, upscale=2, pipeline=OfficialPipeline(KnownFaces(lms), FaceParser(ours, "parsenet")))
    assert out.faces == 1
    diff = np.abs(out.image.astype(int) - ref_img.astype(int))
    assert diff.max() <= 1, (diff.max(), (diff > 0).mean())


def test_only_center_face_and_background_in_both_pipelines(monkeypatch):
    from bench.data import detect
    from bench.data.detect import Face
    from bench.data.whole_image import FastPipeline

    rgb, lms = _scene(SCENES["three_one_at_border"], seed=3)
    dets = KnownFaces(lms).dets
    monkeypatch.setattr(detect, "detect_faces", lambda img: [Face(d[:4], float(d[4]), d[5:].reshape(5, 2)) for d in dets])
    seen: list[np.ndarray] = []

    def record(crops):
        seen.extend(crops)
        return _restore(crops)

    for pipe in (FastPipeline(only_center_face=True),
                 OfficialPipeline(KnownFaces(lms), StandInParser(), options=OfficialOptions(only_center_face=True))):
        seen.clear()
        assert restore_whole(rgb, record, pipeline=pipe).faces == 1
        middle, _ = align_face(rgb, lms[1])  # the face at (230, 170) is nearest the centre (180, 150)
        np.testing.assert_array_equal(seen[0], middle)
    # a background upsampler's output replaces the Lanczos background, far from the faces
    out = restore_whole(rgb, _restore, upscale=2, pipeline=FastPipeline(background=NearestUpsampler())).image
    near = NearestUpsampler().enhance(rgb, 2)
    np.testing.assert_array_equal(out[-20:, :20], near[-20:, :20])
    assert np.abs(out[-20:, :20].astype(int) - cv2.resize(rgb, (720, 600), interpolation=cv2.INTER_LANCZOS4)[-20:, :20]).max() > 0


def test_restore_refuses_an_unknown_bg_upsampler_in_one_line(tmp_path, capsys):
    from bench.cli.app import main

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    argv = ["restore", "--method", "lq", "--input", str(src), "--output", str(tmp_path / "o"), "--bg-upsampler", "esrgan"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bg-upsampler esrgan" in err[0] and "realesrgan-x2" in err[0], err


def test_aligned_inputs_refuse_the_whole_image_options(tmp_path, capsys):
    from bench.cli.app import main

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    base = ["restore", "--method", "lq", "--input", str(src), "--output", str(tmp_path / "o"), "--aligned"]
    for extra in (["--pipeline", "official"], ["--pipeline", "fast"], ["--only-center-face"]):
        assert main(base + extra) == 2
        assert "apply to whole images" in capsys.readouterr().err


def test_an_image_whose_landmarks_fit_no_alignment_is_skipped_not_the_run(tmp_path, monkeypatch, registries, capsys):
    from bench.cli.app import main
    from bench.core.registry import METHODS
    from bench.data import official_pipeline
    from tests._helpers.runner_helpers import GreenMethod

    METHODS.add("test-green", GreenMethod)
    rgb, lms = _scene(SCENES["one"], seed=4)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a_bad.png"), np.full((60, 80, 3), 7, np.uint8))
    cv2.imwrite(str(src / "b_good.png"), rgb[:, :, ::-1])

    class Picky:
        def detect(self, img, conf_threshold=0.8, nms_threshold=0.4):
            if _has_faces(img):
                return KnownFaces(lms).detect(img, conf_threshold)
            return np.array([[1, 1, 9, 9, 0.99, 0, 0, 10, 0, *([np.nan] * 6)]], np.float32)  # eyes, then NaN

    monkeypatch.setattr(official_pipeline, "load_official_pipeline",
                        lambda **kw: OfficialPipeline(Picky(), StandInParser(), options=kw["options"]))
    argv = ["restore", "--method", "test-green", "--input", str(src), "--output", str(tmp_path / "o"), "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "a_bad.png: could not estimate the alignment" in printed and "b_good.png: 1 face" in printed
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["b_good.png"]


PLACEMENTS = dict(h=st.integers(48, 160), w=st.integers(48, 160), cx=st.floats(-20, 180), cy=st.floats(-20, 180),
                  side=st.floats(24, 200), angle=st.floats(-60, 60), upscale=st.integers(1, 3), parse=st.booleans())


def _placement_pastes_as_facexlib(fx, h, w, cx, cy, side, angle, upscale, parse):
    """Faces anywhere (cut by any border, rotated, larger than the photo), any upscale: within 1 grey level."""
    rng = np.random.default_rng(h * 1000 + w)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    m = cv2.getRotationMatrix2D((256.0, 256.0), angle, side / 512.0)
    m[:, 2] += np.array([cx, cy]) - 256.0
    lms = [(face_template(512) @ m[:, :2].T + m[:, 2]).astype(np.float32)]
    _, ref_img = _facexlib_run(fx[1], np.ascontiguousarray(rgb[:, :, ::-1]), KnownFaces(lms, rgb.shape), upscale, parse)
    pipe = OfficialPipeline(KnownFaces(lms, rgb.shape), StandInParser(), options=OfficialOptions(use_parse=parse))
    out = restore_whole(rgb, _restore, upscale=upscale, pipeline=pipe)
    assert out.faces == 1 and out.image.shape == ref_img.shape
    assert np.abs(out.image.astype(int) - ref_img.astype(int)).max() <= 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**PLACEMENTS)
def test_any_face_placement_pastes_as_facexlib(fx, **case):
    _placement_pastes_as_facexlib(fx, **case)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**PLACEMENTS)
def test_any_face_placement_pastes_as_facexlib_many(fx, **case):
    _placement_pastes_as_facexlib(fx, **case)


def test_detect_resize_as_facexlib_and_as_codeformer(fx):
    """facexlib's ``resize`` (Lanczos to that short side, results times the scale) against facexlib itself;
    CodeFormer's (area down / bilinear up, results divided) seen by a recording detector on a large photo."""
    rgb, lms = _scene(SCENES["three_one_at_border"], seed=9)
    big = cv2.resize(rgb, (900, 750), interpolation=cv2.INTER_LINEAR)
    big_lms = [lm * np.float32(750 / 300) for lm in lms]
    h = _new_helper(fx[1], 1, use_parse=True, device=torch.device("cpu"))
    h.face_det = KnownFaces(big_lms, big.shape)
    h.read_image(np.ascontiguousarray(big[:, :, ::-1]))
    h.get_face_landmarks_5(resize=640, eye_dist_threshold=5)
    ours = detect_landmarks(big, KnownFaces(big_lms, big.shape), OfficialOptions(detect_resize=640))
    assert len(ours) == len(h.all_landmarks_5) == 3
    for f, lm in zip(ours, h.all_landmarks_5):
        np.testing.assert_allclose(f.landmarks5, lm, atol=1e-6)

    seen = []

    class Recording(KnownFaces):
        def detect(self, img, conf_threshold=0.8, nms_threshold=0.4):
            seen.append((img.shape, conf_threshold))
            return super().detect(img, conf_threshold, nms_threshold)

    faces = detect_landmarks(big, Recording(big_lms, big.shape), CODEFORMER)
    assert seen == [((640, 768, 3), 0.8)]  # 750x900 -> short side 640 (int(900 * 640 / 750) = 768)
    np.testing.assert_allclose(faces[0].landmarks5, big_lms[0], rtol=1e-5)  # back in the photo's pixels
