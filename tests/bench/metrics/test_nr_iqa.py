"""First-class NR-IQA names (musiq, maniqa, clipiqa, qalign, topiq-face, topiq-nr) over pyiqa."""
from __future__ import annotations

import sys
import types

import pytest
import torch

import bench
import bench.metrics.nr_iqa as nr
import bench.metrics.pyiqa_adapter as adapter
from bench.cli import main
from bench.core.registry import METRICS
from bench.metrics import MetricUnavailable
from bench.weights import WEIGHTS

PYIQA_NAMES = {"musiq": "musiq", "maniqa": "maniqa", "clipiqa": "clipiqa", "qalign": "qalign",
               "topiq-face": "topiq_nr-face", "topiq-nr": "topiq_nr"}


@pytest.fixture
def no_pyiqa(monkeypatch):
    monkeypatch.setattr(nr, "pyiqa_installed", lambda: False)
    monkeypatch.setattr(adapter, "pyiqa_configs", lambda: None)
    monkeypatch.setattr(adapter, "pyiqa_version", lambda: None)


@pytest.fixture
def fake_pyiqa(monkeypatch):
    """A stand-in pyiqa: records what bfrbench asks for and scores a batch by its mean brightness."""
    calls: list[tuple[str, dict]] = []

    class Net(torch.nn.Module):
        lower_better = False

        def forward(self, x):
            return (x.mean(dim=(1, 2, 3)) * 100)[:, None]

    mod = types.ModuleType("pyiqa")

    def create_metric(name, as_loss=False, device=None, **kw):
        calls.append((name, kw))
        return Net()

    mod.create_metric = create_metric
    monkeypatch.setitem(sys.modules, "pyiqa", mod)
    monkeypatch.setattr(nr, "pyiqa_installed", lambda: True)
    configs = {n: {"metric_mode": "NR"} for n in PYIQA_NAMES.values()}
    monkeypatch.setattr(adapter, "pyiqa_configs", lambda: configs)
    monkeypatch.setattr(adapter, "pyiqa_version", lambda: "0.1.99")
    return calls


def test_registered_with_direction_protocol_and_weights_without_pyiqa(no_pyiqa):
    for name, pyiqa_name in PYIQA_NAMES.items():
        e = METRICS.entry(name)
        assert e.higher_better and not e.needs_gt
        assert e.protocol.endswith(f":{pyiqa_name}") and e.protocol.startswith("pyiqa-")
        assert all(w in WEIGHTS for w in e.weights)
        ok, why = e.available()
        assert not ok and "pip install 'bfrbench[iqa]'" in why
        with pytest.raises(MetricUnavailable, match=r"needs pyiqa, which is not installed: pip install 'bfrbench\[iqa\]'"):
            bench.create_metric(name)


def test_listed_with_availability_and_install_command(no_pyiqa, capsys):
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    for name in PYIQA_NAMES:
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert " NO " in line and "pip install 'bfrbench[iqa]'" in line


def test_adapter_runs_pyiqa_under_its_name(fake_pyiqa):
    m = bench.create_metric("topiq-face")
    assert fake_pyiqa[-1][0] == "topiq_nr-face"
    assert m.name == "topiq-face" and m.protocol == "pyiqa-0.1.99:topiq_nr-face" and m.higher_better
    x = torch.stack([torch.full((3, 16, 16), 0.2), torch.full((3, 16, 16), 0.6)])
    v = m.update(x)
    assert v.tolist() == pytest.approx([20.0, 60.0])
    assert m.compute() == pytest.approx(40.0)
    assert m.info()["pyiqa_name"] == "topiq_nr-face"


def test_fetched_checkpoint_is_handed_to_pyiqa(fake_pyiqa, monkeypatch, tmp_path):
    import bench.weights as weights

    ckpt = tmp_path / "musiq_koniq_ckpt-e95806b9.pth"
    ckpt.write_bytes(b"x")
    monkeypatch.setattr(weights, "is_available", lambda name: name == "pyiqa-musiq-koniq")
    monkeypatch.setattr(weights, "expected_path", lambda name: ckpt)
    bench.create_metric("musiq")
    assert fake_pyiqa[-1] == ("musiq", {"pretrained_model_path": str(ckpt)})
    bench.create_metric("clipiqa")  # its backbone comes from OpenAI through pyiqa: no path option
    assert fake_pyiqa[-1] == ("clipiqa", {})
    assert METRICS.entry("musiq").available() == (True, "pyiqa installed; checkpoint pyiqa-musiq-koniq from the "
                                                         "weights manager")
