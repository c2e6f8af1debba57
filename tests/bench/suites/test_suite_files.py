"""NTIRE suites carry the challenge's official file list (with the commit it was read at); a folder that lacks
official files or holds others is reported before scoring, and a malformed list or files entry is one line."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.cli.app import build_parser
from bench.cli.run import config_from_args
from bench.core.errors import UserError
from bench.suites import load_suite
from bench.suites.spec import parse_suite

FOLDERS = {"CelebA": 100, "LFW-Test": 100, "CelebChild-Test": 50, "WebPhoto-Test": 100, "Wider-Test": 100}


@pytest.mark.parametrize("name, repo, commit, samples", [
    ("ntire2026-rwfr", "jkwang28/NTIRE2026_RealWorld_Face_Restoration", "50e70cd235466db6df0b8d39364531371bc3da37",
     {"CelebA": {"162747", "182021"}, "CelebChild-Test": {"105_Rachel_Bilson_00"}, "Wider-Test": {"0002", "0952"},
      "LFW-Test": {"Zelma_Novelo_0001_00"}, "WebPhoto-Test": {"00006_01", "10048_00"}}),
    ("ntire2025-rwfr", "zhengchen1999/NTIRE2025_RealWorld_Face_Restoration", "b06055cce3239365a6fa9bdd35c92ef0591de89c",
     {"CelebA": {"172003", "168591"}, "CelebChild-Test": {"074_Gwyneth_Paltrow_00", "051_Eminem_00"},
      "Wider-Test": {"0412", "0139"}, "LFW-Test": {"Frank_Pallone_0001_00", "Placido_Domingo_0001_00"},
      "WebPhoto-Test": {"00137_00", "10018_02"}}),
])
def test_the_ntire_suites_carry_the_official_lists_with_their_commits(name, repo, commit, samples):
    suite = load_suite(name)
    assert suite.files is not None and suite.files.commit == commit and repo in suite.files.source
    official = suite.files.read()
    assert {k: len(v) for k, v in official.items()} == FOLDERS  # the challenge's set sizes, per folder
    assert {d.folder: d.images for d in suite.datasets} == FOLDERS
    for folder, stems in samples.items():  # the first and last rows of each set in the repository's CSV
        assert stems <= official[folder], (folder, stems - official[folder])


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))


def test_a_folder_lacking_or_adding_files_is_reported_before_scoring(tmp_path, monkeypatch, capsys, registries):
    suite = load_suite("ntire2026-rwfr")
    official = suite.files.read()
    root = tmp_path / "ntire"
    celeba = sorted(official["CelebA"])
    for stem in celeba[2:]:  # two official faces missing ...
        _png(root / "CelebA" / f"{stem}.png")
    _png(root / "CelebA" / "999999.png")  # ... and one that is not the challenge's
    for stem in official["Wider-Test"]:  # the exact set: nothing to say
        _png(root / "Wider-Test" / f"{stem}.png")
    monkeypatch.setenv("BFRBENCH_NTIRE_RWFR", str(root))
    lines = suite.check_files()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ntire-rwfr/CelebA: {root / 'CelebA'}: 2 of its 100 official files missing "
                               f"({celeba[0]}, {celeba[1]}) and 1 not in the official list (999999)")
    assert "@ 50e70cd23546" in lines[0]
    args = build_parser().parse_args(["run", "--suite", "ntire2026-rwfr", "--methods", "lq"])
    config_from_args(args)  # what `bfrbench run` does before any work
    assert "WARNING ntire-rwfr/CelebA" in capsys.readouterr().err


@pytest.mark.parametrize("files, message", [
    ({"list": "x.txt", "source": "s"}, "files is a mapping"),
    ({"list": "x.txt", "source": "s", "commit": "main"}, "not a 40-digit commit hash"),
    ({"list": "nowhere.txt", "source": "s", "commit": "a" * 40}, "files.list 'nowhere.txt' not found"),
])
def test_a_malformed_files_entry_is_one_line(tmp_path, files, message):
    data = {"name": "s", "datasets": [{"name": "x/A", "folder": "A"}], "metrics": ["niqe"], "files": files}
    with pytest.raises(UserError, match=message):
        parse_suite(data, str(tmp_path / "s.yaml"))


def test_a_malformed_list_line_names_the_file_and_line(tmp_path):
    (tmp_path / "l.txt").write_text("# comment\nA/one\nno-folder\n")
    suite = parse_suite({"name": "s", "datasets": [{"name": "x/A", "folder": "A"}], "metrics": ["niqe"],
                         "files": {"list": "l.txt", "source": "s", "commit": "a" * 40}}, str(tmp_path / "s.yaml"))
    with pytest.raises(UserError, match=r"l.txt:3: expected FOLDER/STEM"):
        suite.files.read()
