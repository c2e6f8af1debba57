"""`bfrbench fetch celeba-test ...` against a hub-like server on 127.0.0.1: a good download lands in the canonical
layout with its record, a truncated transfer is retried and a partial file an interrupted run left is resumed, a wrong SHA-256 is refused,
an archive whose member escapes the data root is refused, and a set without a hashed source gets one line."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.cli import main
from bench.core.errors import UserError
from bench.data import fetch as fetch_sets
from bench.data.datasets import HUB_REPO, create_standard_set
from bench.data.fingerprint import dataset_fingerprint

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _zip(folder: str, n: int, seed: int, extra: dict[str, bytes] | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            ok, png = cv2.imencode(".png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            zf.writestr(f"{folder}/{i:08d}.png", png.tobytes())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


class Hub:
    """Serves files like the hub's resolve endpoint: HEAD states commit, SHA-256 (ETag) and size; GET honours Range."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.stated_sha: dict[str, str] = {}
        self.truncate_once: set[str] = set()
        self.ranges: list[str | None] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _file(self) -> tuple[str, bytes] | None:
                """The requested file, or None after answering 404."""
                prefix = f"/datasets/{HUB_REPO}/resolve/main/"
                name = self.path.split("?")[0][len(prefix):] if self.path.startswith(prefix) else ""
                if name in hub.files:
                    return name, hub.files[name]
                self.send_response(404)
                self.end_headers()
                return None

            def do_HEAD(self):
                found = self._file()
                if found is None:
                    return
                name, data = found
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{hub.stated_sha.get(name, hashlib.sha256(data).hexdigest())}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()

            def do_GET(self):
                found = self._file()
                if found is None:
                    return
                name, data = found
                rng = self.headers.get("Range")
                hub.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in hub.truncate_once:  # promise everything, send half, hang up
                    hub.truncate_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *a) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    monkeypatch.setenv("BFRBENCH_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    with Hub() as h:
        h.files["self_celeba_512_v2.zip"] = _zip("self_celeba_512_v2", 5, 0)
        h.files["celeba_512_validation.zip"] = _zip("celeba_512_validation", 5, 1)
        h.files["lfw_cropped_faces.zip"] = _zip("lfw_cropped_faces", 4, 2, {"__MACOSX/._x.png": b"junk"})
        yield h


def test_a_good_download_lands_in_the_canonical_layout_with_its_record(hub, tmp_path):
    root = tmp_path / "data"
    target = fetch_sets.fetch_set("celeba-test", endpoint=hub.url)
    assert target == root / "celeba-test"
    assert sorted(p.name for p in (target / "lq").iterdir()) == [f"{i:08d}.png" for i in range(5)]
    with zipfile.ZipFile(io.BytesIO(hub.files["celeba_512_validation.zip"])) as zf:
        assert (target / "gt" / "00000003.png").read_bytes() == zf.read("celeba_512_validation/00000003.png")
    record = fetch_sets.fetched_record("celeba-test")
    ds = create_standard_set("celeba-test")
    assert ds.lq_dir == target / "lq" and ds.gt_dir == target / "gt"
    assert record["commit"] == [COMMIT] and record["repo"] == f"datasets/{HUB_REPO}"
    assert record["dataset_fingerprint"] == dataset_fingerprint(ds).digest
    assert {a["sha256"] for a in record["archives"]} == {hashlib.sha256(hub.files[f]).hexdigest()
                                                        for f in ("self_celeba_512_v2.zip", "celeba_512_validation.zip")}
    assert not list((root / ".fetch").glob("*.zip")) and not list((root / ".fetch").glob("*.part"))
    assert [p.name for p in root.iterdir() if p.name.startswith(".celeba")] == []  # no staging left behind
    n = len(hub.ranges)
    assert fetch_sets.fetch_set("celeba-test", endpoint=hub.url) == target and len(hub.ranges) == n  # no refetch
    # LFW: the one image folder is found; macOS metadata is not a second one
    assert len(list((fetch_sets.fetch_set("lfw-test", endpoint=hub.url) / "lq").iterdir())) == 4


def test_a_truncated_transfer_is_retried_and_a_partial_file_is_resumed(hub, tmp_path):
    hub.truncate_once.add("lfw_cropped_faces.zip")
    target = fetch_sets.fetch_set("lfw-test", endpoint=hub.url)
    assert len(hub.ranges) == 2  # the cut transfer was tried again (from the bytes written, here none) ...
    with zipfile.ZipFile(io.BytesIO(hub.files["lfw_cropped_faces.zip"])) as zf:  # ... and the set is whole
        assert (target / "lq" / "00000003.png").read_bytes() == zf.read("lfw_cropped_faces/00000003.png")
    # across runs: a .part an interrupted run left is continued from its length
    data = hub.files["self_celeba_512_v2.zip"]
    work = tmp_path / "data" / ".fetch"
    (work / f"{hashlib.sha256(data).hexdigest()}.part").write_bytes(data[:100])
    hub.ranges.clear()
    fetch_sets.fetch_set("celeba-test", endpoint=hub.url)
    assert "bytes=100-" in hub.ranges
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert (tmp_path / "data" / "celeba-test" / "lq" / "00000001.png").read_bytes() == \
            zf.read("self_celeba_512_v2/00000001.png")


def test_a_wrong_hash_is_refused_and_nothing_is_installed(hub, tmp_path):
    hub.stated_sha["lfw_cropped_faces.zip"] = "ab" * 32
    with pytest.raises(fetch_sets.DatasetFetchError, match=r"lfw_cropped_faces.zip: refused: .* the hub states .* "
                                                           r"SHA-256 abab"):
        fetch_sets.fetch_set("lfw-test", endpoint=hub.url)
    assert not (tmp_path / "data" / "lfw-test").exists()
    assert not list((tmp_path / "data" / ".fetch").glob("*.part"))


@pytest.mark.parametrize("evil", ["../escaped.png", "/tmp/abs-escape.png", "a/../../escaped.png"])
def test_an_archive_with_a_member_escaping_the_data_root_is_refused(hub, tmp_path, evil):
    hub.files["lfw_cropped_faces.zip"] = _zip("lfw_cropped_faces", 2, 3, {evil: b"\x89PNG"})
    with pytest.raises(fetch_sets.DatasetFetchError, match="would land outside the data root; the archive is refused"):
        fetch_sets.fetch_set("lfw-test", endpoint=hub.url)
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "data" / "lfw-test").exists()
    assert not Path("/tmp/abs-escape.png").exists()
    assert [p.name for p in (tmp_path / "data").iterdir() if p.name.startswith(".lfw")] == []


