"""Exponential moving average of a network's weights (BasicSR ``model_ema``)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps ``ema = decay * ema + (1 - decay) * param`` for every parameter; buffers are copied.

    As in BasicSR, the EMA starts as an exact copy of the network and frozen parameters are
    averaged too (they do not move, so their EMA stays equal to them).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average."""
        params = dict(model.named_parameters())
        for name, ema_p in self.module.named_parameters():
            ema_p.mul_(self.decay).add_(params[name].detach().to(ema_p.dtype), alpha=1.0 - self.decay)
        buffers = dict(model.named_buffers())
        for name, ema_b in self.module.named_buffers():
            ema_b.copy_(buffers[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=True)
