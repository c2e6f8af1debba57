"""Measure the parity docs/methods.md states for the face parser and the background upsampler, at full size.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/measure_pipeline_nets.py [parsers] [upsampler]

Runs the released configurations (ParseNet 512, BiSeNet, RealESRGAN_x2plus: 64 features, 23 blocks)
with seeded stand-in weights (``bench.weights.standin.conv_standin_state``) against facexlib 0.3.0
(ParseNet, BiSeNet, the mask inside ``FaceRestoreHelper.paste_faces_to_input_image``) and
realesrgan 0.3.0 / basicsr 1.4.2 (``RealESRGANer.enhance`` around ``RRDBNet``), imported from their
PyPI archives as the tests do. Prints one JSON line per measurement: max |difference| and the CPU
seconds (one thread) of ours and theirs (stand-in weights: time only).
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.data.background import TILE_PAD_CODEFORMER, TILE_PAD_GFPGAN, BackgroundUpsampler  # noqa: E402
from bench.data.face_parsing import FaceParser, mask_from_labels  # noqa: E402
from bench.data.nets.bisenet import BiSeNet  # noqa: E402
from bench.data.nets.parsenet import ParseNet  # noqa: E402
from bench.data.nets.rrdbnet import RRDBNet  # noqa: E402
from bench.weights.standin import conv_standin_state  # noqa: E402
from tests._helpers.pipeline_refs import (  # noqa: E402
    basicsr_rrdbnet,
    facexlib_bisenet,
    facexlib_parsenet,
    realesrgan_utils,
)
from tests.bench.data.test_background import photo  # noqa: E402
from tests.bench.data.test_face_parsing import faces, facexlib_masks  # noqa: E402


def timed(fn, *args, **kwargs):
    """(result, CPU seconds of this process): one thread, so a single core's time, even on a busy machine."""
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def emit(**row) -> None:
    print(json.dumps(row), flush=True)


class _Capture(torch.nn.Module):
    """Wraps facexlib's parser to keep the logits its paste-back computes."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.out = net, []

    def forward(self, x):
        y = self.net(x)
        self.out.append(y[0])
        return y


def parsers() -> None:
    face = faces(1, seed=5)
    refs = {"parsenet": facexlib_parsenet().ParseNet(in_size=512, out_size=512, parsing_ch=19),
            "bisenet": facexlib_bisenet().BiSeNet(num_class=19)}
    for name, ours in (("parsenet", ParseNet()), ("bisenet", BiSeNet())):
        ours.load_state_dict(conv_standin_state(ours, seed=3))
        ref = _Capture(refs[name].eval())
        ref.net.load_state_dict(ours.state_dict(), strict=True)
        with pytest.MonkeyPatch.context() as mp:
            (ref_mask,), t_ref = timed(facexlib_masks, ref, face, mp)
        parser = FaceParser(ours, name)
        logits, t_ours = timed(parser.logits, face)
        mask = mask_from_labels(logits.argmax(1)[0].numpy())
        labels_equal = float((logits.argmax(1) == ref.out[0].argmax(1)).float().mean())
        emit(what=f"{name} logits", size=512, max_abs=float((logits - ref.out[0]).abs().max()),
             labels_equal=labels_equal, ours_s=round(t_ours, 2), facexlib_paste_s=round(t_ref, 2))
        emit(what=f"{name} soft mask", max_abs=float(np.abs(mask - ref_mask).max()),
             kept_fraction=round(float((mask > 0.5).mean()), 3))
        pair, t_pair = timed(FaceParser(ours, name, batch_size=2).logits, face + faces(1, seed=6))
        emit(what=f"{name} logits, batch of 2 vs one face", max_abs=float((pair[:1] - logits).abs().max()),
             ours_pair_s=round(t_pair, 2))


def upsampler(tmp: Path) -> None:
    net = RRDBNet()
    state = conv_standin_state(net, seed=5)
    net.load_state_dict(state)
    path = tmp / "x2plus_standin.pth"
    torch.save({"params_ema": state}, path)
    rgb = photo(64, 96, seed=1)
    for tile, tile_pad, pre_pad, outscale in ((0, 10, 0, 2), (32, TILE_PAD_GFPGAN, 0, 2), (32, TILE_PAD_CODEFORMER, 0, 2),
                                               (0, 10, 10, 1.5)):
        ref = realesrgan_utils().RealESRGANer(
            scale=2, model_path=str(path), model=basicsr_rrdbnet().RRDBNet(num_in_ch=3, num_out_ch=3, scale=2),
            tile=tile, tile_pad=tile_pad, pre_pad=pre_pad, half=False, device=torch.device("cpu"))
        with contextlib.redirect_stdout(io.StringIO()):  # RealESRGANer prints a line per tile
            (bgr, _), t_ref = timed(ref.enhance, rgb[:, :, ::-1].copy(), outscale=outscale)
        expected = bgr[:, :, ::-1]
        got, t_ours = timed(BackgroundUpsampler(net, 2, tile=tile, tile_pad=tile_pad, pre_pad=pre_pad).enhance, rgb, outscale)
        diff = np.abs(got.astype(int) - expected.astype(int))
        emit(what="realesrgan-x2 enhance", image="64x96", tile=tile, tile_pad=tile_pad, pre_pad=pre_pad,
             outscale=outscale, max_abs_grey=int(diff.max()), differing_fraction=float((diff > 0).mean()),
             ours_s=round(t_ours, 2), realesrganer_s=round(t_ref, 2))


def main() -> None:
    parts = sys.argv[1:] or ["parsers", "upsampler"]
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    if "parsers" in parts:
        parsers()
    if "upsampler" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            upsampler(Path(tmp))


if __name__ == "__main__":
    main()
