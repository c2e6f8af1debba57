"""``bfrbench compare RUN --against TABLE``: paper value, ours, diff, within tolerance; comparison.csv; the report."""
from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main
from bench.compare import Tolerance, builtin_tables, load_table
from bench.config import RunConfig
from bench.core.errors import UserError
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import make_folder, register


def test_builtin_tables_carry_the_protocol_notes_numbers_and_a_source():
    assert {"codeformer-paper", "dmdp-fr-reeval"} <= set(builtin_tables())
    cf = {(e.dataset, e.metric): e.value for e in load_table("codeformer-paper").entries}
    assert cf[("celeba-test", "lpips")] == 0.299 and cf[("celeba-test", "fid")] == 60.62
    assert cf[("celeba-test", "psnr")] == 22.18 and cf[("webphoto-test", "fid")] == 83.19
    re = {(e.dataset, e.metric): e.value for e in load_table("dmdp-fr-reeval").entries}
    assert re[("lfw-test", "musiq")] == 71.43 and re[("wider-test", "fid")] == 40.01
    for name in builtin_tables():
        assert "protocol.md" in load_table(name).source
    assert Tolerance(rel=0.05).allowed(60.0) == pytest.approx(3.0)
    assert Tolerance(abs=0.3, rel=0.01).allowed(10.0) == pytest.approx(0.3)  # the wider bound


def test_compare_flags_a_value_outside_tolerance(tmp_path, capsys):
    root = make_folder(tmp_path / "setC", 3)
    ds = register(root, "compare")
    cfg = RunConfig(datasets=[ds], methods=["lq", "classical"], metrics=["test-mae"], out=str(tmp_path / "run"),
                    device="cpu", batch_size=2, workers=0, quiet=True, report=True)
    from bench.cli.run import present

    outcome = Runner(cfg).run()
    present(outcome, cfg)
    s = pd.read_csv(tmp_path / "run" / "summary.csv").set_index("method")
    lq, cl = float(s.loc["lq", "value"]), float(s.loc["classical", "value"])
    table = tmp_path / "table.yaml"
    table.write_text(f"""
name: mytable
source: "made up for the test"
tolerance: {{test-mae: {{abs: 0.5}}}}
entries:
  - {{dataset: setC, method: lq, metric: test-mae, value: {lq + 0.4}}}
  - {{dataset: setC, method: classical, metric: test-mae, value: {cl + 2.0}}}
  - {{dataset: setC, method: paper-method, metric: test-mae, value: 1.0}}
  - {{dataset: setC, method: lq, metric: test-mae, value: {lq * 1.1}, tolerance: {{rel: 0.2}}}}
""")
    rc = main(["compare", str(tmp_path / "run"), "--against", str(table), "--map", "paper-method=nothing"])
    assert rc == 1  # one value is outside its tolerance
    out = capsys.readouterr().out
    assert "within tolerance: 2, outside: 1, not in this run: 1" in out
    c = pd.read_csv(tmp_path / "run" / "comparison.csv")
    assert list(c.within) == ["yes", "no", "not in run", "yes"]
    assert c.loc[1, "diff"] == pytest.approx(-2.0) and c.loc[1, "paper"] == pytest.approx(cl + 2.0)
    assert c.loc[2, "method"] == "nothing"  # --map renamed the table's method
    html = (tmp_path / "run" / "index.html").read_text()
    assert 'id="reproduction"' in html and "made up for the test" in html
    with pytest.raises(UserError, match="built-in: codeformer-paper"):
        load_table("nope")
