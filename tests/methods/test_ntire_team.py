"""``ntire:PATH``: an NTIRE challenge team folder run as a method (written for the test), gated by --allow-code."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.cli.app import main as cli
from bench.config import RunConfig
from bench.core.errors import UserError
from bench.core.names import folder_name
from bench.engine.runner import Runner
from methods.ntire_team import locate_team, parse_ntire_spec, team_content_hash
from tests._helpers.runner_helpers import make_folder, register

pytestmark = pytest.mark.usefixtures("registries")  # the test datasets and metrics leave with each test

TEAM = "team07_MedianFace"

#: the team's package: the challenge contract (models/<team>/ exporting main(model_dir, input_path, output_path,
#: device)); it logs each call and its arguments, reads its "weights" from model_dir, and denoises with a median
INIT = "from .inference import main  # noqa\n"
INFERENCE = '''
import json, os
from pathlib import Path

import cv2

def main(model_dir, input_path, output_path, device):
    ksize = int((Path(model_dir) / "ksize.txt").read_text())
    if ksize < 0:
        raise RuntimeError("this team's checkpoint is broken")
    names = sorted(os.listdir(input_path))
    with open(Path(model_dir).parent.parent / "calls.jsonl", "a") as log:
        log.write(json.dumps({"inputs": names, "output": output_path, "device": str(device)}) + "\\n")
    for name in names:
        img = cv2.imread(os.path.join(input_path, name))
        img = cv2.resize(cv2.medianBlur(img, ksize), (512, 512), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(os.path.join(output_path, os.path.splitext(name)[0] + ".png"), img)
'''


def make_team(root: Path, ksize: int = 5) -> Path:
    """A challenge-layout folder: models/<team>/ (code) and model_zoo/<team>/ (its weights)."""
    pkg = root / "models" / TEAM
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(INIT)
    (pkg / "inference.py").write_text(INFERENCE)
    (root / "model_zoo" / TEAM).mkdir(parents=True)
    (root / "model_zoo" / TEAM / "ksize.txt").write_text(str(ksize))
    return root


def _calls(team: Path) -> list[dict]:
    log = team / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _cfg(ds: str, out: Path, methods: list[str], **kw) -> RunConfig:
    base = dict(datasets=[ds], methods=methods, metrics=["test-mae"], out=str(out), device="cpu", batch_size=2,
                workers=0, quiet=True, report=False)
    base.update(kw)
    return RunConfig(**base)


def test_a_team_folder_runs_end_to_end_and_ranks_beside_lq(tmp_path, capsys):
    ds = register(make_folder(tmp_path / "setN", 5), "ntire1")
    team = make_team(tmp_path / "NTIRE2025_RWFR")
    outcome = Runner(_cfg(ds, tmp_path / "run", ["lq", f"ntire:{team}"], allow_code=True, limit=4)).run()
    err = capsys.readouterr().err  # it says it runs the folder's code, even with --quiet
    assert f"runs the Python code in {team}" in err and "--allow-code" in err

    summary = pd.read_csv(outcome.run_dir / "summary.csv")
    mae = summary[summary.metric == "test-mae"].set_index("method")
    assert set(mae.index) == {"lq", "NTIRE2025_RWFR"}
    assert (mae["n"] == 4).all() and (mae["status"] == "ok").all()
    assert mae.loc["NTIRE2025_RWFR", "value"] < mae.loc["lq", "value"]  # the median removes the LQ's noise

    calls = _calls(team)  # called once, on the --limit's 4 images only, with the run's device
    assert len(calls) == 1 and calls[0]["inputs"] == [f"img{i:03d}.png" for i in range(4)]
    assert calls[0]["device"] == "cpu"
    out = outcome.run_dir / "method_outputs" / folder_name("NTIRE2025_RWFR")
    assert Path(calls[0]["output"]) == out / folder_name("setN") / "output.partial"  # renamed to output when done
    assert sorted(p.name for p in out.rglob("output/*.png")) == [f"img{i:03d}.png" for i in range(4)]

    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    params = manifest["methods"]["NTIRE2025_RWFR"]["params"]
    assert params["team"] == TEAM and params["function"] == "main"
    assert params["team_hash"] == team_content_hash(team, TEAM)
    assert manifest["methods"]["NTIRE2025_RWFR"]["outputs"][ds]["team_hash"] == params["team_hash"]

    # the same run again reuses the team's finished outputs; changed weights change the hash and rerun the team
    Runner(_cfg(ds, tmp_path / "run", ["lq", f"ntire:{team}"], allow_code=True, limit=4)).run()
    assert len(_calls(team)) == 1
    (team / "model_zoo" / TEAM / "ksize.txt").write_text("3")
    again = Runner(_cfg(ds, tmp_path / "run", ["lq", f"ntire:{team}"], allow_code=True, limit=4)).run()
    assert len(_calls(team)) == 2
    new = json.loads((again.run_dir / "manifest.json").read_text())["methods"]["NTIRE2025_RWFR"]["params"]
    assert new["team_hash"] == team_content_hash(team, TEAM) != params["team_hash"]


def test_without_the_flag_a_one_line_refusal_and_the_teams_code_never_runs(tmp_path, capsys):
    root = make_folder(tmp_path / "setR", 2)
    team = make_team(tmp_path / "teamR")
    (team / "models" / TEAM / "__init__.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\n" + INIT)
    status = cli(["run", "--datasets", f"folder:{root / 'lq'}::{root / 'gt'}", "--methods", "lq", f"ntire:{team}",
                  "--metrics", "psnr", "--device", "cpu", "--out", str(tmp_path / "run"), "--no-report"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert f"ntire:{team}" in err and "--allow-code" in err and "Traceback" not in err
    assert not (tmp_path / "imported").exists() and not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="--allow-code"):  # the Python API refuses it too
        Runner(_cfg("demo", tmp_path / "run2", [f"ntire:{team}"])).run()
    from bench.core.registry import METHODS

    with pytest.raises(UserError, match="--allow-code"):
        METHODS.create(f"ntire:{team}")


def test_a_failing_team_fails_its_images_and_the_run_goes_on(tmp_path):
    ds = register(make_folder(tmp_path / "setF", 3), "ntire2")
    team = make_team(tmp_path / "broken", ksize=-1)
    outcome = Runner(_cfg(ds, tmp_path / "run", ["lq", f"ntire:{team}"], allow_code=True)).run()
    per = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    rows = per[per.method == "broken"]
    assert len(rows) == 3 and (rows.status == "error").all()
    assert rows.error.str.contains("RuntimeError: this team's checkpoint is broken").all()
    assert (per[per.method == "lq"].status == "ok").all()
    assert not list((outcome.run_dir / "method_outputs").rglob("output"))  # nothing half-written is kept as output


def test_team_folder_location_and_named_function(tmp_path):
    team = make_team(tmp_path / "root")
    assert locate_team(team) == (team.resolve(), TEAM, (team / "model_zoo" / TEAM).resolve())
    assert locate_team(team / "models" / TEAM)[:2] == (team.resolve(), TEAM)
    (team / "models" / "team08_Other").mkdir()
    (team / "models" / "team08_Other" / "__init__.py").write_text("")
    with pytest.raises(UserError, match=f"expected one team package.*{TEAM}, team08_Other"):
        locate_team(team)
    with pytest.raises(UserError, match="does not exist"):
        locate_team(tmp_path / "nowhere")
    assert parse_ntire_spec("ntire:/x/NTIRE/") == ("NTIRE", "/x/NTIRE/", "", "main")
    assert parse_ntire_spec("ntire:/x/N::inference:main") == ("N", "/x/N", "inference", "main")
    assert parse_ntire_spec("ntire:/x/N::run_inference") == ("N", "/x/N", "", "run_inference")
    with pytest.raises(UserError, match="name the team folder"):
        parse_ntire_spec("ntire:")
    with pytest.raises(UserError, match="not MODULE:FUNCTION"):
        parse_ntire_spec("ntire:/x/N::a-b:c")


_PART = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=":"), min_size=1, max_size=12)
_IDENT = st.tuples(st.sampled_from("abcXY_"), st.text("abz_09", max_size=6)).map("".join)


@settings(max_examples=50, deadline=None)
@given(folder=_PART, module=st.lists(_IDENT, min_size=1, max_size=2).map(".".join), func=_IDENT)
def test_spec_parser_round_trips_and_labels_are_printable(folder, module, func):
    if not folder.strip():
        with pytest.raises(UserError, match="name the team folder"):
            parse_ntire_spec(f"ntire:{folder}")
        return
    label, path, mod, fn = parse_ntire_spec(f"ntire:{folder}::{module}:{func}")
    assert (path, mod, fn) == (folder.strip(), module, func)
    assert label.isprintable()
    assert parse_ntire_spec(f"ntire:{folder}")[1:] == (folder.strip(), "", "main")
