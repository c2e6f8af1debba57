"""A package index that misbehaves on purpose (127.0.0.1): the deadline covers the index pages and
every read, and package archives obey ``$BFRBENCH_MAX_DOWNLOAD_BYTES`` (issue 20, item 16)."""
from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from bench import weights as W
from bench.weights.url import DEADLINE_ENV, MAX_BYTES_ENV
from tests.bench.weights.test_bounds import Server
from tests.bench.weights.test_pypi import PAYLOAD, PAYLOAD_SHA, build_wheel


@pytest.fixture
def server():
    with Server() as srv:
        yield srv


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    yield tmp_path / "home"
    for name in [n for n in W.WEIGHTS if n.startswith("t-")]:
        del W.WEIGHTS[name]


def trickle(stop: threading.Event, every: float = 0.2):
    """An index page sent one byte at a time, forever (until the test ends)."""
    def serve(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        while not stop.is_set():
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(every)
    return serve


def fetch_in_thread(name: str, index: str, bound: float) -> tuple[BaseException | None, float]:
    """Fetch ``name`` from ``index`` in a thread; (its error, seconds taken), or fail if it outlives ``bound``."""
    box: dict = {}

    def go() -> None:
        try:
            W.fetch(name, pip_args=["--index-url", index], quiet=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["exc"] = exc

    t0 = time.monotonic()
    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), f"fetch still running after {bound} s: the deadline did not cover the index page"
    return box.get("exc"), time.monotonic() - t0


def test_trickling_index_page_obeys_the_download_deadline(server, home, monkeypatch):
    stop = threading.Event()
    server.routes["/simple/bfrbslow/"] = trickle(stop)
    monkeypatch.setenv(DEADLINE_ENV, "1")
    W.register_weights(W.WeightSpec(name="t-slow", filename="w.bin", source="pypi", package="bfrbslow==1.0",
                                    member="bfrbslow/w.bin", sha256=PAYLOAD_SHA))
    try:
        exc, took = fetch_in_thread("t-slow", f"{server.url}/simple/", bound=30)
    finally:
        stop.set()
    assert isinstance(exc, W.MissingWeightsError), exc
    assert "1-second download deadline" in str(exc) and DEADLINE_ENV in str(exc)


def test_package_archive_obeys_max_download_bytes(server, home, monkeypatch, tmp_path):
    wheel = build_wheel(tmp_path / "build", "bfrbbig", "1.0", {"bfrbbig/w.bin": PAYLOAD})
    data = wheel.read_bytes()
    sha = hashlib.sha256(data).hexdigest()

    def page(h: BaseHTTPRequestHandler) -> None:
        body = f'<a href="/files/{wheel.name}#sha256={sha}">{wheel.name}</a>'.encode()
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def archive(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    server.routes["/simple/bfrbbig/"] = page
    server.routes[f"/files/{wheel.name}"] = archive
    W.register_weights(W.WeightSpec(name="t-big", filename="w.bin", source="pypi", package="bfrbbig==1.0",
                                    member="bfrbbig/w.bin", sha256=PAYLOAD_SHA))
    monkeypatch.setenv(MAX_BYTES_ENV, str(len(data) - 1))
    with pytest.raises(W.MissingWeightsError, match=f"{len(data) - 1:,}-byte limit"):
        W.fetch("t-big", pip_args=["--index-url", f"{server.url}/simple/"], quiet=True)
    monkeypatch.setenv(MAX_BYTES_ENV, str(len(data)))  # at the cap: fetched
    assert W.fetch("t-big", pip_args=["--index-url", f"{server.url}/simple/"], quiet=True).read_bytes() == PAYLOAD
