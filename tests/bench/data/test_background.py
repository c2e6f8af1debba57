"""Background upsampler: RealESRGAN_x2plus strict loading, and parity with Real-ESRGAN's RealESRGANer.

The parity cases run ``RealESRGANer.enhance`` (PyPI realesrgan==0.3.0) around basicsr 1.4.2's
RRDBNet (both imported with stubs, never installed) and our upsampler around our RRDBNet, with the
same seeded weights at a reduced width (16 features, 2 blocks, growth 8: the x2plus trunk at full
width costs seconds per small image on one core). Outputs must agree within 1 grey level
(measured: identical) on a 61x75 image (odd sizes: mod padding), whole and tiled.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bench import weights as W
from bench.data.background import (
    TILE_PAD_CODEFORMER,
    TILE_PAD_GFPGAN,
    BackgroundUpsampler,
    load_background_upsampler,
)
from bench.data.nets.loading import load_weights
from bench.data.nets.rrdbnet import RRDBNet
from bench.weights.standin import conv_standin_state
from tests._helpers.official_refs import load_manifest, seeded_state_dict
from tests._helpers.pipeline_refs import basicsr_rrdbnet, realesrgan_utils

SMALL = {"num_feat": 16, "num_block": 2, "num_grow_ch": 8, "scale": 2}


def test_released_checkpoint_layout_loads_strictly(tmp_path):
    manifest = load_manifest("realesrgan_x2plus")
    ours = {k: list(v.shape) for k, v in RRDBNet().state_dict().items()}
    assert list(ours.items()) == list(manifest["tensors"].items())  # names, shapes and order
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": seeded_state_dict(manifest["tensors"])}, path)
    up = load_background_upsampler(weights=path, tile=0)
    assert up.weights is not None and up.weights.path == path and not up.weights.standin


def test_container_key_as_realesrganer_picks_it(tmp_path):
    net = RRDBNet(**SMALL)
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    path = tmp_path / "RealESRGAN_x2plus.pth"
    keys = ("params_ema", "params")
    torch.save({"params_ema": {k: v + 1 for k, v in state.items()}, "params": state}, path)
    load_weights(net, "realesrgan-x2", path, False, key=keys)
    assert float(net.conv_last.weight.detach().flatten()[0]) == 1.0  # params_ema preferred
    torch.save({"params": state}, path)
    load_weights(net, "realesrgan-x2", path, False, key=keys)
    assert float(net.conv_last.weight.detach().flatten()[0]) == 0.0  # else params
    torch.save(state, path)  # a bare state dict: not how the release ships
    with pytest.raises(W.WeightsFileError, match=r"none of \['params_ema', 'params'\].*RealESRGAN_x2plus.pth"):
        load_weights(net, "realesrgan-x2", path, False, key=keys)


def test_refusals_are_one_line():
    with pytest.raises(W.MissingWeightsError, match="realesrgan-x2"):
        load_background_upsampler()
    with pytest.raises(ValueError, match="unknown background upsampler 'swinir'"):
        load_background_upsampler("swinir", random_weights=True)
    net = RRDBNet(**SMALL)
    with pytest.raises(ValueError, match="multiples of 2"):
        BackgroundUpsampler(net, 2, tile=32, tile_pad=5)
    with pytest.raises(ValueError, match="RGB uint8"):
        BackgroundUpsampler(net, 2).enhance(np.zeros((8, 8), np.uint8), 2)
    for shape, pre_pad in (((1, 9, 3), 0), ((10, 9, 3), 10)):
        with pytest.raises(ValueError, match="too small for the upsampler's reflect padding"):
            BackgroundUpsampler(net, 2, pre_pad=pre_pad).enhance(np.zeros(shape, np.uint8), 2)
    assert BackgroundUpsampler(net, 2, pre_pad=10).enhance(np.zeros((11, 12, 3), np.uint8), 2).shape == (22, 24, 3)
    assert BackgroundUpsampler(net, 2).enhance(np.zeros((3, 2, 3), np.uint8), 2).shape == (6, 4, 3)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Our small RRDBNet with seeded weights, and the same weights saved as a Real-ESRGAN checkpoint."""
    net = RRDBNet(**SMALL)
    state = conv_standin_state(net, seed=5)
    net.load_state_dict(state)
    path = tmp_path_factory.mktemp("realesrgan") / "small_x2.pth"
    torch.save({"params_ema": state}, path)
    return net, path


def photo(h: int = 61, w: int = 75, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.random((9, 12, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    return (np.clip(low + 0.05 * rng.standard_normal((h, w, 3)), 0, 1) * 255).round().astype(np.uint8)


CASES = [  # (tile, tile_pad, pre_pad, outscale)
    (0, 10, 10, 2),  # whole image, RealESRGANer's default pre_pad, no resize
    (32, TILE_PAD_GFPGAN, 0, 1.5),  # tiled (tile < image), the face scripts' pre_pad 0, Lanczos resize
    (24, TILE_PAD_CODEFORMER, 0, 3),  # CodeFormer's tile_pad, wider than the tile
]


@pytest.mark.network
@pytest.mark.parametrize(("tile", "tile_pad", "pre_pad", "outscale"), CASES)
def test_enhance_matches_realesrganer(seeded, tile, tile_pad, pre_pad, outscale, capsys):
    net, path = seeded
    ref = realesrgan_utils().RealESRGANer(
        scale=2, model_path=str(path), model=basicsr_rrdbnet().RRDBNet(num_in_ch=3, num_out_ch=3, **SMALL),
        tile=tile, tile_pad=tile_pad, pre_pad=pre_pad, half=False, device=torch.device("cpu"))
    rgb = photo()
    expected = ref.enhance(rgb[:, :, ::-1].copy(), outscale=outscale)[0][:, :, ::-1]  # BGR in and out
    got = BackgroundUpsampler(net, 2, tile=tile, tile_pad=tile_pad, pre_pad=pre_pad).enhance(rgb, outscale)
    assert got.shape == expected.shape == (int(61 * outscale), int(75 * outscale), 3) and got.dtype == np.uint8
    assert got.std() > 10  # not a flat image
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_tiling_changes_only_what_the_context_changes(seeded):
    """A tile with context wider than the network's receptive field gives the untiled result."""
    net, _ = seeded
    rgb = photo(40, 52, seed=3)
    whole = BackgroundUpsampler(net, 2, tile=0).enhance(rgb)
    tiled = BackgroundUpsampler(net, 2, tile=16, tile_pad=40).enhance(rgb)
    narrow = BackgroundUpsampler(net, 2, tile=16, tile_pad=0).enhance(rgb)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    assert np.abs(whole.astype(int) - narrow.astype(int)).max() > 1  # seams without context



def test_official_pipelines_use_their_scripts_tile_pad(monkeypatch):
    """GFPGAN's inference_gfpgan.py builds RealESRGANer with tile_pad 10, CodeFormer's with 40."""
    from bench.data import official_pipeline as op

    monkeypatch.setattr("bench.data.retinaface_resnet50.RetinaFaceR50", torch.nn.Identity)
    monkeypatch.setattr("bench.data.face_parsing.load_face_parser", lambda *a, **k: None)
    monkeypatch.setattr("bench.data.background.load_background_upsampler", lambda *a, **k: k)
    for options, tile_pad in ((op.FACEXLIB, TILE_PAD_GFPGAN), (op.CODEFORMER, TILE_PAD_CODEFORMER)):
        pipe = op.load_official_pipeline(bg_upsampler="realesrgan-x2", options=options, random_weights=True)
        assert pipe.background["tile_pad"] == tile_pad