def test_a_link_member_is_refused(hub, tmp_path):
    buf = io.BytesIO(hub.files["lfw_cropped_faces.zip"])
    with zipfile.ZipFile(buf, "a") as zf:
        info = zipfile.ZipInfo("lfw_cropped_faces/link.png")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    hub.files["lfw_cropped_faces.zip"] = buf.getvalue()
    with pytest.raises(fetch_sets.DatasetFetchError, match="is a link"):
        fetch_sets.fetch_set("lfw-test", endpoint=hub.url)


def test_the_cli_fetches_lists_and_gives_one_line_for_sets_without_a_source(hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert main(["fetch", "lfw-test", "webphoto-test", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"lfw-test: {tmp_path / 'data' / 'lfw-test'}" in out
    line = next(line for line in out.splitlines() if line.startswith("webphoto-test:"))
    assert "RestoreFormerPlusPlus" in line and str(tmp_path / "data" / "webphoto-test" / "lq") in line
    assert main(["fetch", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in ("celeba-test", "lfw-test", "webphoto-test", "wider-test", "celebchild-test"):
        assert name in listing
    assert "yes" in next(line for line in listing.splitlines() if line.startswith("lfw-test"))


def test_a_folder_not_made_by_fetch_is_left_untouched(hub, tmp_path):
    (tmp_path / "data" / "lfw-test").mkdir()
    (tmp_path / "data" / "lfw-test" / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="not made by `bfrbench fetch`"):
        fetch_sets.fetch_set("lfw-test", endpoint=hub.url)
    assert (tmp_path / "data" / "lfw-test" / "mine.txt").read_text() == "keep"
