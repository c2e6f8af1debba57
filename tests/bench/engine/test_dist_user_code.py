"""``ntire:`` under torchrun (issue 25): the team's code writes one folder, so world size > 1 is refused in one line."""
from __future__ import annotations

import pytest

from bench.core.errors import UserError
from bench.engine import distributed
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import make_folder, register
from tests.methods.test_ntire_team import _cfg, make_team

pytestmark = pytest.mark.usefixtures("registries")


def test_the_rank_check_refuses_only_user_code_under_several_ranks(tmp_path):
    team = make_team(tmp_path / "team")
    two = distributed.Dist(rank=1, world_size=2)
    with pytest.raises(UserError, match=r"runs its team's code in this process: under torchrun each of the 2 ranks"):
        distributed.refuse_in_process_user_code(two, ["lq", f"ntire:{team}"])
    distributed.refuse_in_process_user_code(two, ["lq", "classical"])  # ordinary methods run on every rank
    distributed.refuse_in_process_user_code(distributed.Dist(), [f"ntire:{team}"])  # one process: allowed


def test_a_runner_under_two_ranks_refuses_the_team_before_any_work(tmp_path, monkeypatch):
    ds = register(make_folder(tmp_path / "setD", 2), "ntiredist")
    team = make_team(tmp_path / "team")
    monkeypatch.setattr(distributed, "init", lambda device: distributed.Dist(rank=0, world_size=2))
    with pytest.raises(UserError, match=r"ranks would run it into the same folder; refused") as exc:
        Runner(_cfg(ds, tmp_path / "run", ["lq", f"ntire:{team}"], allow_code=True)).run()
    assert "outputs:DIR" in exc.value.fix
    assert not (team / "calls.jsonl").exists() and not (tmp_path / "run" / "units").exists()
