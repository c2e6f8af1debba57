"""A set's content fingerprint: the same files in any order and folder agree, one changed pixel does not;
digests are cached on disk (a set is hashed once, a rewritten file again); runs record it, `list` shows it,
and a set that is not the published one is named with how many files differ (run, compare, table)."""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.cli import main
from bench.core import filehash
from bench.core.registry import DATASETS
from bench.data.datasets import BenchmarkSet, create_standard_set
from bench.data.fingerprint import check_published, dataset_fingerprint, fingerprint_files, set_files


def _set(root: Path, n: int = 4, seed: int = 0, order: list[int] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2 * n)]
    for sub in ("lq", "gt"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in order if order is not None else range(n):  # creation order changes the directory's listing order
        cv2.imwrite(str(root / "lq" / f"{i:04d}.png"), imgs[2 * i])
        cv2.imwrite(str(root / "gt" / f"{i:04d}.png"), imgs[2 * i + 1])
    return root


def _fp(root: Path) -> str:
    return dataset_fingerprint(BenchmarkSet("x", root / "lq", root / "gt")).digest


def test_same_files_in_any_order_and_folder_give_one_fingerprint_and_one_pixel_changes_it(tmp_path):
    a = _fp(_set(tmp_path / "a"))
    b = _fp(_set(tmp_path / "elsewhere" / "b", order=[3, 1, 0, 2]))
    assert a == b and len(a) == 64
    pairs = BenchmarkSet("x", tmp_path / "a" / "lq", tmp_path / "a" / "gt").pairs()
    random.Random(0).shuffle(pairs)
    assert dataset_fingerprint(BenchmarkSet("x", tmp_path / "a" / "lq", tmp_path / "a" / "gt"), pairs).digest == a
    img = cv2.imread(str(tmp_path / "a" / "gt" / "0002.png"))
    img[5, 7, 1] ^= 1
    cv2.imwrite(str(tmp_path / "a" / "gt" / "0002.png"), img)
    assert _fp(tmp_path / "a") != a
    # an LQ file and a GT file with the same bytes are still told apart by their side
    c = _set(tmp_path / "c")
    shutil.copy(c / "lq" / "0001.png", c / "gt" / "0001.png")
    swapped = _set(tmp_path / "d")
    shutil.copy(swapped / "gt" / "0001.png", swapped / "lq" / "0001.png")
    assert _fp(c) != _fp(swapped)


def test_the_fingerprint_is_the_sha256_of_the_sorted_name_digest_lines(tmp_path):
    root = _set(tmp_path / "s", n=2)
    files = set_files(BenchmarkSet("x", root / "lq", root / "gt").pairs(), root / "lq", root / "gt")
    assert sorted(files) == ["gt/0000.png", "gt/0001.png", "lq/0000.png", "lq/0001.png"]
    lines = "".join(f"{k}  {hashlib.sha256(files[k].read_bytes()).hexdigest()}\n" for k in sorted(files))
    assert fingerprint_files(files).digest == hashlib.sha256(lines.encode()).hexdigest()


def test_published_check_names_how_many_files_differ(tmp_path):
    root = _set(tmp_path / "s", n=15)
    fp = _fp(root)
    ours = dataset_fingerprint(BenchmarkSet("x", root / "lq", root / "gt"))
    assert check_published("CelebA-Test", ours, fp).status == "matches"
    published = dict(ours.files)
    for k in sorted(published)[:12]:
        published[k] = "0" * 64
    check = check_published("CelebA-Test", ours, "", published)
    assert check.differs and check.message.startswith("not the published CelebA-Test: 12 files differ")
    published["lq/extra.png"] = "1" * 64  # a file the published set has and ours lacks counts too
    assert "13 files differ" in check_published("CelebA-Test", ours, "", published).message
    assert "fingerprint" in check_published("CelebA-Test", ours, "f" * 64).message
    assert check_published("CelebA-Test", ours, "").status == "unknown"


def test_digests_are_cached_on_disk_and_a_rewritten_file_is_hashed_again(tmp_path, monkeypatch):
    f = tmp_path / "a.png"
    f.write_bytes(b"first")
    assert filehash.file_digest(f) == hashlib.sha256(b"first").hexdigest()
    assert filehash.store_path().is_file()
    filehash._CACHE.clear()  # a new process: only the disk cache remembers

    def no_hashing(*a, **k):
        raise AssertionError("hashed again")

    monkeypatch.setattr(filehash.hashlib, "file_digest", no_hashing)
    assert filehash.file_digest(f) == hashlib.sha256(b"first").hexdigest()
    monkeypatch.undo()
    st = f.stat()
    f.write_bytes(b"other")  # same size, mtime set back: only its ctime tells
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    filehash._CACHE.clear()
    assert filehash.file_digest(f) == hashlib.sha256(b"other").hexdigest()


def test_threads_share_the_disk_cache_safely(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    files = []
    for i in range(40):
        (tmp_path / f"{i}.png").write_bytes(bytes([i]) * 1000)
        files.append(tmp_path / f"{i}.png")
    for _ in range(2):  # hashed and stored, then read back from the store
        filehash._CACHE.clear()
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(filehash.file_digest, files))
        assert got == [hashlib.sha256(bytes([i]) * 1000).hexdigest() for i in range(40)]


def test_an_unusable_disk_cache_is_skipped(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / filehash.STORE_NAME).write_bytes(b"not a database" * 100)
    monkeypatch.setenv("BFRBENCH_HOME", str(home))
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    filehash._CACHE.clear()
    assert filehash.file_digest(f) == hashlib.sha256(b"x").hexdigest()


@pytest.fixture
def published_set(tmp_path, monkeypatch, registries):
    """celeba-test under a data root, registered with a published fingerprint of other files."""
    root = tmp_path / "data"
    _set(root / "celeba-test", n=3)
    monkeypatch.setenv("BFRBENCH_DATA", str(root))
    entry = DATASETS.entry("celeba-test")
    published = dict(dataset_fingerprint(create_standard_set("celeba-test")).files)
    published["lq/0001.png"] = "0" * 64
    table = tmp_path / "published.json"
    table.write_text(json.dumps({"files": published}))
    DATASETS.add("celeba-test", entry.factory, replace=True,
                 **{**entry.meta, "published_fingerprint": "", "published_files": str(table)})
    return root


def test_runs_record_the_fingerprint_and_warn_when_the_set_is_not_the_published_one(published_set, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--datasets", "celeba-test", "--methods", "lq", "--metrics", "psnr", "--out", str(out),
                 "--device", "cpu", "--workers", "0", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "WARNING dataset celeba-test: not the published CelebA-Test: 1 file differs" in err
    want = dataset_fingerprint(create_standard_set("celeba-test")).digest
    manifest = json.loads((out / "manifest.json").read_text())
    results = json.loads((out / "results.json").read_text())
    for info in (manifest["datasets"]["celeba-test"], results["datasets"]["celeba-test"]):
        assert info["dataset_fingerprint"] == want and info["published_fingerprint"] == "differs"
    table = tmp_path / "t.yaml"
    table.write_text("name: t\nsource: test\nentries:\n- {dataset: celeba-test, method: lq, metric: psnr, value: 20}\n")
    assert main(["compare", str(out), "--against", str(table), "--no-report"]) in (0, 1)
    assert "WARNING celeba-test: not the published CelebA-Test: 1 file differs" in capsys.readouterr().err
    assert main(["table", str(out), "--format", "markdown"]) == 0  # a merged table says it too
    assert ("WARNING run: celeba-test: not the published CelebA-Test: 1 file differs (its numbers are not comparable "
            "with published ones); its column is not the published benchmark") in capsys.readouterr().err
    assert main(["list", "datasets"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("celeba-test"))
    assert want[:12] in row and "not the published CelebA-Test: 1 file differs" in row


def test_list_says_when_the_set_is_the_published_one(published_set, tmp_path, capsys):
    entry = DATASETS.entry("celeba-test")
    want = dataset_fingerprint(create_standard_set("celeba-test")).digest
    DATASETS.add("celeba-test", entry.factory, replace=True,
                 **{**entry.meta, "published_fingerprint": want, "published_files": None})
    assert main(["list", "datasets"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("celeba-test"))
    assert f"{want[:12]} (the published set)" in row
