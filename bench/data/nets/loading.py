"""Build one of the pipeline's auxiliary networks with released, user-given or stand-in weights."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import weights as W
from bench.weights.resolve import state_dict_mismatch
from bench.weights.standin import conv_standin_state


@dataclass(frozen=True)
class NetWeights:
    """Which weights a network runs on: the catalogue name, the file (None for stand-ins), stand-in or not."""

    name: str
    path: Path | None
    standin: bool

    def sha256(self) -> str | None:
        """The checkpoint's SHA-256 (None for stand-in weights), for manifests."""
        return None if self.path is None else W.sha256_file(self.path)


def load_weights(net: torch.nn.Module, name: str, weights: str | os.PathLike[str] | None, random_weights: bool,
                 seed: int = 0, key: tuple[str, ...] = ()) -> NetWeights:
    """Fill ``net`` strictly (in place) from the catalogue asset ``name``, a user file, or seeded stand-ins.

    ``key``: container entries tried in order (Real-ESRGAN's ``params_ema`` then ``params``); a bare
    state dict when empty. The file is read with ``weights_only=True``; a mismatch names the file.
    """
    if random_weights:
        net.load_state_dict(conv_standin_state(net, seed), strict=True)
        return NetWeights(name, None, True)
    path = W.resolve(name, weights)
    state = W.load_state_dict(path)
    if key:
        found = next((k for k in key if isinstance(state, dict) and k in state), None)
        if found is None:
            top = list(state)[:8] if isinstance(state, dict) else type(state).__name__
            raise W.WeightsFileError(path, f"none of {list(key)} in the checkpoint (top-level keys: {top})",
                                     f"pass the released {W.WEIGHTS[name].filename}")
        state = state[found]
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise W.WeightsFileError(
            path, f"does not match the {type(net).__name__} architecture ({_mismatch(net, state)})",
            f"pass the released {W.WEIGHTS[name].filename} (`bfrbench fetch {name}`)") from exc
    return NetWeights(name, path, False)


def _mismatch(net: torch.nn.Module, state: object) -> str:
    return state_dict_mismatch(net, state) if isinstance(state, dict) else f"a {type(state).__name__}, not a state dict"
