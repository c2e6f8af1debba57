"""The engine's per-phase breakdown (``profile --e2e``): recorded only when profiling, covering engine_s."""
from __future__ import annotations

import time

import pytest
import torch

from bench.engine import phases as PH
from bench.engine import profiling as P

CPU = torch.device("cpu")
SIZE = 32


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return P.synthetic_pairs(tmp_path_factory.mktemp("synth"), 3, SIZE, seed=1)


def _lq():
    import bench

    method = bench.create_method("lq")
    method.output_size = SIZE
    return method


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_phases_accumulate_per_name_and_time_the_waits():
    clock = FakeClock()
    ph = PH.Phases(CPU, clock)
    with ph("restore"):
        clock.t += 2.0
    with ph("restore"):
        clock.t += 1.0

    def slow():
        for x in (1, 2):
            clock.t += 0.5
            yield x

    assert list(PH.timed_iter(slow(), ph, "data_wait")) == [1, 2]
    assert ph.seconds == {"restore": 3.0, "data_wait": 1.0}
    assert PH.breakdown(ph, 5.0) == {"restore": 3.0, "data_wait": 1.0, "other": 1.0}
    assert PH.format_phases({"restore": 3.0}, 6.0) == "restore 3.00 s (50%)"


def test_a_normal_run_records_no_phases_and_never_syncs(monkeypatch):
    from bench.engine.step import Engine

    calls = []
    monkeypatch.setattr(PH, "synchronize", lambda d: calls.append(d))
    engine = Engine(CPU)
    assert engine.phases is PH.OFF and not engine.phases.enabled
    with engine.phases("restore"):
        pass
    assert calls == [] and PH.OFF.seconds == {}


def test_e2e_phases_cover_the_engine_time(pairs, tmp_path):
    from bench.engine.e2e import end_to_end

    start = time.perf_counter()
    entry = end_to_end("lq", _lq, ["psnr", "ssim"], pairs, tmp_path / "e2e", device=CPU, batch_size=2,
                       size=SIZE)
    outer_s = time.perf_counter() - start  # measured here, not by the code under test
    phases = entry["phases"]
    for name in ("setup", "data_wait", "restore", "upload", "metric:psnr", "metric:ssim", "host_copy",
                 "shard_write", "merge", "compute:psnr", "compute:ssim", "other"):
        assert name in phases and phases[name] >= 0, name
    measured = sum(v for k, v in phases.items() if k != "other")
    # the phases are disjoint pieces of the engine's clock: never more than it, and together nearly all of it
    assert measured <= entry["engine_s"] * 1.001
    assert 0 < entry["engine_s"] <= outer_s and entry["model_only_s"] + entry["engine_s"] <= outer_s
    assert measured >= 0.5 * entry["engine_s"]
