"""Entry point of the distributed tests' worker processes, and the test doubles they register.

``python -m torch.distributed.run --nproc_per_node=N tests/_helpers/dist_helpers.py run ...`` (or plain
``python tests/_helpers/dist_helpers.py run ...`` for one process) registers a folder dataset from
DIST_TEST_ROOT, a covariance-state metric and a method that SIGKILLs its own process on a
chosen batch (DIST_TEST_KILL="RANK:CALL"), then runs the ``bfrbench`` command line (with
DIST_TEST_RANK_ARGS="RANK:ARGS" appended on one rank).
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.core.registry import METHODS, METRICS  # noqa: E402
from bench.metrics.base import Metric  # noqa: E402
from methods.base import image_noise  # noqa: E402
from tests._helpers.runner_helpers import SlowMethod, register  # noqa: E402


class CovarianceDistance(Metric):
    """A Frechet distance from sum states (count, sum of features, sum of outer products), like FID's."""

    name = "test-cov"
    higher_better = False
    per_image = False
    protocol = "test-cov"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("n", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("s1", torch.zeros(4, dtype=torch.float64), "sum")
        self.add_state("s2", torch.zeros(4, 4, dtype=torch.float64), "sum")

    @staticmethod
    def features(pred: torch.Tensor) -> torch.Tensor:
        gray = pred.mean(1).flatten(1)
        return torch.cat([pred.flatten(2).mean(2), gray.std(1, keepdim=True)], 1).double()

    def update(self, pred, gt=None):
        f = self.features(pred)
        self.n = self.n + f.shape[0]
        self.s1 = self.s1 + f.sum(0)
        self.s2 = self.s2 + f.T @ f
        return None

    def compute(self) -> float:
        from scipy import linalg

        n = float(self.n)
        mu = (self.s1 / n).numpy()
        cov = ((self.s2 - torch.outer(self.s1, self.s1) / n) / (n - 1)).numpy()
        ref_mu, ref_cov = np.full(4, 0.5), np.eye(4) * 0.01
        covmean = linalg.sqrtm(cov @ ref_cov).real
        return float(((mu - ref_mu) ** 2).sum() + np.trace(cov + ref_cov - 2 * covmean))


class KillerMethod(SlowMethod):
    """``test-slow`` that SIGKILLs its own process on image IMAGE of rank RANK (DIST_TEST_KILL=RANK:IMAGE).

    Counted in images, not calls: the engine may split a batch into one-image calls (on a CPU it does).
    """

    name = "test-killer"

    def __init__(self, weights=None, delay: float = 0.0) -> None:
        super().__init__(weights=weights, delay=delay)
        self.images = 0

    def restore(self, lq):
        before, self.images = self.images, self.images + int(lq.shape[0])
        rank, _, image = os.environ.get("DIST_TEST_KILL", "").partition(":")
        if rank and int(rank) == int(os.environ.get("RANK", "0")) and before < int(image) <= self.images:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().restore(lq)


class NoisyMethod(SlowMethod):
    """``test-slow`` plus noise drawn as a stochastic method must: from (run seed, image key) alone
    (``methods.base.image_noise``), so two ranks and one process give the same outputs."""

    name = "test-noisy"
    stochastic = True

    def restore(self, lq):
        out = super().restore(lq)
        if self.noise_keys is None or len(self.noise_keys) != out.shape[0]:
            raise AssertionError(f"the engine bound no image keys for this call: {self.noise_keys}")
        return (out + 0.05 * image_noise(self.noise_seed, self.noise_keys, tuple(out.shape[1:]))).clamp(0, 1)


def register_all(root: Path) -> str:
    """Register the doubles; returns the dataset's registry name."""
    ds = register(root, "dist")
    if "test-cov" not in METRICS:
        METRICS.add("test-cov", CovarianceDistance, higher_better=False, needs_gt=False, protocol="test-cov")
    if "test-killer" not in METHODS:
        METHODS.add("test-killer", KillerMethod, takes_quality=False)
    if "test-noisy" not in METHODS:
        METHODS.add("test-noisy", NoisyMethod, takes_quality=False)
    if "test-pmrf-tiny" not in METHODS:  # a stochastic method: per-image noise must not depend on the ranks
        from tests._helpers.pmrf_tiny import TinyPMRF

        METHODS.add("test-pmrf-tiny", TinyPMRF, takes_quality=False)
    return ds


if __name__ == "__main__":
    from bench.cli import main
    from bench.core import plugins

    plugins.load_all()
    register_all(Path(os.environ["DIST_TEST_ROOT"]))
    # DIST_TEST_RANK_ARGS="RANK:ARG ARG...": extra command-line arguments for one rank only
    rank_args, _, extra = os.environ.get("DIST_TEST_RANK_ARGS", "").partition(":")
    mine = extra.split() if rank_args and int(rank_args) == int(os.environ.get("RANK", "0")) else []
    sys.exit(main(sys.argv[1:] + mine))
