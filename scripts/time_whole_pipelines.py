"""Times the two whole-image pipelines' detectors and paste-backs on one CPU thread (random weights: time only).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/time_whole_pipelines.py`` (docs/methods.md quotes it).
"""
from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from bench.data import detect
from bench.data.align import align_face, face_template, paste_faces
from bench.data.face_parsing import load_face_parser
from bench.data.official_pipeline import paste_parsed
from bench.data.retinaface_resnet50 import RetinaFaceR50


def seconds(fn: Callable[..., object], *args: object, repeat: int = 3, **kw: object) -> float:
    """Mean wall time of ``fn(*args, **kw)`` after one warm-up call."""
    fn(*args, **kw)
    start = time.perf_counter()
    for _ in range(repeat):
        fn(*args, **kw)
    return (time.perf_counter() - start) / repeat


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    net = RetinaFaceR50().eval()
    for k, v in net.state_dict().items():
        if k.endswith("running_var"):
            v.fill_(1.0)
    for h, w in [(512, 512), (768, 1024)]:
        rgb = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)
        r50 = seconds(net.detect, rgb, 0.97)
        mnet = seconds(detect.detect_faces, rgb)
        print(f"{w}x{h}: RetinaFace ResNet-50 (torch) {r50:.2f} s, MobileNet-0.25 (onnx) {mnet:.3f} s")
        crop, aff = align_face(rgb, face_template(512) * 0.4 + np.array([w / 3, h / 3]))
        mask = np.ones((512, 512), np.float32)
        for up in (1, 2):
            sq = seconds(paste_faces, rgb, [crop], [aff], upscale=up)
            pp = seconds(paste_parsed, rgb, [crop], [aff], [mask], upscale=up)
            print(f"{w}x{h} upscale {up}: paste square {sq * 1000:.0f} ms, paste parse-mask {pp * 1000:.0f} ms")
    parser = load_face_parser("parsenet", random_weights=True)
    face = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    print(f"ParseNet soft mask, one 512 face: {seconds(parser.soft_masks, [face], repeat=1):.2f} s")


if __name__ == "__main__":
    main()
