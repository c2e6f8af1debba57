"""Face-parsing paste-back masks: ParseNet / BiSeNet strict loading, and parity with facexlib 0.3.0.

The network parity and the mask parity run facexlib's own code (PyPI wheel, imported with stubs,
never installed) on the same seeded weights. Logits: ParseNet at full width on a 64x64 face fed as
facexlib feeds it, bit-equal; BiSeNet within 1e-5 (bit-equal measured). The mask captured inside
``FaceRestoreHelper.paste_faces_to_input_image(use_parse=True)`` right before its resize: within 1e-6
(float64 there, float32 here; measured <= 3e-8), with ParseNet at a reduced width (base_ch 4, 1 body
block) at the released 512 size: the full one costs ~6 CPU seconds per face.
scripts/measure_pipeline_nets.py measures the full-size networks.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bench import weights as W
from bench.data.face_parsing import FaceParser, load_face_parser, mask_from_labels
from bench.data.nets.bisenet import BiSeNet
from bench.data.nets.parsenet import ParseNet
from bench.weights.standin import conv_standin_state
from tests._helpers.official_refs import load_manifest, seeded_state_dict
from tests._helpers.pipeline_refs import facexlib_bisenet, facexlib_misc, facexlib_parsenet, facexlib_restore_helper

SMALL_PARSENET = {"in_size": 512, "out_size": 512, "base_ch": 4, "res_depth": 1, "ch_range": (4, 16)}
MANIFESTS = {"parsenet": ("parsing_parsenet", ParseNet), "bisenet": ("parsing_bisenet", BiSeNet)}


def faces(n: int, seed: int = 0, size: int = 512) -> list[np.ndarray]:
    """Smooth image-like RGB uint8 faces."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        low = rng.random((12, 12, 3)).astype(np.float32)
        img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC) + 0.05 * rng.standard_normal((size, size, 3))
        out.append((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """Seeded checkpoints with the released layouts (bare state dicts), written once."""
    folder = tmp_path_factory.mktemp("parsing")
    out = {}
    for name, (manifest, _) in MANIFESTS.items():
        out[name] = folder / W.WEIGHTS[f"parsing-{name}"].filename
        torch.save(seeded_state_dict(load_manifest(manifest)["tensors"]), out[name])
    return out


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_released_checkpoint_layout_loads_strictly(name, checkpoints):
    manifest, cls = MANIFESTS[name]
    ours = {k: list(v.shape) for k, v in cls().state_dict().items()}
    assert list(ours.items()) == list(load_manifest(manifest)["tensors"].items())  # names, shapes and order
    parser = load_face_parser(name, weights=checkpoints[name])
    assert parser.weights is not None and parser.weights.path == checkpoints[name] and not parser.weights.standin


def test_wrong_checkpoint_names_the_file_and_the_fix(checkpoints):
    with pytest.raises(W.WeightsFileError) as err:
        load_face_parser("bisenet", weights=checkpoints["parsenet"])
    msg = str(err.value)
    assert "\n" not in msg and str(checkpoints["parsenet"]) in msg and "BiSeNet" in msg and "missing" in msg
    assert "bfrbench fetch parsing-bisenet" in msg


def test_missing_managed_weights_unknown_names_and_bad_faces_are_one_line_errors():
    with pytest.raises(W.MissingWeightsError, match="parsing-parsenet"):
        load_face_parser("parsenet")
    with pytest.raises(ValueError, match="unknown face parser 'segformer'.*bisenet"):
        load_face_parser("segformer", random_weights=True)
    parser = FaceParser(ParseNet(**SMALL_PARSENET), "parsenet")
    with pytest.raises(ValueError, match="face 1: expected an RGB uint8"):
        parser.soft_masks([faces(1)[0], np.zeros((512, 512, 3), np.float32)])
    assert parser.soft_masks([]) == []


def test_standin_weights_are_seeded_per_tensor_name():
    net = ParseNet(**SMALL_PARSENET)
    a, b, c = conv_standin_state(net, seed=3), conv_standin_state(net, seed=3), conv_standin_state(net, seed=4)
    assert list(a) == list(net.state_dict()) and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["out_mask_conv.conv2d.weight"], c["out_mask_conv.conv2d.weight"])
    assert (a["encoder.1.conv1.norm.norm.running_var"] >= 1).all()  # a valid BatchNorm, unlike plain noise


@pytest.fixture(scope="module")
def small_parsenets():
    """(ours, facexlib's) ParseNet at reduced width with the same seeded weights."""
    ours = ParseNet(**SMALL_PARSENET).eval()
    ours.load_state_dict(conv_standin_state(ours, seed=3))
    ref = facexlib_parsenet().ParseNet(parsing_ch=19, **SMALL_PARSENET).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    return ours, ref


@pytest.mark.network
def test_full_width_parsenet_logits_match_facexlib_input_path(monkeypatch):
    """facexlib feeds one face as ``img2tensor`` makes it (convolved as NCHW); a channels-last batch
    takes other kernels and rounds differently (2.7e-4 on the logits at full width, so labels flip)."""
    from torchvision.transforms.functional import normalize

    ours = ParseNet().eval()
    ours.load_state_dict(conv_standin_state(ours, seed=3))
    with torch.device("meta"):  # no init of 21M parameters that are replaced anyway
        ref = facexlib_parsenet().ParseNet(in_size=512, out_size=512, parsing_ch=19).eval()
    ref.load_state_dict(ours.state_dict(), strict=True, assign=True)
    monkeypatch.setattr("bench.data.face_parsing.PARSE_SIZE", 64)  # full width at 1/64 of the pixels
    face = faces(1, seed=5, size=64)[0]
    x = facexlib_misc().img2tensor(face[:, :, ::-1].astype("float32") / 255.0, bgr2rgb=True, float32=True)
    normalize(x, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
    with torch.no_grad():
        expected = ref(x.unsqueeze(0))[0][0]
    assert torch.equal(FaceParser(ours, "parsenet").logits([face])[0], expected)


@pytest.mark.network
def test_bisenet_logits_match_facexlib():
    ours = BiSeNet().eval()
    ours.load_state_dict(conv_standin_state(ours, seed=2))
    ref = facexlib_bisenet().BiSeNet(num_class=19).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x)[0], atol=1e-5, rtol=0)


