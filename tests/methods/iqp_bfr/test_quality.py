"""The IQP quality prior: NR-IQA metrics -> [0, 1] scores, statistics files, ``bfrbench score-dataset``."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch

from bench.core.inputs import uint8_to_tensor
from bench.metrics.base import MeanOfImages
from methods.iqp_bfr.quality import QualityScorer, score_bin


class Brightness(MeanOfImages):
    """Mean intensity: a stand-in NR-IQA metric with a known value per image."""

    name = "test-brightness"
    higher_better = True
    needs_gt = False

    def score(self, pred, gt=None):
        return pred.mean(dim=(1, 2, 3))


class Darkness(Brightness):
    """The same values, declared lower-is-better (as NIQE / BRISQUE)."""

    name = "test-darkness"
    higher_better = False


def grey(level: int, n: int = 1) -> torch.Tensor:
    """A flat image at uint8 level ``level`` (exact: the scorer quantises to uint8 levels)."""
    return torch.full((n, 3, 8, 8), level / 255.0)


REFERENCE = [grey(v) for v in (51, 102, 153, 204)]


def test_higher_and_lower_better_metrics_normalise_in_opposite_directions():
    up = QualityScorer([Brightness()]).fit(REFERENCE)
    down = QualityScorer([Darkness()]).fit(REFERENCE)
    batch = torch.cat([grey(51), grey(127), grey(204), grey(240), grey(10)])
    expected_up = torch.tensor([0.0, 76 / 153, 1.0, 1.0, 0.0])  # min-max over [51, 204], clipped outside
    assert torch.allclose(up.score(batch), expected_up, atol=1e-6)
    assert torch.allclose(down.score(batch), 1 - expected_up, atol=1e-6)
    both = QualityScorer([Brightness(), Darkness()]).fit(REFERENCE)
    assert torch.allclose(both.score(batch), torch.full((5,), 0.5), atol=1e-6)  # the two cancel exactly


def test_statistics_round_trip_and_mismatch_errors(tmp_path):
    scorer = QualityScorer([Brightness(), Darkness()]).fit(REFERENCE)
    path = tmp_path / "stats.json"
    scorer.save_stats(path)
    saved = json.loads(path.read_text())
    assert [m["name"] for m in saved["metrics"]] == ["test-brightness", "test-darkness"]
    assert saved["metrics"][1]["higher_better"] is False
    assert saved["metrics"][0]["min"] == pytest.approx(51 / 255) and saved["metrics"][0]["max"] == pytest.approx(204 / 255)
    assert saved["metrics"][0]["n"] == 4
    batch = torch.rand(6, 3, 8, 8)
    again = QualityScorer([Brightness(), Darkness()], reference_stats=path)
    assert torch.equal(again.score(batch), scorer.score(batch))
    with pytest.raises(ValueError, match="no statistics for metric 'other'"):
        other = Brightness()
        other.name = "other"
        QualityScorer([other], reference_stats=path)
    flipped = json.loads(path.read_text())
    flipped["metrics"][0]["higher_better"] = False
    with pytest.raises(ValueError, match="direction"):
        QualityScorer([Brightness()], reference_stats=flipped)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json.*score-dataset"):
        QualityScorer([Brightness()], reference_stats=bad)
    with pytest.raises(RuntimeError, match="fit"):
        QualityScorer([Brightness()]).score(batch)


def test_score_bins_follow_iqp_floor_rule():
    s = torch.tensor([0.0, 0.0999, 0.1, 0.55, 0.9, 0.999, 1.0, 1.2, -0.1])
    assert score_bin(s).tolist() == [0, 0, 1, 5, 9, 9, 9, 9, 0]


@pytest.fixture
def registered_brightness(registries):
    from bench.core.registry import METRICS

    METRICS.add("test-brightness", lambda **kw: Brightness(), higher_better=True, needs_gt=False)
    return "test-brightness"


def test_score_dataset_writes_csv_and_stats(tmp_path, registered_brightness):
    from bench.cli import main

    folder = tmp_path / "faces"
    folder.mkdir()
    levels = {"a.png": 40, "b.png": 200, "c.png": 120}
    for name, v in levels.items():
        cv2.imwrite(str(folder / name), np.full((16, 16, 3), v, np.uint8))
    out = tmp_path / "out" / "scores.csv"
    assert main(["score-dataset", str(folder), "--iqa", registered_brightness, "--out", str(out), "--device", "cpu"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["image", "score", "test-brightness"]
    by_name = {r["image"]: r for r in rows}
    assert float(by_name["a.png"]["score"]) == 0.0 and float(by_name["b.png"]["score"]) == 1.0
    assert float(by_name["c.png"]["score"]) == pytest.approx(0.5, abs=1e-6)
    assert float(by_name["b.png"]["test-brightness"]) == pytest.approx(200 / 255, abs=1e-6)
    stats = json.loads((tmp_path / "out" / "scores.stats.json").read_text())
    assert stats["metrics"][0]["max"] == pytest.approx(200 / 255)
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.csv", "scores.stats.json"]  # no temp files
    # scoring another folder against the saved statistics keeps the scale
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "d.png"), np.full((16, 16, 3), 160, np.uint8))
    out2 = tmp_path / "other.csv"
    args = ["score-dataset", str(other), "--iqa", registered_brightness, "--stats", str(tmp_path / "out" / "scores.stats.json")]
    assert main([*args, "--out", str(out2), "--device", "cpu"]) == 0
    (row,) = list(csv.DictReader(out2.open()))
    assert float(row["score"]) == pytest.approx(0.75, abs=1e-6)


def test_score_dataset_errors_name_the_problem(tmp_path, capsys, registered_brightness):
    from bench.cli import main

    assert main(["score-dataset", str(tmp_path / "missing"), "--iqa", "niqe", "--out", str(tmp_path / "s.csv")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["score-dataset", str(tmp_path / "empty"), "--iqa", registered_brightness, "--out", str(tmp_path / "s.csv")]) == 2
    assert "no images" in capsys.readouterr().err


def _offline_metric() -> str | None:
    """An offline NR-IQA metric of the registry that can run here (no download)."""
    from bench.core import plugins
    from bench.core.registry import METRICS

    plugins.load_all()
    for name in ("piqe", "brisque", "niqe"):
        if name in METRICS:
            ok, _ = METRICS.entry(name).meta.get("available", lambda: (True, ""))()
            if ok:
                return name
    return None


def test_degraded_face_scores_below_its_clean_source():
    """With a real offline NR-IQA metric, a CelebA-Test-style degradation lowers the quality score."""
    from skimage import data

    from bench.data.degrade import degrade, rng_for

    name = _offline_metric()
    if name is None:
        pytest.skip("no offline NR-IQA metric available here (piqe / brisque / niqe with its parameters)")
    face = cv2.resize(data.astronaut()[0:256, 128:384], (256, 256), interpolation=cv2.INTER_AREA)
    degraded = [degrade(face, "celeba-test", rng_for(3, f"face{i}")) for i in range(3)]
    reference = [face, *degraded, cv2.GaussianBlur(face, (0, 0), 3)]
    scorer = QualityScorer([name]).fit(reference)
    clean = scorer.score(uint8_to_tensor(face))
    worse = scorer.score(torch.cat([uint8_to_tensor(d) for d in degraded]))
    assert (worse < clean).all(), (name, float(clean), worse.tolist())


def test_score_dataset_batches_images_of_one_size_and_values_do_not_depend_on_it(tmp_path, registered_brightness,
                                                                                   monkeypatch, capfd):
    """Consecutive same-size images go through one update; the CSV is the same at every --batch-size; no bar in a log."""
    from bench.cli import main

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i, size in enumerate([16, 16, 16, 24, 24, 16]):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    seen: list[int] = []
    real = Brightness.update

    def counting(self, pred, gt=None):
        seen.append(pred.shape[0])
        return real(self, pred, gt)

    monkeypatch.setattr(Brightness, "update", counting)
    outs = {}
    for bs in ("1", "2", "8"):
        seen.clear()
        out = tmp_path / f"s{bs}.csv"
        assert main(["score-dataset", str(folder), "--iqa", registered_brightness, "--out", str(out),
                     "--device", "cpu", "--batch-size", bs]) == 0
        outs[bs] = (out.read_text(), list(seen))
    assert outs["1"][1] == [1] * 6 and outs["2"][1] == [2, 1, 2, 1] and outs["8"][1] == [3, 2, 1]
    assert outs["1"][0] == outs["2"][0] == outs["8"][0]
    assert "score-dataset |" not in capfd.readouterr().err  # stderr is no terminal here: no progress bar
