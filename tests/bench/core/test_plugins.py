"""Third-party methods and metrics through the ``bfrbench.plugins`` entry point: list, run and restore see them."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from bench.cli import main
from bench.core import plugins
from bench.core.registry import METHODS, METRICS
from tests._helpers.runner_helpers import make_folder

PLUGIN = textwrap.dedent('''
    """A third-party plugin: one method and one metric, registered as the built-ins are."""
    import torch

    from bench.core.registry import METHODS, METRICS
    from bench.metrics.base import MeanOfImages
    from methods.base import RestorationMethod


    @METHODS.register
    class Darken(RestorationMethod):
        name = "acme-darken"
        family = "acme"
        description = "halves every pixel (a third-party method)"

        def __init__(self, weights=None, factor: float = 0.5) -> None:
            super().__init__(factor=factor)
            self.factor = factor

        def restore(self, lq):
            out = torch.nn.functional.interpolate(lq, size=(self.output_size,) * 2, mode="bilinear",
                                                  align_corners=False)
            return (out * self.factor).clamp(0, 1)


    @METRICS.register
    class Brightness(MeanOfImages):
        name = "acme-brightness"
        protocol = "acme-mean-level"
        description = "mean level in [0, 1] (a third-party metric)"

        def score(self, pred, gt):
            return pred.double().mean(dim=(1, 2, 3))
''')


@pytest.fixture
def acme_plugin(tmp_path, monkeypatch):
    """The plugin module and a dist-info declaring its entry point, on a temporary sys.path entry."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "acme_bfr.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "acme_bfr-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-bfr\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[bfrbench.plugins]\nacme = acme_bfr\n", encoding="utf-8")
    plugins.load_all()  # the built-ins first, as in a fresh process
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))  # the plugin's entries leave with the test
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    monkeypatch.setattr(plugins, "_THIRD_PARTY_LOADED", False)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(__import__("sys").modules, "acme_bfr", raising=False)
    return site


def test_entry_point_is_found_from_metadata(acme_plugin):
    assert [ep.name for ep in plugins.entry_points()] == ["acme"]
    assert "acme-darken" not in METHODS
    plugins.load_all()
    assert "acme-darken" in METHODS and "acme-brightness" in METRICS


def test_plugin_in_list_run_and_restore(acme_plugin, tmp_path, capsys):
    assert main(["list", "methods"]) == 0
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "acme-darken" in out and "halves every pixel" in out and "acme-brightness" in out

    data = make_folder(tmp_path / "faces", 2, size=32)
    rc = main(["run", "--datasets", f"folder:{data}", "--methods", "acme-darken", "lq",
               "--metrics", "acme-brightness", "--out", str(tmp_path / "run"), "--device", "cpu", "--workers", "0",
               "--quiet", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    s = pd.read_csv(tmp_path / "run" / "summary.csv")
    s = s[s.metric == "acme-brightness"].set_index("method")["value"]
    assert s["acme-darken"] == pytest.approx(s["lq"] * 0.5, abs=1 / 255)

    rc = main(["restore", "--method", "acme-darken:factor=0.25", "--input", str(data / "lq"),
               "--output", str(tmp_path / "out"), "--aligned", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["img000.png", "img001.png"]


def test_a_broken_plugin_is_a_warning_not_a_crash(acme_plugin):
    (acme_plugin / "acme_bfr.py").write_text("raise RuntimeError('acme is broken')\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"plugin acme \(acme_bfr\) not loaded: RuntimeError: acme is broken"):
        plugins.load_all()
    assert "psnr" in METRICS
