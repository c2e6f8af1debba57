"""Issue 12 (part B): a run never loses or corrupts results silently.

One image's metric failure, concurrent runs on one folder, shards of another batch geometry.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.core.registry import METRICS
from bench.engine.runner import LOCK_NAME, Runner
from bench.metrics.base import MeanOfImages
from tests._helpers.runner_helpers import make_folder, register

#: tests here register methods and metrics; each test's are gone after it
pytestmark = pytest.mark.usefixtures("registries")

REPO = Path(__file__).resolve().parents[3]


def _cfg(ds: str, out: Path, **kw) -> RunConfig:
    base = dict(datasets=[ds], methods=["lq", "classical"], metrics=["test-mae", "test-setmean"],
                out=str(out), device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    base.update(kw)
    return RunConfig(**base)


def _with_flat_image(root: Path, name: str = "img001") -> Path:
    """Replace one LQ image by a flat grey one (a 1x1 input upscaled gives the same)."""
    cv2.imwrite(str(root / "lq" / f"{name}.png"), np.full((64, 64, 3), 128, np.uint8))
    return root


class FlatHating(MeanOfImages):
    """Like a batched linear-algebra metric: a flat image anywhere in the batch makes the batch raise."""

    name = "test-flathate"
    protocol = "test"

    def score(self, pred, gt):
        flat = pred.flatten(1).std(1) == 0
        if bool(flat.any()):
            raise RuntimeError("linalg.svd: the input matrix contained non-finite values")
        return pred.flatten(1).mean(1) * 255


def _register_flathate() -> None:
    if "test-flathate" not in METRICS:
        METRICS.add("test-flathate", FlatHating, protocol="test", higher_better=True, needs_gt=False)


# -- item 1: one image's failure costs only that image; never depends on batch size --------


def test_a_failing_image_costs_only_its_own_value_at_any_batch_size(tmp_path):
    _register_flathate()
    root = _with_flat_image(make_folder(tmp_path / "setF", 4))
    ds = register(root, "relF")
    runs = {}
    for bs in (1, 4):
        out = Runner(_cfg(ds, tmp_path / f"run{bs}", methods=["lq"], metrics=["test-flathate", "test-mae"],
                          batch_size=bs)).run()
        runs[bs] = (out.summary, pd.read_parquet(out.run_dir / "per_image.parquet"))
    for bs, (summary, per_image) in runs.items():
        row = summary[summary.metric == "test-flathate"].iloc[0]
        assert row.status == "ok" and row.n == 3, bs
        flat = per_image[per_image.image == "img001"].iloc[0]
        assert np.isnan(flat["test-flathate"]) and "test-flathate: RuntimeError" in flat["error"], bs
        others = per_image[per_image.image != "img001"]
        assert others["test-flathate"].notna().all() and (others["error"] == "").all(), bs
        assert per_image["test-mae"].notna().all()  # the other metric keeps every image
    pd.testing.assert_frame_equal(runs[1][0], runs[4][0])
    assert runs[1][1]["test-flathate"].equals(runs[4][1]["test-flathate"])


def test_niqe_of_a_batch_with_a_flat_image_equals_image_by_image():
    import bench

    niqe = bench.create_metric("niqe")
    g = torch.Generator().manual_seed(0)
    textured = torch.nn.functional.avg_pool2d(torch.rand(3, 3, 192, 192, generator=g), 5, 1, 2)
    batch = torch.cat([textured, torch.full((1, 3, 192, 192), 0.5)])
    batch = (batch * 255).round() / 255
    together = niqe.update(batch)  # raised LinAlgError for the whole batch before
    alone = torch.cat([niqe.update(batch[i : i + 1]) for i in range(4)])
    assert torch.isfinite(together[:3]).all() and torch.isnan(together[3])
    assert torch.equal(together[:3], alone[:3]) and torch.isnan(alone[3])
    values, errors = niqe.update_isolated(batch)
    assert list(errors) == [3] and "NaN" in errors[3]
    assert torch.equal(values[:3], together[:3])


def test_update_isolated_rolls_back_the_state_of_a_failed_batch():
    _register_flathate()
    m = FlatHating()
    good = torch.rand(2, 3, 8, 8)
    m.update(good)
    batch = torch.cat([torch.rand(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5), torch.rand(1, 3, 8, 8)])
    values, errors = m.update_isolated(batch)
    assert list(errors) == [1] and torch.isnan(values[1]) and torch.isfinite(values[[0, 2]]).all()
    expect = (torch.cat([good, batch[[0, 2]]]).flatten(1).mean(1) * 255).double()
    assert int(m.count) == 4 and float(m.total) == pytest.approx(float(expect.sum()), rel=1e-12)


# -- item 2: one run folder, one writer; shards of another geometry are never merged ---------

HOLD = """
import sys, time
sys.path.insert(0, {repo!r})
from bench.core.locks import file_lock
with file_lock({lock!r}):
    print("held", flush=True)
    time.sleep({hold})
