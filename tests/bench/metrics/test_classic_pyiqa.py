"""The ``pyiqa:NAME`` resolver: metadata without pyiqa, clear errors, batching through a stand-in pyiqa."""
from __future__ import annotations

import sys
import types

import pytest
import torch

import bench
import bench.metrics.pyiqa_adapter as adapter
from bench.core.registry import METRICS, UnknownNameError
from bench.metrics import MetricUnavailable

FAKE_CONFIGS = {
    "musiq": {"metric_opts": {"type": "MUSIQ"}, "metric_mode": "NR"},
    "niqe": {"metric_opts": {"type": "NIQE"}, "metric_mode": "NR", "lower_better": True},
    "lpips": {"metric_opts": {"type": "LPIPS"}, "metric_mode": "FR", "lower_better": True},
}


class _FakeInference(torch.nn.Module):
    """What pyiqa.create_metric returns: a module called on a batch, giving (B,) or (B, 1)."""

    def __init__(self, name: str, device: torch.device) -> None:
        super().__init__()
        self.metric_name = name
        self.lower_better = FAKE_CONFIGS[name].get("lower_better", False)
        self.scale = torch.nn.Parameter(torch.tensor(2.0))
        self.calls: list[int] = []

    def forward(self, target: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append(target.shape[0])
        score = target.mean(dim=(1, 2, 3)) * self.scale
        if ref is not None:
            score = (target - ref).abs().mean(dim=(1, 2, 3))
        return score[:, None]


@pytest.fixture
def fake_pyiqa(monkeypatch):
    """A stand-in pyiqa package (no weights, no network) and its configs."""
    mod = types.ModuleType("pyiqa")
    built: list[_FakeInference] = []

    def create_metric(name, as_loss=False, device=None, **kw):
        if name == "musiq" and kw.get("fail"):
            raise OSError("HTTP Error 403: weights download refused")
        net = _FakeInference(name, device)
        built.append(net)
        return net

    mod.create_metric = create_metric
    mod.__version__ = "9.9.9"
    monkeypatch.setitem(sys.modules, "pyiqa", mod)
    monkeypatch.setattr(adapter, "pyiqa_configs", lambda: FAKE_CONFIGS)
    monkeypatch.setattr(adapter, "pyiqa_version", lambda: "9.9.9")
    return built


def test_default_set():
    assert adapter.DEFAULT_NRIQA == ("musiq", "maniqa", "clipiqa", "topiq_nr-face", "niqe")


def test_without_pyiqa_metadata_and_error(monkeypatch):
    monkeypatch.setattr(adapter, "pyiqa_configs", lambda: None)
    monkeypatch.setattr(adapter, "pyiqa_version", lambda: None)
    bench.list_metrics()
    for name in adapter.DEFAULT_NRIQA:
        e = METRICS.entry(f"pyiqa:{name}")
        assert e.name == f"pyiqa:{name}"
        assert e.higher_better is (name != "niqe")
        assert e.protocol == f"pyiqa-?:{name}"
        ok, reason = e.available()
        assert not ok and "pip install bfrbench[iqa]" in reason
    with pytest.raises(MetricUnavailable, match=r"pip install bfrbench\[iqa\].*downloads each metric's weights"):
        METRICS.create("pyiqa:musiq")


def test_resolver_with_pyiqa_metadata(fake_pyiqa):
    e = METRICS.entry("pyiqa:niqe")
    assert e.higher_better is False and e.needs_gt is False and e.protocol == "pyiqa-9.9.9:niqe"
    assert METRICS.entry("pyiqa:lpips").needs_gt is True
    assert METRICS.entry("pyiqa:musiq").available()[0]
    with pytest.raises(UnknownNameError, match="Did you mean pyiqa:musiq"):
        METRICS.entry("pyiqa:musqi")
    with pytest.raises(MetricUnavailable, match="empty pyiqa metric name"):
        METRICS.entry("pyiqa:")


def test_batched_scores_direction_and_state(fake_pyiqa):
    m = bench.create_metric("pyiqa:musiq")
    assert m.name == "pyiqa:musiq" and m.higher_better and m.protocol == "pyiqa-9.9.9:musiq"
    x = torch.rand(5, 3, 16, 16)
    vals = m.update(x)
    assert vals.shape == (5,) and vals.dtype == torch.float64
    torch.testing.assert_close(vals, (x.mean(dim=(1, 2, 3)) * 2).double())
    assert fake_pyiqa[-1].calls == [5]  # one call per batch, not per image
    other = bench.create_metric("pyiqa:musiq")
    other.update(x[:2])
    m.merge_state(other.state())
    assert m.compute() == pytest.approx(float(torch.cat([vals, vals[:2]]).mean()))
    assert m.info()["pyiqa_version"] == "9.9.9"
    n = bench.create_metric("pyiqa:niqe")
    assert n.higher_better is False


def test_full_reference_needs_gt(fake_pyiqa):
    m = bench.create_metric("pyiqa:lpips")
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(m.update(a, b), (a - b).abs().mean(dim=(1, 2, 3)).double())
    with pytest.raises(ValueError, match="needs ground truth"):
        m.update(a)


def test_weight_download_failure_is_unavailable(fake_pyiqa):
    with pytest.raises(MetricUnavailable, match=r"pyiqa:musiq could not be built \(OSError: HTTP Error 403.*first use"):
        METRICS.create("pyiqa:musiq", fail=True)


def test_configs_read_without_importing_pyiqa(tmp_path, monkeypatch):
    pkg = tmp_path / "pyiqa"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('importing the package is not allowed here')\n")
    (pkg / "default_model_configs.py").write_text(
        "from collections import OrderedDict\nDEFAULT_CONFIGS = OrderedDict({'musiq': {'metric_mode': 'NR'}})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pyiqa", raising=False)
    adapter.pyiqa_configs.cache_clear()
    try:
        assert adapter.pyiqa_configs() == {"musiq": {"metric_mode": "NR"}}
        assert "pyiqa" not in sys.modules
    finally:
        adapter.pyiqa_configs.cache_clear()


@pytest.mark.slow
def test_live_pyiqa_piqe():
    """With pyiqa installed: pyiqa:piqe (no weights needed) equals pyiqa's own call."""
    pyiqa = pytest.importorskip("pyiqa")
    x = torch.rand(2, 3, 64, 64)
    m = bench.create_metric("pyiqa:piqe")
    assert m.higher_better is False and m.protocol == f"pyiqa-{pyiqa.__version__}:piqe"
    want = pyiqa.create_metric("piqe", device="cpu")(x).reshape(-1).double()
    torch.testing.assert_close(m.update(x), want)