class _Cv2Spy:
    """Stands in for facexlib's ``cv2``: records every 2-D float64 array passed to ``resize`` (the mask)."""

    def __init__(self) -> None:
        self.masks: list[np.ndarray] = []

    def __getattr__(self, name: str):
        return getattr(cv2, name)

    def resize(self, src, *args, **kwargs):
        if src.ndim == 2 and src.dtype == np.float64:
            self.masks.append(src.copy())
        return cv2.resize(src, *args, **kwargs)


def facexlib_masks(net: torch.nn.Module, rgb_faces: list[np.ndarray], monkeypatch) -> list[np.ndarray]:
    """facexlib's parse masks for restored faces, captured inside its own paste-back (identity affine)."""
    mod = facexlib_restore_helper()
    spy = _Cv2Spy()
    monkeypatch.setattr(mod, "cv2", spy)
    helper = object.__new__(mod.FaceRestoreHelper)  # no detector / parser downloads: the fields paste-back reads
    helper.upscale_factor, helper.use_parse, helper.face_parse, helper.device = 1, True, net, torch.device("cpu")
    helper.input_img = rgb_faces[0][:, :, ::-1].copy()
    helper.restored_faces = [f[:, :, ::-1].copy() for f in rgb_faces]  # facexlib works in BGR
    helper.inverse_affine_matrices = [np.array([[1.0, 0, 0], [0, 1.0, 0]]) for _ in rgb_faces]
    helper.paste_faces_to_input_image()
    return spy.masks


@pytest.mark.network
def test_soft_masks_match_facexlib_paste_back(small_parsenets, monkeypatch):
    ours, ref = small_parsenets
    batch = faces(2, seed=5)
    expected = facexlib_masks(ref, batch, monkeypatch)
    got = FaceParser(ours, "parsenet", batch_size=2).soft_masks(batch)
    assert len(expected) == len(got) == 2
    for e, g in zip(expected, got):
        assert g.dtype == np.float32 and g.shape == (512, 512)
        assert 0.05 < (g > 0.5).mean() < 0.95  # the seeded parser keeps part of the face, not all or nothing
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


def test_mask_from_labels_is_facexlibs_colormap_blur_and_border():
    labels = np.zeros((512, 512), np.int64)
    labels[100:400, 150:350] = 1  # skin: pasted
    labels[100:400, 250:350] = 17  # hair: background kept
    mask = mask_from_labels(labels)
    assert mask.dtype == np.float32 and mask.min() == 0.0 and 0.99 < mask.max() <= 1.0
    assert mask[250, 200] > 0.99 and mask[250, 330] < 0.01  # inside skin / inside hair
    assert 0.2 < mask[250, 250] < 0.8  # the blurred skin-hair edge
    assert not mask[:10].any() and not mask[-10:].any() and not mask[:, :10].any() and not mask[:, -10:].any()


@pytest.mark.network
def test_every_class_maps_as_in_facexlib_paste_back(monkeypatch):
    """A parser whose logits are one-hot over a map holding all 19 classes (bands and noise):
    facexlib's colormap, blurs and border give our mask."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(19), 512 // 19 + 1)[:512][None, :].repeat(512, axis=0)
    noisy = rng.random((512, 512)) < 0.2
    labels[noisy] = rng.integers(0, 19, noisy.sum())
    logits = torch.nn.functional.one_hot(torch.from_numpy(labels), 19).permute(2, 0, 1)[None].float()
    expected = facexlib_masks(lambda x: (logits,), faces(1, seed=2), monkeypatch)[0]
    np.testing.assert_allclose(mask_from_labels(labels), expected, rtol=0, atol=1e-6)
