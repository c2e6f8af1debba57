"""A host metric the pool's workers can import, and one that kills its worker (a BrokenProcessPool)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from bench.metrics.base import MeanOfImages


class HostMean(MeanOfImages):
    """Mean level per image, scored on the host (in the pool when there is one)."""

    name = "test-host-mean"
    higher_better = True
    runs_on_host = True
    protocol = "test-host-mean"

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        return pred.double().mean(dim=(1, 2, 3)) * 255


class WorkerKiller(HostMean):
    """``HostMean`` that SIGKILLs the worker scoring it while the file ``kill_flag`` exists (once); the file holds
    the pid of the process that must not die (the pool's owner)."""

    name = "test-host-killer"

    def __init__(self, kill_flag: str = "") -> None:
        super().__init__()
        self.kill_flag = kill_flag

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        try:
            owner = int(Path(self.kill_flag).read_text()) if self.kill_flag else None
        except (OSError, ValueError):
            owner = None
        if owner is not None and owner != os.getpid():
            try:
                os.unlink(self.kill_flag)
            except FileNotFoundError:  # another worker took it
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().score(pred, gt)
