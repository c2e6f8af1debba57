"""The one YAML loader (configs, suites, paper tables, option values) is bounded: size, alias expansion
(the "billion laughs"), nesting and self-reference are one UserError, in bounded time and memory."""
from __future__ import annotations

import tracemalloc

import pytest

from bench.cli import main
from bench.core.errors import UserError
from bench.core.options import MAX_YAML_NODES, read_yaml_file, yaml_load


def bomb(levels: int = 9, key: str = "description") -> str:
    """The classic nested-alias document: 9 levels of 9 aliases expand to 9**9 strings (~560 bytes)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij"[: levels - 1]):
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    last = "abcdefghij"[levels - 1]
    return "\n".join(lines) + f"\n{key}: *{last}\n"


def test_a_billion_laughs_document_is_refused_in_bounded_memory():
    text = bomb()
    assert len(text) < 700
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="expands to more than"):
            yaml_load(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # the document is never expanded (it was 4 GB before)


def test_aliases_within_the_bound_still_load():
    data = yaml_load("base: &b {batch_size: 4, workers: 0}\nrun: *b\nlist: [*b, *b]\n")
    assert data["run"] == {"batch_size": 4, "workers": 0} and len(data["list"]) == 2
    small = bomb(levels=3)  # 9**3 = 729 values: fine
    assert len(yaml_load(small)["description"]) == 9


@pytest.mark.parametrize("text, match", [
    ("a: &a [*a]\n", "refers to itself"),
    ("x: " + "[" * 200 + "]" * 200 + "\n", "nested"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
])
def test_self_reference_and_deep_nesting_are_refused(text, match):
    with pytest.raises(UserError, match=match):
        yaml_load(text)


def test_files_over_the_size_bound_fifos_and_bad_bytes_are_one_line(tmp_path):
    import os

    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * (1 << 20) + "\n")
    with pytest.raises(UserError, match="larger than"):
        read_yaml_file(big, "suite")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        read_yaml_file(fifo, "suite")  # never blocks waiting for a writer
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00x")
    with pytest.raises(UserError, match="not UTF-8"):
        read_yaml_file(binary, "suite")
    broken = tmp_path / "broken.yaml"
    broken.write_text("{{{{")
    with pytest.raises(UserError) as err:
        read_yaml_file(broken, "suite")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("command", ["suite", "config", "table"])
def test_every_command_refuses_the_bomb_with_one_line(tmp_path, capsys, command):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    argv = {"suite": ["run", "--suite", str(path), "--out", str(tmp_path / "r")],
            "config": ["run", "--config", str(path), "--out", str(tmp_path / "r")],
            "table": ["compare", str(tmp_path), "--against", str(path)]}[command]
    if command == "table":
        (tmp_path / "summary.csv").write_text("dataset,method,metric,value\nd,m,x,1\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"more than {MAX_YAML_NODES}" in err and len(err.strip().splitlines()) == 1
