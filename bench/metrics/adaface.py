"""``ids-adaface-lq``: AdaFace IR-50 cosine between the LQ input and the output (the NTIRE RWFR identity gate).

Both faces are warped with the *same* five landmarks to the 112x112 ArcFace template (the
NTIRE evaluation aligns LQ and output with one set of points, taken from the LQ), fed as BGR in
[-1, 1], and compared by the cosine of their unit embeddings. Landmarks: ``template`` (the FFHQ
5-point template, right for the 512x512 aligned test sets) or ``detect`` (RetinaFace on the LQ,
falling back to the template when no face is found). The challenge itself reads points from
its own CSV, so values can differ slightly from the official per-image numbers.
"""
from __future__ import annotations

import numpy as np
import torch

from bench.core.registry import METRICS
from bench.data.align import FFHQ_TEMPLATE_512
from bench.metrics.adaface_arch import load_adaface
from bench.metrics.base import MeanOfImages, MetricUnavailable
from bench.metrics.identity import arcface_crop, to_uint8
from bench.weights import MissingWeightsError

WEIGHTS = "adaface-ir50-ms1mv2"
LANDMARKS = ("template", "detect")


def adaface_input(crops_rgb: np.ndarray) -> torch.Tensor:
    """(B, 112, 112, 3) uint8 RGB -> (B, 3, 112, 112) float BGR in [-1, 1], as AdaFace's ``to_input``."""
    bgr = crops_rgb[..., ::-1].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray((bgr - 0.5) / 0.5)).permute(0, 3, 1, 2)


@METRICS.register
class AdaFaceLQIdentity(MeanOfImages):
    """Per-image AdaFace cosine of (LQ, output); the runner hands the LQ batch (``needs_lq``)."""

    name = "ids-adaface-lq"
    weights = (WEIGHTS,)
    description = ("AdaFace IR-50 cosine of LQ input vs output on 5-point aligned 112x112 faces (NTIRE RWFR identity "
                   "gate; options: weights=FILE, landmarks=template|detect)")
    higher_better = True
    needs_gt = False
    needs_lq = True
    protocol = "ntire-adaface-ir50-cos-lq-template5"
    standard = True

    def __init__(self, weights: str | None = None, landmarks: str = "template") -> None:
        super().__init__()
        if landmarks not in LANDMARKS:
            raise ValueError(f"landmarks must be one of {LANDMARKS}, not {landmarks!r}")
        from bench.weights import resolve

        try:
            self.net = load_adaface(resolve(WEIGHTS, weights))
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc, "or pass weights=PATH to adaface_ir50_ms1mv2.ckpt") from exc
        self.landmarks = landmarks
        self.protocol = f"ntire-adaface-ir50-cos-lq-{landmarks}5"

    def _points(self, lq_rgb: np.ndarray) -> np.ndarray:
        h, w = lq_rgb.shape[:2]
        template = FFHQ_TEMPLATE_512 * np.array([w / 512.0, h / 512.0])
        if self.landmarks == "template":
            return template
        from bench.data.detect import detect_faces, largest_face

        face = largest_face(detect_faces(lq_rgb))
        return face.landmarks5 if face is not None else template

    @torch.no_grad()
    def embed_pairs(self, pred: torch.Tensor, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit embeddings (B, 512) of output and LQ, both aligned with the LQ's landmarks."""
        out_u8, lq_u8 = to_uint8(pred), to_uint8(lq)
        crops_out, crops_lq = [], []
        for o, q in zip(out_u8, lq_u8):
            pts = self._points(q)
            scale = np.array([o.shape[1] / q.shape[1], o.shape[0] / q.shape[0]])
            crops_lq.append(arcface_crop(q, pts))
            crops_out.append(arcface_crop(o, pts * scale))
        dev = self.device
        e_out, _ = self.net(adaface_input(np.stack(crops_out)).to(dev))
        e_lq, _ = self.net(adaface_input(np.stack(crops_lq)).to(dev))
        return e_out, e_lq

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        if gt is None:
            raise ValueError(f"{self.name} needs the LQ input batch")
        e_out, e_lq = self.embed_pairs(pred, gt)
        return (e_out.double() * e_lq.double()).sum(1)



__all__ = ["AdaFaceLQIdentity", "adaface_input", "WEIGHTS"]