"""


def test_a_second_run_on_the_same_folder_waits_for_the_first(tmp_path, capfd):
    root = make_folder(tmp_path / "setL", 2)
    ds = register(root, "relL")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(repo=str(REPO), lock=str(run_dir / LOCK_NAME), hold=3)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        Runner(_cfg(ds, run_dir)).run()
        waited = time.monotonic() - t0
    finally:
        holder.wait(timeout=30)
    err = capfd.readouterr().err
    assert f"in use by another bfrbench run (pid {holder.pid})" in err and "waiting" in err
    assert waited > 1.0  # it did not start before the holder let go (a bound, not a speed target)
    assert (run_dir / "summary.csv").is_file()


def _per_image(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "per_image.parquet").drop(columns=["config_hash"])


def test_resume_with_another_batch_size_never_merges_old_shards(tmp_path):
    root = make_folder(tmp_path / "setG", 5)
    ds = register(root, "relG")
    clean = Runner(_cfg(ds, tmp_path / "clean", batch_size=3)).run()
    run_dir = tmp_path / "run"
    Runner(_cfg(ds, run_dir, batch_size=2)).run()
    for unit in (run_dir / "units").iterdir():  # as if killed after the first batch
        (unit / "done.json").unlink()
        for shard in sorted(unit.glob("shard_*.pt"))[1:]:
            shard.unlink()
    resumed = Runner(_cfg(ds, run_dir, batch_size=3)).run()
    assert [u.status for u in resumed.units] == ["computed", "computed"]  # the batch-2 shard was not used
    per_image = _per_image(run_dir)
    assert len(per_image) == 10 and not per_image.duplicated(["method", "image"]).any()
    pd.testing.assert_frame_equal(per_image, _per_image(clean.run_dir))
    pd.testing.assert_frame_equal(resumed.summary.drop(columns="config_hash"),
                                  clean.summary.drop(columns="config_hash"))


def test_a_unit_corrupted_by_two_writers_is_computed_again(tmp_path):
    """A folder written before the lock existed: two writers left the same images in two shards."""
    root = make_folder(tmp_path / "setD", 4)
    ds = register(root, "relD")
    run_dir = tmp_path / "run"
    first = Runner(_cfg(ds, run_dir)).run()
    for unit in (run_dir / "units").iterdir():
        shards = sorted(unit.glob("shard_*.pt"))
        (unit / "shard_000099.pt").write_bytes(shards[0].read_bytes())
    again = Runner(_cfg(ds, run_dir)).run()
    assert [u.status for u in again.units] == ["computed", "computed"]
    per_image = _per_image(run_dir)
    assert len(per_image) == 8 and not per_image.duplicated(["method", "image"]).any()
    pd.testing.assert_frame_equal(again.summary, first.summary)


# -- items 5, 6, 11: exit status, bad-file summary, --quiet -------------------------------


def _register_test_methods() -> None:
    from bench.core.registry import METHODS
    from bench.weights import MissingWeightsError
    from methods.base import RestorationMethod, WeightsInfo

    class Crash(RestorationMethod):
        name = "test-crash"

        def __init__(self, weights=None):
            super().__init__()
            self.weights_info = [WeightsInfo(name="none")]

        def restore(self, lq):
            raise RuntimeError("simulated crash")

    def no_weights(weights=None):
        raise MissingWeightsError("test-absent", Path("/nonexistent/test-absent.pth"))

    if "test-crash" not in METHODS:
        METHODS.add("test-crash", Crash)
    if "test-absent" not in METHODS:
        METHODS.add("test-absent", no_weights)


def _cli(ds: str, out: Path, *extra: str) -> list[str]:
    return ["run", "--datasets", ds, "--out", str(out), "--device", "cpu", "--workers", "0", "--no-report",
            "--batch-size", "2", *extra]


def test_exit_status_is_nonzero_when_a_method_failed_after_the_rest_finished(tmp_path, capfd):
    from bench.cli import main

    _register_test_methods()
    ds = register(make_folder(tmp_path / "setX", 3), "relX")
    rc = main(_cli(ds, tmp_path / "run", "--methods", "lq", "test-crash", "--metrics", "test-mae", "--quiet"))
    err = capfd.readouterr().err
    assert rc == 1, err
    assert "method test-crash failed on 3 image(s)" in err
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    ok = summary[(summary.method == "lq") & (summary.metric == "test-mae")].iloc[0]
    assert ok.status == "ok" and ok.n == 3  # the other method finished


def test_exit_status_when_nothing_was_computed_and_with_strict(tmp_path, capfd):
    from bench.cli import main

    _register_test_methods()
    ds = register(make_folder(tmp_path / "setN", 2), "relN")
    rc = main(_cli(ds, tmp_path / "none", "--methods", "test-absent", "--metrics", "test-mae", "--quiet"))
    assert rc == 3 and "nothing was computed" in capfd.readouterr().err
    # a skipped method beside a good one: fine by default, fatal with --strict
    args = ("--methods", "lq", "test-absent", "--metrics", "test-mae", "--quiet")
    assert main(_cli(ds, tmp_path / "some", *args)) == 0
    assert main(_cli(ds, tmp_path / "some", *args, "--strict")) == 4
    assert "test-absent skipped" in capfd.readouterr().err


def test_bad_files_reach_the_console_even_with_quiet(tmp_path, capfd):
    from bench.cli import main

    root = make_folder(tmp_path / "setB", 5)
    (root / "lq" / "img001.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")  # truncated
    (root / "lq" / "img003.png").write_bytes(b"")  # empty
    ds = register(root, "relB")
    rc = main(_cli(ds, tmp_path / "run", "--methods", "lq", "--metrics", "test-mae", "--quiet"))
    out, err = capfd.readouterr()
    assert rc == 0
    assert f"bad input files: 2 of 5 in {ds} could not be used" in err
    assert "img001: " in err and "truncated PNG" in err and "img003: " in err and "empty file" in err
    assert f"full list: {tmp_path / 'run' / 'manifest.json'}" in err
    assert f"run folder: {tmp_path / 'run'}" in out  # --quiet keeps the result's location
    assert "== " not in out  # ... and drops the tables


def test_progress_bars_do_not_fill_a_non_terminal_log(tmp_path, capfd):
    ds = register(make_folder(tmp_path / "setP", 4), "relP")
    Runner(_cfg(ds, tmp_path / "run", quiet=False, batch_size=1)).run()
    out, err = capfd.readouterr()
    assert "\r" not in err and "img/s" not in err and "it/s" not in err
    assert "lq: computed" in out  # one line per finished unit instead


# -- item 7: infinite values counted apart; unequal n flagged; incomplete methods not ranked --


def test_infinite_psnr_is_counted_apart_and_flagged(tmp_path, capfd):
    from bench.engine.results import format_ranked_tables

    root = make_folder(tmp_path / "setI", 4, size=512)
    for name in ("img000", "img002"):  # the LQ is its GT: the lq method restores it exactly
        (root / "lq" / f"{name}.png").write_bytes((root / "gt" / f"{name}.png").read_bytes())
    ds = register(root, "relI")
    outcome = Runner(_cfg(ds, tmp_path / "run", metrics=["psnr"])).run()
    s = pd.read_csv(outcome.run_dir / "summary.csv")
    lq = s[(s.method == "lq") & (s.metric == "psnr")].iloc[0]
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    finite = per_image[(per_image.method == "lq") & np.isfinite(per_image.psnr)].psnr
    assert lq.n == 2 and lq.n_inf == 2 and lq.value == pytest.approx(finite.mean(), rel=1e-9)
    assert "counted apart" in lq.reason
    table = format_ranked_tables(outcome.summary)
    assert "[+2 inf] (n=2)" in table and "counted in n_inf" in table


def test_cli_leaderboard_does_not_rank_a_method_missing_metrics():
    from bench.engine.results import format_ranked_tables

    rows = []
    for method, psnr, ssim in (("good", 20.0, 0.5), ("partial", 30.0, float("nan")), ("other", 25.0, 0.6)):
        for metric, v in (("psnr", psnr), ("ssim", ssim)):
            rows.append(dict(dataset="d", method=method, method_name=method, config_hash="", metric=metric,
                             protocol="", value=v, n=4, higher_better=True, standard=True, standin=False,
                             status="ok" if v == v else "failed", reason="", n_inf=0))
    table = format_ranked_tables(pd.DataFrame(rows)).splitlines()
    body = [line for line in table if line.split()[:1] and line.split()[0] in ("1", "2", "3", "-")]
    assert body[0].startswith("1 (1.00)") and "other" in body[0]
    assert body[1].startswith("2 (2.00)") and "good" in body[1]
    assert body[2].startswith("- (1/2 metrics)") and "partial" in body[2]


# -- item 8: output files honour the umask ----------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_run_folder_files_honour_the_umask(tmp_path, umask):
    import os

    from bench.core.atomic import atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.html", "x")
        ds = register(make_folder(tmp_path / "setU", 2), "relU")
        out = Runner(_cfg(ds, tmp_path / "run", methods=["lq"], metrics=["test-mae"])).run()
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == want
    for name in ("summary.csv", "per_image.parquet", "manifest.json"):
        assert (out.run_dir / name).stat().st_mode & 0o777 == want, name


# -- item 4: an unusable --weights file: one line naming the file and the fix ------------------


def _bad_weights(tmp_path: Path) -> dict[str, Path]:
    good = torch.nn.Linear(2, 2).state_dict()
    torch.save(good, tmp_path / "other_net.pth")  # a real checkpoint of another network
    blob = (tmp_path / "other_net.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "garbage.pth").write_bytes(b"this is not a checkpoint at all\n" * 10)
    # a pickled Python object beside the tensors: refused by weights_only=True
    torch.save({"args": argparse.Namespace(lr=1e-3), "params_ema": good}, tmp_path / "pickled.pth")
    return {k: tmp_path / f"{k}.pth" for k in ("other_net", "truncated", "garbage", "pickled")}


@pytest.mark.parametrize("kind,reason,fix", [
    ("garbage", "not a PyTorch checkpoint", "saved with torch.save"),
    ("truncated", "truncated or damaged", "copy or download it again"),
    ("other_net", "not a GFPGAN checkpoint", "pass a GFPGANv1.3/v1.4 .pth file"),
    ("pickled", "Python objects besides tensors", "torch.save(model.state_dict()"),
])
def test_restore_with_an_unusable_weights_file_is_one_line(tmp_path, capfd, kind, reason, fix):
    from bench.cli import main

    path = _bad_weights(tmp_path)[kind]
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((512, 512, 3), np.uint8))
    rc = main(["restore", "--method", "gfpgan", "--weights", str(path), "--input", str(src),
               "--output", str(tmp_path / "out"), "--aligned", "--device", "cpu"])
    err = capfd.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith(f"bfrbench: error: {path}: ") and reason in err and fix in err, err
    assert "weights_only=False" not in err and "delete it" not in err


def test_run_with_an_unusable_weights_file_fails_that_method_and_finishes_the_rest(tmp_path, capfd):
    from bench.cli import main

    path = _bad_weights(tmp_path)["truncated"]
    ds = register(make_folder(tmp_path / "setW", 2), "relW")
    rc = main(_cli(ds, tmp_path / "run", "--methods", "lq", "gfpgan", "--metrics", "test-mae",
                   "--weights", f"gfpgan={path}", "--quiet"))
    err = capfd.readouterr().err
    assert rc == 1 and f"method gfpgan failed: {path}: the file is truncated or damaged" in err
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    assert summary[(summary.method == "lq") & (summary.metric == "test-mae")].iloc[0].status == "ok"
    assert summary[summary.method == "gfpgan"].iloc[0].status == "failed"


# -- items 9 and 12: dangling symlinks and duplicate stems are bad files; CMYK is recorded -------


def _cmyk_jpeg(path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), mode="CMYK").save(path, quality=95)


def test_cmyk_jpeg_conversion_is_recorded(tmp_path):
    from bench.core.imageio import read_image

    _cmyk_jpeg(tmp_path / "c.jpg")
    img = read_image(tmp_path / "c.jpg")
    assert img.conversions == ["cmyk->rgb"]
    # the pixels are what the official scripts' cv2.imread gives
    assert np.array_equal(img.rgb, cv2.imread(str(tmp_path / "c.jpg"), cv2.IMREAD_COLOR)[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "rgb.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert read_image(tmp_path / "rgb.jpg").conversions == []


def test_dangling_symlinks_and_duplicate_stems_are_listed_as_bad_files(tmp_path, capfd):
    import json

    lq = tmp_path / "faces"
    lq.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "a.png", "b.png"):
        cv2.imwrite(str(lq / name), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    _cmyk_jpeg(lq / "c.jpg")
    (lq / "gone.png").symlink_to(tmp_path / "deleted.png")
    register(tmp_path, "relS")  # the test metrics
    outcome = Runner(_cfg(f"folder:{lq}", tmp_path / "run", methods=["lq"], metrics=["test-setmean"])).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    info = next(iter(manifest["datasets"].values()))
    bad = {b["file"]: b["reason"] for b in info["bad_files"]}
    assert set(bad) == {"a.png", "gone"}, bad
    assert "duplicate name: a.jpg has the same stem" in bad["a.png"]
    assert "dangling symlink" in bad["gone"] and "deleted.png" in bad["gone"]
    assert info["conversions"]["c"][0] == "lq: cmyk->rgb"
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    assert sorted(per_image[per_image.status == "ok"].image) == ["a", "b", "c"]


# -- item 3: restore never overwrites one result with another ---------------------------------


def test_restore_keeps_both_results_of_inputs_sharing_a_stem(tmp_path, capsys):
    from bench.cli import main

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    imgs = {name: rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for name in ("face.jpg", "face.png", "other.png")}
    for name, img in imgs.items():
        cv2.imwrite(str(src / name), img)
    out = tmp_path / "out"
    rc = main(["restore", "--method", "lq", "--input", str(src), "--output", str(out), "--aligned", "--device", "cpu"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["face_jpg.png", "face_png.png", "other.png"]
    # lq on a 512 input is the identity: each result is its own input
    assert np.array_equal(cv2.imread(str(out / "face_png.png")), imgs["face.png"])
    assert np.array_equal(cv2.imread(str(out / "face_jpg.png")), cv2.imread(str(src / "face.jpg")))
    text = capsys.readouterr().out
    assert "face.jpg shares its name with another input; its result is face_jpg.png" in text
    assert "wrote 3 image(s)" in text


# -- item 10: the Python API rejects uint8 and 0-255 tensors ------------------------------------


def test_python_api_rejects_uint8_and_0_255_tensors():
    import bench
    from bench.core.inputs import ImageTensorError

    method, psnr = bench.create_method("classical"), bench.create_metric("psnr")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    u8 = (x * 255).round().to(torch.uint8)
    with pytest.raises(ImageTensorError, match=r"classical\.restore input: got a torch\.uint8 tensor.*x\.float\(\) / 255"):
        method.restore(u8)
    with pytest.raises(ImageTensorError, match=r"values lie in \[0, 255\].*looks like 0-255 values: divide by 255"):
        method(u8.float())
    with pytest.raises(ImageTensorError, match=r"psnr\.update reference: .*divide by 255"):
        psnr.update(x, u8.float())
    with pytest.raises(ImageTensorError, match=r"\(B, 3, H, W\), got shape \(64, 64\)"):
        psnr.update(x[0, 0], x[0, 0])
    assert torch.equal(psnr.update(x[0], x[0].clamp(0, 0.5)), psnr.update(x[:1], x[:1].clamp(0, 0.5)))  # CHW, as pyiqa
    out = method.restore(u8.float() / 255)  # the contract: float in [0, 1]
    assert out.shape == (2, 3, 512, 512) and float(out.max()) <= 1.0
    assert torch.isfinite(psnr.update(x, x.clamp(0, 0.5))).all()
