"""Host metrics in the engine's process pool: the same per-image values and errors as the serial path."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.engine.hostpool import default_workers
from bench.engine.step import Engine
from bench.metrics.niqe import NIQE, NIQEPyiqa
from bench.weights import fetch

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def niqe_params(bfrbench_home) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BFRBENCH_HOME", str(bfrbench_home))
        return fetch("niqe-pris-params", quiet=True)


def _batch(n: int = 5, size: int = 192) -> torch.Tensor:
    """Textured faces-sized noise at uint8 levels; image 2 is flat (NIQE is undefined there: an error)."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, 3, size, size, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # some structure, not i.i.d. pixels
    x[2] = 0.5
    return (x * 255).round() / 255


def _measure(metrics, host_workers: int, x: torch.Tensor, batch_sizes: tuple[int, ...]):
    """Per-image values, errors and states of ``x`` at each batch size, through one engine (one pool: a pool
    start costs seconds, and a run reuses its pool batch after batch too)."""
    engine = Engine(CPU, host_workers=host_workers)
    out = []
    try:
        for bs in batch_sizes:
            per_image, errors, states = [], [], {}
            for start in range(0, x.shape[0], bs):
                for m in metrics.values():
                    m.reset()
                r = engine.measure(metrics, x[start:start + bs], None)
                for i in range(r.out.shape[0]):
                    per_image.append({n: float(v[i]) for n, v in r.values.items()})
                    errors.append(r.image_errors[i])
                for n, m in metrics.items():
                    states.setdefault(n, []).append(m.state())
            out.append((bs, per_image, errors, states))
    finally:
        engine.close()
    return out


def test_pool_gives_the_serial_values_at_any_batch_and_pool_size(niqe_params):
    x = _batch()
    metrics = {"niqe": NIQE(weights=str(niqe_params), impl="reference"),
               "niqe-pyiqa": NIQEPyiqa(weights=str(niqe_params))}
    assert all(m.runs_on_host for m in metrics.values())
    ((_, serial, serial_err, serial_states),) = _measure(metrics, 0, x, (5,))
    assert set(serial_err[2]) == {"niqe", "niqe-pyiqa"} and not any(serial_err[i] for i in (0, 1, 3, 4))
    # a pool of one (2 images a batch), more images than workers (5 on 2) and fewer (1 on 2); each pool is reused
    # across its batch sizes
    runs = [(w, *r) for w, sizes in ((1, (2,)), (2, (5, 1))) for r in _measure(metrics, w, x, sizes)]
    assert [(w, bs) for w, bs, *_ in runs] == [(1, 2), (2, 5), (2, 1)]
    for workers, bs, pooled, pooled_err, states in runs:
        assert pooled_err == serial_err, (workers, bs)
        for a, b in zip(serial, pooled):
            assert a.keys() == b.keys()
            for k in a:  # bit-identical (NaN where the image failed)
                assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), (workers, bs, k)
        if bs == 5:  # one batch: the states fold to the serial state's count and (rounding aside) total
            for n in metrics:
                assert float(states[n][0]["count"]) == float(serial_states[n][0]["count"]) == 4
                assert float(states[n][0]["total"]) == pytest.approx(float(serial_states[n][0]["total"]), rel=1e-12)


def test_niqe_runs_on_the_host_only_where_the_reference_runs(niqe_params):
    assert not NIQE(weights=str(niqe_params), precision="float64").runs_on_host
    assert not NIQE(weights=str(niqe_params), impl="device").runs_on_host
    assert NIQE(weights=str(niqe_params), impl="reference").runs_on_host
    auto = NIQE(weights=str(niqe_params))  # the default: the numpy reference on a CPU, the device path on a GPU
    assert auto.runs_on_host and auto.impl_on("cuda") == "device" and auto.impl_on("cpu") == "reference"
    assert NIQE(weights=str(niqe_params), precision="float64").impl_on("cpu") == "device"


def test_pool_size_leaves_cores_for_the_loader(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert default_workers(8) == 7 and default_workers(0) == 15 and default_workers(40) == 1


def test_one_failure_check_per_batch_gives_update_isolated_values(niqe_params, monkeypatch):
    """The engine reads every metric's 'any NaN' back at once; a failing batch still falls back image by image."""
    import bench.engine.step as S

    x = _batch()
    fresh = lambda: {"niqe": NIQE(weights=str(niqe_params)),  # noqa: E731
                     "niqe-f64": NIQE(weights=str(niqe_params), precision="float64")}
    alone = {n: m.update_isolated(x) for n, m in fresh().items()}
    stacks = []
    real_stack = S.torch.stack

    def counting_stack(ts, *a, **k):
        if ts and all(t.dim() == 0 and t.dtype == torch.bool for t in ts):  # the engine's failure flags
            stacks.append(len(ts))
        return real_stack(ts, *a, **k)

    monkeypatch.setattr(S.torch, "stack", counting_stack)
    metrics = fresh()
    r = Engine(CPU).measure(metrics, x, None)
    assert stacks == [2]  # both metrics' flags in one read-back
    for n, (values, errors) in alone.items():
        assert torch.equal(r.values[n].double().isnan(), values.isnan())
        assert torch.equal(r.values[n][~values.isnan()].double(), values[~values.isnan()])
        assert {i: e[n] for i, e in enumerate(r.image_errors) if n in e} == errors == {2: errors[2]}
        assert int(metrics[n].count) == 4  # the failed batch's state was rolled back, then image by image
