"""bench.weights URL downloads against a local HTTP server: resume, verification, quarantine, offline."""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench import weights as W

DATA = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(DATA).hexdigest()


class AssetServer:
    """A 127.0.0.1 file server with HTTP Range support that can drop connections or lie about files."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, list[int]] = {}  # path -> byte counts at which to cut the next responses
        self.ranges = True
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and server.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cuts = server.drop_after.get(self.path)
                if cuts:
                    cut = cuts.pop(0)
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        # the server stops by itself even if a test hangs
        self.watchdog = threading.Timer(120, self.httpd.shutdown)

    def __enter__(self) -> AssetServer:
        self.thread.start()
        self.watchdog.start()
        return self

    def __exit__(self, *exc) -> None:
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server():
    with AssetServer() as srv:
        yield srv


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    yield tmp_path / "home"
    for name in [n for n in W.WEIGHTS if n.startswith("t-")]:  # only the test's own specs: plugins stay loaded
        del W.WEIGHTS[name]


def spec(server: AssetServer, name: str = "t-url", path: str = "/w.pth", **kw) -> W.WeightSpec:
    server.files.setdefault(path, DATA)
    kw.setdefault("size", len(DATA))
    kw.setdefault("sha256", SHA)
    return W.register_weights(W.WeightSpec(name=name, filename=f"{name}.pth", url=server.url + path, **kw))


def fetch(name: str, **kw) -> Path:
    kw.setdefault("quiet", True)
    kw.setdefault("backoff", 0.0)
    kw.setdefault("timeout", 10.0)
    return W.fetch(name, **kw)


def test_download_verified_and_cached(server, home):
    spec(server)
    path = fetch("t-url")
    assert path == home / "weights" / "t-url.pth" and path.read_bytes() == DATA
    assert not path.with_name("t-url.pth.part").exists()
    # a verified copy is not downloaded again
    n = len(server.log)
    assert fetch("t-url") == path and len(server.log) == n
    assert W.resolve("t-url") == path


def test_interrupted_download_resumes_with_range(server, home):
    spec(server)
    server.drop_after["/w.pth"] = [100_000, 50_000]
    path = fetch("t-url", retries=5)
    assert path.read_bytes() == DATA
    assert server.log == [("/w.pth", None), ("/w.pth", "bytes=100000-"), ("/w.pth", "bytes=150000-")]


def test_partial_file_kept_between_fetch_calls(server, home):
    spec(server)
    server.drop_after["/w.pth"] = [120_000]
    with pytest.raises(W.MissingWeightsError) as err:
        fetch("t-url", retries=1)
    part = home / "weights" / "t-url.pth.part"
    assert part.stat().st_size == 120_000
    assert "is kept" in str(err.value) and "bfrbench fetch t-url" in str(err.value)
    assert not W.expected_path("t-url").exists()
    assert fetch("t-url").read_bytes() == DATA
    assert server.log[-1] == ("/w.pth", "bytes=120000-")


def test_server_without_range_support_restarts(server, home):
    spec(server)
    server.ranges = False
    server.drop_after["/w.pth"] = [70_000]
    assert fetch("t-url", retries=3).read_bytes() == DATA


def test_corrupted_download_rejected_and_quarantined(server, home):
    bad = bytearray(DATA)
    bad[12345] ^= 0xFF
    server.files["/w.pth"] = bytes(bad)
    spec(server)
    with pytest.raises(W.WeightsVerificationError) as err:
        fetch("t-url")
    msg = str(err.value)
    assert "fails its SHA-256 check" in msg and SHA in msg and hashlib.sha256(bad).hexdigest() in msg
    assert not W.expected_path("t-url").exists()
    assert not (home / "weights" / "t-url.pth.part").exists()  # the next fetch starts from scratch
    assert err.value.quarantined.read_bytes() == bytes(bad)
    assert "SHA-256" in Path(str(err.value.quarantined) + ".reason.txt").read_text()


def test_corrupted_cached_file_detected_and_replaced(server, home):
    spec(server)
    path = fetch("t-url")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(W.MissingWeightsError, match="fails its SHA-256 check"):
        W.resolve("t-url")
    assert fetch("t-url").read_bytes() == DATA
    assert list((home / "weights" / "quarantine").glob("t-url.pth.*"))


def test_truncated_file_from_server_rejected(server, home):
    server.files["/w.pth"] = DATA[:200_000]  # a short file served "successfully"
    spec(server)
    with pytest.raises(W.MissingWeightsError) as err:
        fetch("t-url")
    msg = str(err.value)
    assert "sends 200,000 bytes, expected 300,000" in msg and f"{len(DATA):,}" in msg
    assert not W.expected_path("t-url").exists()


def test_truncated_cached_file_rejected(server, home):
    spec(server)
    W.expected_path("t-url").parent.mkdir(parents=True)
    W.expected_path("t-url").write_bytes(DATA[:1000])
    with pytest.raises(W.MissingWeightsError, match=r"is truncated \(1,000 bytes, expected 300,000\)"):
        W.resolve("t-url")
    assert fetch("t-url").read_bytes() == DATA


def test_connection_always_dropping_gives_up(server, home):
    spec(server)
    server.drop_after["/w.pth"] = [10_000] * 10
    with pytest.raises(W.MissingWeightsError, match="could not be downloaded"):
        fetch("t-url", retries=3)
    assert len(server.log) == 3
    assert (home / "weights" / "t-url.pth.part").stat().st_size == 30_000


def test_wrong_published_hash_quarantined(server, home):
    spec(server, sha256="f" * 64)
    with pytest.raises(W.WeightsVerificationError, match="quarantine"):
        fetch("t-url")
    assert [p.read_bytes() == DATA for p in (home / "weights" / "quarantine").glob("t-url.pth.*")
            if not p.name.endswith(".txt")] == [True]


def test_hash_pinned_on_first_download_then_enforced(server, home):
    spec(server, sha256=None, size=None)
    fetch("t-url")
    pins = json.loads((home / "weights" / "pins.json").read_text())
    assert pins["t-url"]["sha256"] == SHA and pins["t-url"]["size"] == len(DATA)
    assert pins["t-url"]["origin"] == server.url + "/w.pth"
    # upstream replaces the file: the pin catches it, the verified copy stays
    server.files["/w.pth"] = DATA[::-1]
    with pytest.raises(W.WeightsVerificationError, match=f"pinned {SHA}"):
        fetch("t-url", force=True)
    assert W.expected_path("t-url").read_bytes() == DATA


def test_hash_prefix_checked(server, home):
    spec(server, sha256=None, extra={"hash_prefix": "abcdef12"})
    with pytest.raises(W.WeightsVerificationError, match="starting with abcdef12"):
        fetch("t-url")
    W.WEIGHTS.pop("t-url")
    spec(server, name="t-url2", sha256=None, extra={"hash_prefix": SHA[:8]})
    assert fetch("t-url2").read_bytes() == DATA


def test_http_404_is_not_retried_and_mirror_used(server, home):
    server.files["/w.pth"] = DATA
    spec(server, path="/gone.pth", extra={"mirrors": (server.url + "/w.pth",)})
    del server.files["/gone.pth"]
    assert fetch("t-url", retries=4).read_bytes() == DATA
    assert [p for p, _ in server.log] == ["/gone.pth", "/w.pth"]


def test_offline_mode_never_touches_network(server, home, monkeypatch):
    spec(server)
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    with pytest.raises(W.MissingWeightsError, match="offline mode is on") as err:
        fetch("t-url")
    assert str(W.expected_path("t-url")) in str(err.value)
    assert server.log == []
    monkeypatch.delenv(W.OFFLINE_ENV)
    fetch("t-url")
    n = len(server.log)
    assert fetch("t-url", offline=True) == W.expected_path("t-url") and len(server.log) == n


def test_missing_weights_message_says_how_to_get_them(server, home):
    spec(server)
    with pytest.raises(W.MissingWeightsError) as err:
        W.resolve("t-url")
    msg = str(err.value)
    for part in (server.url + "/w.pth", str(W.expected_path("t-url")), "300,000 bytes", "bfrbench fetch t-url"):
        assert part in msg


def test_cli_fetch_and_list(server, home, capsys):
    from bench.cli import main

    spec(server)
    assert main(["fetch", "t-url", "--offline"]) == 2
    assert "offline mode" in capsys.readouterr().err
    assert main(["fetch", "t-url", "--quiet"]) == 0
    assert str(W.expected_path("t-url")) in capsys.readouterr().out
    assert main(["fetch", "--list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("t-url "))
    assert " yes " in line and server.url in line


def test_register_tolerates_identical_and_compatible_specs(home):
    a = W.WeightSpec(name="t-reg", filename="r.pth", url="https://x/r.pth", size=10)
    W.register_weights(a)
    W.register_weights(a)
    merged = W.register_weights(W.WeightSpec(name="t-reg", filename="r.pth", url="https://x/r.pth", sha256="a" * 64,
                                             description="same file, more known"))
    assert merged.size == 10 and merged.sha256 == "a" * 64
    with pytest.raises(ValueError, match="filename"):
        W.register_weights(W.WeightSpec(name="t-reg", filename="other.pth", url="https://x/r.pth"))
    with pytest.raises(ValueError, match="size"):
        W.register_weights(W.WeightSpec(name="t-reg", filename="r.pth", url="https://x/r.pth", size=11))


def test_a_failed_fetch_says_each_error_once_and_not_the_same_command(home, monkeypatch, capsys):
    """An unreachable host: the URL error once with its count, and advice other than `bfrbench fetch NAME` itself."""
    import time

    from bench.cli import main

    W.register_weights(W.WeightSpec(name="t-dead", filename="t-dead.pth", url="http://127.0.0.1:9/dead.pth"))
    monkeypatch.setattr(time, "sleep", lambda s: None)
    rc = main(["fetch", "t-dead", "--retries", "4", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.count("http://127.0.0.1:9/dead.pth: URLError") == 1 and "(4 attempts)" in err, err
    assert "bfrbench fetch t-dead" not in err and "HTTPS_PROXY" in err
    assert err.count("http://127.0.0.1:9/dead.pth") == 2  # the error, and the by-hand download in the fix


def test_a_file_in_torch_hubs_cache_is_used_not_downloaded(server, home, tmp_path, monkeypatch):
    """vgg16-397923af.pth & co.: torch hub's copy under the URL's file name is verified and copied; a wrong one is not."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    spec(server)
    (hub / "w.pth").write_bytes(DATA)
    assert fetch("t-url").read_bytes() == DATA and server.log == []  # nothing downloaded
    assert (hub / "w.pth").read_bytes() == DATA  # torch hub's file is left where it was
    W.expected_path("t-url").unlink()
    (hub / "w.pth").write_bytes(DATA[:-1] + b"x")  # same name, other bytes: downloaded instead
    assert fetch("t-url").read_bytes() == DATA and server.log == [("/w.pth", None)]
