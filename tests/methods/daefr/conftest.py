"""Reduced DAEFR networks for the daefr tests (64x64 input, the released 16x16 token grid and attention
placement): ``SmallDAEFR`` is the golden's (released Transformer and codebooks, which the official class
hard-codes); ``TinyDAEFR`` also narrows the Transformer and codebooks, for the tests of loading and batching."""
from __future__ import annotations

import pytest

from methods.daefr.arch import DAEFRNet
from methods.daefr.method import DAEFRMethod

SMALL = {"ch": 32, "ch_mult": (1, 2, 4), "resolution": 64}
TINY = dict(SMALL, n_embed=128, dim_embd=64, n_layers=2)


class SmallDAEFR(DAEFRMethod):
    """The method on the golden's reduced network."""

    input_size = output_size = 64

    def build_net(self) -> DAEFRNet:
        return DAEFRNet(**SMALL)


class TinyDAEFR(SmallDAEFR):
    """The method on a network small enough to build many times."""

    def build_net(self) -> DAEFRNet:
        return DAEFRNet(**TINY)


@pytest.fixture(scope="module")
def tiny_random() -> TinyDAEFR:
    return TinyDAEFR(weights="random")
