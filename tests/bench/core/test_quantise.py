"""One rounding rule from [0, 1] floats to uint8 levels (bench.core.device), used by every writer and resizer."""
from __future__ import annotations

import numpy as np
import torch

from bench.core.device import to_uint8, to_uint8_levels
from bench.data.degrade import PRESETS

PRESET = next(iter(PRESETS))


def test_to_uint8_clamps_where_byte_wrapped_around():
    x = torch.tensor([-0.01, 0.0, 0.6 / 255, 1.49 / 255, 0.5, 1.0, 1.002, 1.5])
    assert to_uint8(x).tolist() == [0, 0, 1, 1, 128, 255, 255, 255]
    assert (x * 255).round().byte()[-2:].tolist() == [0, 126]  # what the inline copies wrote for >1


def test_uint8_and_levels_are_one_rule():
    x = torch.rand(2, 3, 17, 19, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1
    assert torch.equal(to_uint8(x).float() / 255.0, to_uint8_levels(x))
    assert to_uint8(x).dtype == torch.uint8


def test_the_writers_and_the_resizer_use_it(tmp_path):
    """The saved PNG (--save-images), restore's output and a resized output all round as to_uint8 does."""
    from bench.engine.sizes import to_benchmark_size

    small = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    big = to_benchmark_size(to_uint8_levels(small), 32)
    assert torch.equal(big, to_uint8_levels(big))  # already on the levels: rounding again changes nothing
    resized = torch.nn.functional.interpolate(to_uint8_levels(small).float(), size=(32, 32), mode="bicubic",
                                              align_corners=False, antialias=False)
    assert torch.equal(big, to_uint8_levels(resized))
    from bench.data.degrade import degrade_batch

    hq = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    out = degrade_batch(hq, PRESET, np.random.default_rng(0))
    assert out.dtype == hq.dtype and torch.equal(out, to_uint8_levels(out))
    assert np.array_equal(to_uint8(torch.ones(1, 3, 2, 2) * 1.001).numpy(), np.full((1, 3, 2, 2), 255, np.uint8))
