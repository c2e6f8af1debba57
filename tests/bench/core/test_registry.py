"""One registration idiom: a decorated class is the whole change (the worked example of docs/design.md)."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

from bench.core.registry import METRICS, Registry

DESIGN = Path(__file__).resolve().parents[3] / "docs" / "design.md"


def example_source() -> str:
    """The python block after the ``<!-- toy-metric -->`` marker of docs/design.md."""
    m = re.search(r"<!-- toy-metric -->\s*```python\n(.*?)```", DESIGN.read_text(encoding="utf-8"), re.S)
    assert m, "docs/design.md lost its worked example"
    return m.group(1)


@pytest.fixture
def clean_metrics(monkeypatch):
    from bench.core import plugins

    plugins.load_all()
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))  # restored after the test
    return METRICS


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_toy_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def test_the_design_example_registers_a_toy_metric_from_one_file(tmp_path: Path, clean_metrics) -> None:
    path = tmp_path / "toy_mae.py"
    path.write_text(example_source(), encoding="utf-8")
    assert "toy-mae" not in clean_metrics
    load_module(path)

    entry = clean_metrics.entry("toy-mae")
    assert entry.meta["higher_better"] is False and entry.meta["needs_gt"] is True
    assert entry.meta["protocol"] == "toy-mae-rgb-levels"
    assert entry.meta["description"] == "mean absolute error in uint8 levels (a worked example)"
    assert entry.meta["defaults"] == {"scale": 255.0}  # from the constructor's signature
    assert entry.meta["weights"] == [] and entry.meta["standard"] is True  # the base class's defaults
    assert entry.meta["available"]() == (True, "")

    metric = clean_metrics.create("toy-mae")
    pred = torch.zeros(2, 3, 8, 8)
    gt = torch.full((2, 3, 8, 8), 2 / 255)
    gt[1] = 0
    values = metric.update(pred, gt)
    assert values.tolist() == pytest.approx([2.0, 0.0])
    assert metric.compute() == pytest.approx(1.0)
    # options bind through the usual NAME:key=value spec, the label names them
    assert clean_metrics.create("toy-mae:scale=1").scale == 1.0
    assert "toy-mae" in __import__("bench").list_metrics()


def test_register_refuses_a_class_outside_the_base_and_a_nameless_one(clean_metrics) -> None:
    class NotAMetric(torch.nn.Module):
        name = "not-a-metric"

    with pytest.raises(TypeError, match="must subclass Metric"):
        clean_metrics.register(NotAMetric)

    from bench.metrics.base import MeanOfImages

    class Nameless(MeanOfImages):
        pass

    with pytest.raises(ValueError, match="has no name"):
        clean_metrics.register(Nameless)


def test_register_says_how_to_migrate_the_old_keyword_idiom(clean_metrics) -> None:
    with pytest.raises(TypeError, match="class attributes"):
        clean_metrics.register("psnr", higher_better=True)  # type: ignore[call-arg]


def test_a_name_is_registered_once() -> None:
    reg: Registry = Registry("thing")
    reg.add("a", dict)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("A", dict)
    assert reg.entry("a").meta["defaults"] == {}


def test_the_registries_fixture_restores_entries_and_resolvers() -> None:
    from bench.core.registry import DATASETS, METHODS, Entry
    from tests._helpers.registries import restored_registries

    before = (METRICS.names(), METHODS.names(), DATASETS.names())
    assert "psnr" in before[0] and "lq" in before[1]  # the plugins are part of the snapshot
    with restored_registries():
        METRICS.add("psnr", lambda: None, replace=True)  # a test re-pointing a real name
        METHODS.add("test-left-behind", lambda: None)
        DATASETS.add("test-left-behind", lambda: None)
        METHODS.add_resolver("zz", lambda rest: Entry(name=f"zz:{rest}", factory=lambda: None))
        assert "test-left-behind" in METHODS and "zz:a" in METHODS
    assert (METRICS.names(), METHODS.names(), DATASETS.names()) == before
    assert "zz:a" not in METHODS and METRICS.entry("psnr").meta.get("cls") is not None
