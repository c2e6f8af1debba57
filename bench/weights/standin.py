"""Deterministic stand-in (random) weights, for running a network without its released checkpoint.

Every tensor is drawn from a generator keyed by (seed, tensor name), so the values do not depend on
the order tensors are created in, and a stand-in run is reproducible on any machine.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch


def seeded_normal(name: str, shape: tuple[int, ...], seed: int, std: float, mean: float = 0.0) -> torch.Tensor:
    """Normal values for one stand-in tensor from a generator keyed by (seed, tensor name): order-independent."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32) * np.float32(std) + np.float32(mean))


def conv_standin_state(module: torch.nn.Module, seed: int = 0, gain: float = 1.0) -> dict[str, torch.Tensor]:
    """Stand-in weights for a conv / BatchNorm network: fan-in scaled kernels, BN near identity.

    Kernels get std ``gain / sqrt(fan_in)`` (activations stay O(1)), biases std 0.02, BN scales
    1 +- 0.1, BN running means 0 +- 0.1 and variances 1 + |0 +- 0.1|; counters are kept.
    """
    out = {}
    for name, t in module.state_dict().items():
        shape = tuple(t.shape)
        if not t.is_floating_point():
            out[name] = t.clone()
        elif name.endswith("running_var"):
            out[name] = 1.0 + seeded_normal(name, shape, seed, 0.1).abs()
        elif name.endswith("running_mean"):
            out[name] = seeded_normal(name, shape, seed, 0.1)
        elif len(shape) == 1 and name.endswith("weight"):
            out[name] = seeded_normal(name, shape, seed, 0.1, mean=1.0)
        elif len(shape) == 1:
            out[name] = seeded_normal(name, shape, seed, 0.02)
        else:
            out[name] = seeded_normal(name, shape, seed, gain / float(np.sqrt(np.prod(shape[1:]))))
    return out
