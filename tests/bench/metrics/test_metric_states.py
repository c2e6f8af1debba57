"""Metric states follow every module conversion (``.to``, ``.double``, ``.half``, ``.cuda``) as torchmetrics' do."""
from __future__ import annotations

import torch

from bench.metrics.base import Metric


class _Toy(Metric):
    """A sum state in float32, a cat state and an integer counter: the three kinds a metric keeps."""

    name = "toy-states"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float32), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.int64), "sum")
        self.add_state("feats", [], "cat")

    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> None:
        self.total = self.total + pred.sum().to(self.total.dtype)
        self.count = self.count + pred.shape[0]
        self.feats.append(pred.flatten(1).to(self.total.dtype))

    def compute(self) -> float:
        return float(self.total)


def _dtypes(m: _Toy) -> tuple:
    return m.total.dtype, m.count.dtype, tuple(f.dtype for f in m.feats), m._defaults["total"][0].dtype


def test_a_dtype_change_reaches_the_states_and_their_defaults():
    m = _Toy()
    m.update(torch.rand(2, 3, 4, 4))
    assert m.double() is m
    assert _dtypes(m) == (torch.float64, torch.int64, (torch.float64,), torch.float64)  # integers stay integers
    m.update(torch.rand(1, 3, 4, 4))  # a new batch lands in the converted state
    assert m.total.dtype == torch.float64 and len(m.feats) == 2
    m.half()
    assert _dtypes(m) == (torch.float16, torch.int64, (torch.float16, torch.float16), torch.float16)
    m.to(torch.float32)
    assert _dtypes(m) == (torch.float32, torch.int64, (torch.float32, torch.float32), torch.float32)
    m.reset()  # a reset keeps the converted dtype
    assert m.total.dtype == torch.float32 and m.feats == []


def test_a_device_move_reaches_the_states():
    m = _Toy()
    m.update(torch.rand(2, 3, 4, 4))
    m.to(device="cpu", dtype=torch.float64)
    assert m.device == torch.device("cpu") and m.total.dtype == torch.float64
    if torch.cuda.is_available():
        m.cuda()
        assert m.device.type == "cuda" and m.total.is_cuda and m.count.is_cuda and m.feats[0].is_cuda
    m.to("meta")  # a second device without a GPU (there is no way back from meta)
    assert m.device == torch.device("meta")
    assert m.total.device.type == m.count.device.type == m.feats[0].device.type == "meta"
    m.reset()
    assert m.total.device.type == "meta"
