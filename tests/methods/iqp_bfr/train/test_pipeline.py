"""The three IQP training stages on CPU with the tiny config (64x64 faces, 8x8 latent, 64-code codebooks).

Training faces: crops of skimage's astronaut (a public-domain photo), each twice: as is (high
quality) and blurred + low-contrast (a low-quality ground truth, the uneven-GT situation IQP is
about). Quality scores come from PIQE (an offline NR-IQA metric of the registry) through the
QualityScorer, exactly as ``bfrbench score-dataset`` computes them.
"""
from __future__ import annotations

import copy
import csv

import cv2
import numpy as np
import pytest
import torch

from methods.iqp_bfr.train.config import resolve
from methods.iqp_bfr.train.trainer import Trainer, train

NET = {"config": "tiny", "overrides": {"aesthetic_weight": 0.8, "aesthetic_threshold": 0.5}}
#: codebook usage floor after stage 1: a quarter of the 64 codes of each codebook in the last window
USAGE_FLOOR = 0.25
#: stage-3 guard bound: at most this fraction of tokens may change code from the stage-2 model
DRIFT_BOUND = 0.2


def make_faces(folder, n: int, seed: int, pairs: bool = True) -> list[str]:
    """Astronaut face crops (128 px): each as is and, with ``pairs``, blurred + contrast-halved."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    img = data.astronaut()
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        s = int(rng.integers(200, 280))
        y, x = int(rng.integers(0, 60)), int(rng.integers(120, 512 - s - 40))
        crop = cv2.resize(img[y : y + s, x : x + s], (128, 128), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.clip(crop.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
        versions = [("s", crop)]
        if pairs:
            low = cv2.GaussianBlur(crop, (0, 0), 2.5).astype(np.float32)
            versions.append(("b", np.clip(low.mean() + 0.5 * (low - low.mean()), 0, 255).astype(np.uint8)))
        for tag, im in versions:
            name = f"f{i:02d}{tag}.png"
            cv2.imwrite(str(folder / name), cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2BGR))
            names.append(name)
    return names


@pytest.fixture(scope="module", autouse=True)
def _deterministic_training():
    """What training learns is asserted here: deterministic kernels (fixed threads and seeds: conftest.py)."""
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def piqe_available() -> bool:
    from bench.core import plugins
    from bench.core.registry import METRICS

    plugins.load_all()
    return "piqe" in METRICS


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Training faces + PIQE-based score CSV (via score-dataset), and held-out faces."""
    if not piqe_available():
        pytest.skip("the offline PIQE metric is not registered")
    from bench.cli import main

    root = tmp_path_factory.mktemp("iqp_toy")
    make_faces(root / "train", 12, seed=0)
    make_faces(root / "heldout", 8, seed=99, pairs=False)
    scores = root / "scores.csv"
    assert main(["score-dataset", str(root / "train"), "--iqa", "piqe", "--out", str(scores), "--device", "cpu"]) == 0
    return {"root": root, "train": str(root / "train"), "heldout": str(root / "heldout"), "scores": str(scores)}


def data_section(toy, **extra):
    return {"root": toy["train"], "scores": toy["scores"], "size": 64, "batch_size": 4, "degrade_size": 128, **extra}


def stage1_config(toy, iters: int, **train_extra) -> dict:
    return resolve({
        "stage": 1, "device": "cpu", "network": NET, "data": data_section(toy),
        "train": {"total_iter": iters, "lr_g": 2e-3, "lr_d": 2e-3, "ema_decay": 0.9, **train_extra},
        "perceptual": {"type": "laplacian"}, "gan": {"start_iter": iters - 20, "ndf": 16, "n_layers": 2},
        "checkpoint": {"every": iters}, "log": {"every": 20},
    })


@pytest.fixture(scope="module")
def stage1(toy):
    out = toy["root"] / "stage1"
    train(stage1_config(toy, 120), out)
    return out


def stage2_config(toy, stage1, iters: int) -> dict:
    return resolve({
        "stage": 2, "device": "cpu", "network": NET, "init": {"vqgan": str(stage1 / "net_g_latest.pth")},
        "data": data_section(toy, degradation="codeformer-small"),
        "train": {"total_iter": iters, "lr_g": 1e-3, "ema_decay": 0.9},
        "checkpoint": {"every": iters}, "log": {"every": 20},
        "eval": {"root": toy["train"], "every": iters, "max_images": 24, "scores": toy["scores"]},
    })


@pytest.fixture(scope="module")
def stage2(toy, stage1):
    out = toy["root"] / "stage2"
    train(stage2_config(toy, stage1, 120), out)
    return out


def stage3_config(toy, stage1, stage2, iters: int) -> dict:
    return resolve({
        "stage": 3, "device": "cpu", "network": NET,
        "init": {"vqgan": str(stage1 / "net_g_latest.pth"), "stage2": str(stage2 / "net_g_latest.pth")},
        "data": data_section(toy, degradation="codeformer-large", small_degradation="codeformer-small"),
        "train": {"total_iter": iters, "lr_g": 5e-4, "lr_d": 5e-4, "ema_decay": 0.0, "w_schedule": [[None, 1.0, 2]]},
        "perceptual": {"type": "laplacian"}, "gan": {"start_iter": 2, "ndf": 16, "n_layers": 2, "disc_weight": 0.1},
        "reward": {"type": "sharpness", "weight": 5.0, "condition": 0.9, "straight_through": "softmax"},
        "guard": {"kl_weight": 1.0, "target_drift": 0.1, "max_kl_weight": 10.0},
        "checkpoint": {"every": iters}, "log": {"every": 5},
        "eval": {"root": toy["heldout"], "every": iters, "max_images": 8, "score": 0.9},
    })


@pytest.fixture(scope="module")
def stage3(toy, stage1, stage2):
    out = toy["root"] / "stage3"
    train(stage3_config(toy, stage1, stage2, 30), out)
    return out



def read_csv(path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(open(path))]


# -- stage 1 ------------------------------------------------------------------------------------
def test_stage1_reconstruction_improves_and_codebooks_are_used(stage1):
    log = read_csv(stage1 / "log.csv")
    assert log[-1]["l_pix"] < 0.7 * log[0]["l_pix"], [r["l_pix"] for r in log]
    assert log[-1]["usage_common"] >= USAGE_FLOOR and log[-1]["usage_hq"] >= USAGE_FLOOR, log[-1]
    assert 0.2 < log[-1]["gate_frac"] < 0.8  # the PIQE scores put about half the faces above 0.5
    export = torch.load(stage1 / "net_g_latest.pth", weights_only=True)
    assert {"params", "params_ema", "net_config", "params_d"} <= set(export)


def test_hq_codebook_learns_only_from_high_score_samples(toy):
    from methods.iqp_bfr.train.data import DataConfig, FaceTrainSet
    from methods.iqp_bfr.train.stages import Precision, Stage1

    cfg = stage1_config(toy, 40, ema_decay=0.0)
    torch.manual_seed(0)
    stage = Stage1(cfg, torch.device("cpu"), Precision("fp32", torch.device("cpu")))
    batch = FaceTrainSet(DataConfig.from_dict({**cfg["data"], "degrade": False}), seed=0).batch(0)
    high, low = dict(batch, score=torch.full((4,), 0.9)), dict(batch, score=torch.full((4,), 0.1))
    hq, common = stage.hq_codebook, stage.net_g.quantize.embedding.weight

    recon, l_cb, _ = stage.net_g(low["gt"], score=low["score"])
    ((recon - low["gt"]).abs().mean() + l_cb).backward()
    assert hq.grad is not None and float(hq.grad.abs().sum()) == 0.0 and float(common.grad.abs().sum()) > 0
    stage.net_g.zero_grad(set_to_none=True)

    hq_init = hq.detach().clone()
    stage.step(1, high)  # the HQ codebook learns and gets Adam moments
    hq_after_high = hq.detach().clone()
    assert not torch.equal(hq_after_high, hq_init)
    moments = copy.deepcopy(stage.optimizers["g"].state[hq])
    common_before = common.detach().clone()
    stage.step(2, low)  # no sample passes the threshold: weights and moments stay exactly as they were
    assert torch.equal(hq.detach(), hq_after_high)
    assert all(torch.equal(moments[k], stage.optimizers["g"].state[hq][k]) for k in moments)
    assert not torch.equal(common.detach(), common_before)
    mixed = dict(batch, score=torch.tensor([0.1, 0.9, 0.1, 0.1]))
    stage.step(3, mixed)
    assert not torch.equal(hq.detach(), hq_after_high)


# -- stage 2 ------------------------------------------------------------------------------------
def test_stage2_code_accuracy_rises_far_above_chance(stage2):
    log = read_csv(stage2 / "log.csv")
    ev = read_csv(stage2 / "eval.csv")
    chance = 1 / 64
    assert ev[0]["step"] == 0 and ev[0]["acc_common"] < 0.1  # the untrained Transformer
    assert ev[-1]["acc_common"] > 10 * chance and ev[-1]["acc_hq"] > 10 * chance, ev
    assert log[-1]["acc_common"] > log[0]["acc_common"]


def _condition_effect(toy, export, niqe=None) -> dict[str, object]:
    """Outputs at quality 0.05 and 0.95 on LQ training faces: sharpness, PIQE (and NIQE), codes changed."""
    import bench
    from methods.iqp_bfr.train.data import DataConfig, FaceTrainSet
    from methods.iqp_bfr.train.evaluate import condition_sweep, load_lookup
    from methods.iqp_bfr.train.reward import SharpnessReward

    net = load_lookup(export)
    data = FaceTrainSet(DataConfig(root=toy["train"], default_score=0.5, size=64, degrade_size=128,
                                   degradation="codeformer-small", hflip=False), seed=7, need_scores=False)
    lq = data.fixed_batches(24)[0]["lq"]
    levels = lambda im: (im * 255).round() / 255  # noqa: E731 - what a saved PNG holds
    piqe = bench.create_metric("piqe")
    res = condition_sweep(net, lq, (0.05, 0.95), quality=SharpnessReward())
    out = {"sharpness": res["quality"], "changed": res["changed_vs_first"][1],
           "pixels": float((res["images"][0] - res["images"][1]).abs().mean()),
           "piqe": condition_sweep(net, lq, (0.05, 0.95), quality=lambda im: piqe.update(levels(im)))["quality"]}
    if niqe is not None:  # NIQE needs 96x96 blocks: the 64x64 outputs are upsampled 3x (bicubic) first
        up = lambda im: torch.nn.functional.interpolate(im, scale_factor=3, mode="bicubic").clamp(0, 1)  # noqa: E731
        out["niqe"] = condition_sweep(net, lq, (0.05, 0.95), quality=lambda im: niqe.update(levels(up(im))))["quality"]
    return out


#: own-score code accuracy must beat the opposite score's by this much (of 1). Measured (1 thread,
#: deterministic): 0.028 after the 120-iteration stage 2 and 0.275 after the slow test's 500 iterations;
#: -0.0003 and 0.002 for their untrained starts (accuracy ~ chance, 1/64)
CONDITION_GAIN = 0.01


def _accuracy_own_vs_opposite_score(net, stage1, toy) -> dict[str, float]:
    """Code accuracy (both codebooks, vs the stage-1 codes of the GT) on LQ training faces conditioned on
    their own score, and on the opposite quality (0.05 for the sharp faces, 0.95 for the blurred ones)."""
    from methods.iqp_bfr.train.data import DataConfig, FaceTrainSet
    from methods.iqp_bfr.train.losses import code_accuracy
    from methods.iqp_bfr.train.stages import build_teacher, code_targets

    teacher, _ = build_teacher(str(stage1 / "net_g_latest.pth"), None, torch.device("cpu"))
    data = FaceTrainSet(DataConfig(root=toy["train"], scores=toy["scores"], size=64, degrade_size=128,
                                   degradation="codeformer-small", hflip=False), seed=7, need_scores=True)
    batch = data.fixed_batches(24)[0]
    targets = code_targets(teacher.code_indices(batch["gt"]))
    own = batch["score"]
    opposite = torch.where(own > 0.5, torch.full_like(own, 0.05), torch.full_like(own, 0.95))
    out = {}
    with torch.no_grad():
        for name, score in (("own", own), ("opposite", opposite)):
            _, logits, _ = net(batch["lq"], w=0.0, score=score, return_logits=True)
            out[name] = float(np.mean(list(code_accuracy(logits, targets).values())))
    return out


def test_quality_condition_changes_predicted_codes(toy, stage1, stage2):
    """Stage 2 learns what the score means: the codes it predicts with a face's own score match the GT
    codes better than with the opposite score. The network it started from (stage-1 weights, untrained
    Transformer and N(0,1) score table) changes codes with the score too, but at random: no gain there."""
    from methods.iqp_bfr.train.evaluate import load_lookup
    from methods.iqp_bfr.train.stages import build_lookup_from_vqgan

    cfg = stage2_config(toy, stage1, 120)
    torch.manual_seed(int(cfg["seed"]))  # as the trainer does: the exact starting point of the stage-2 run
    untrained = build_lookup_from_vqgan(cfg, torch.device("cpu"))[0].eval()
    trained = load_lookup(stage2 / "net_g_latest.pth")
    before = _accuracy_own_vs_opposite_score(untrained, stage1, toy)
    after = _accuracy_own_vs_opposite_score(trained, stage1, toy)
    print("code accuracy (own, opposite score): untrained", before, "trained", after)
    assert after["own"] > after["opposite"] + CONDITION_GAIN, after
    assert before["own"] < before["opposite"] + CONDITION_GAIN, before  # the check tells trained from not
    effect = _condition_effect(toy, stage2 / "net_g_latest.pth")
    assert effect["changed"] > 0.05 and effect["pixels"] > 1e-3, effect


@pytest.mark.slow
@pytest.mark.network
def test_high_quality_condition_raises_nr_iqa_of_outputs(toy):
    """Longer tiny training (stage 1: 400, stage 2: 500, stage 3: 100 iterations), deterministic kernels and
    fixed threads: asking for quality 0.95 instead of 0.05 changes over a fifth of the codes after stage 2
    and after stage 3. Stage 2 predicts the codes of the quality asked for (own score beats the opposite
    one); stage 3 raises the no-reference sharpness of the outputs at the high condition, and its reward
    beats a reward-free control. NIQE, PIQE and stage 2's sharpness are reported only (see below)."""
    import bench
    from bench.weights import fetch, is_available
    from methods.iqp_bfr.train.evaluate import load_lookup

    if not is_available("niqe-pris-params"):
        fetch("niqe-pris-params")
    niqe = bench.create_metric("niqe")
    root = toy["root"] / "long"
    train(stage1_config(toy, 400), root / "stage1")
    cfg = resolve({
        "stage": 2, "device": "cpu", "network": NET, "init": {"vqgan": str(root / "stage1" / "net_g_latest.pth")},
        "data": data_section(toy, degradation="codeformer-small"),
        "train": {"total_iter": 500, "lr_g": 1e-3, "ema_decay": 0.9}, "checkpoint": {"every": 500}, "log": {"every": 50},
    })
    train(cfg, root / "stage2")
    train(stage3_config(toy, root / "stage1", root / "stage2", 100), root / "stage3")
    control = stage3_config(toy, root / "stage1", root / "stage2", 100)
    control["reward"]["weight"] = 0.0  # same CFT, CE and anchor: what stage 3 does without the reward
    train(control, root / "stage3_control")
    effects = {}
    for stage in ("stage2", "stage3"):
        effects[stage] = effect = _condition_effect(toy, root / stage / "net_g_latest.pth", niqe)
        print(stage, effect)
        assert effect["changed"] > 0.2, (stage, effect)
    # Stage 2 is trained to predict the GT codes of the quality it is given, not to sharpen: its own claim
    # is that the score steers the codes (as in test_quality_condition_changes_predicted_codes). Its
    # sharpness change is recorded only: on 64x64 tiny outputs it is about 1% either way and its sign
    # followed the thread count (issue 12: 0.49461 -> 0.49361 on a 2-core machine; 0.4887 -> 0.4941 with
    # 1 thread), and the untrained stage-2 start "rises" as well (0.182 -> 0.206, its random score table).
    # Stage 3 measured 0.4909 -> 0.5143 (1 thread).
    acc = _accuracy_own_vs_opposite_score(load_lookup(root / "stage2" / "net_g_latest.pth"), root / "stage1", toy)
    print("stage2 code accuracy (own, opposite score):", acc)
    assert acc["own"] > acc["opposite"] + CONDITION_GAIN, acc
    # Stage 3 optimises a no-reference sharpness reward at the high condition: the NR score rises there.
    assert effects["stage3"]["sharpness"][1] > effects["stage3"]["sharpness"][0], effects["stage3"]
    # NIQE and PIQE are recorded, not asserted: on 64x64 tiny-model outputs they move by under 1% in
    # either direction, and which way depends on the CPU thread count (measured: NIQE 13.16 -> 12.77
    # with 1 thread, 12.52 -> 12.54 with 2). The sharpness reward above is the robust signal here.
    print("niqe (low, high):", {k: v["niqe"] for k, v in effects.items()})
    ev = read_csv(root / "stage3" / "eval.csv")
    ctl = read_csv(root / "stage3_control" / "eval.csv")
    print("stage3", ev, "control", ctl)
    assert ev[-1]["reward"] > ev[0]["reward"] + 0.005 and ev[-1]["code_drift"] <= DRIFT_BOUND, ev
    assert ev[-1]["reward"] > ctl[-1]["reward"], (ev, ctl)


# -- stage 3 ------------------------------------------------------------------------------------
def test_stage3_reward_rises_on_held_out_faces_with_bounded_code_drift(stage3):
    ev = read_csv(stage3 / "eval.csv")
    log = read_csv(stage3 / "log.csv")
    assert ev[0]["step"] == 0 and ev[0]["code_drift"] == 0.0  # evaluated before any update: the stage-2 model
    assert ev[-1]["reward"] > ev[0]["reward"], ev
    assert ev[-1]["code_drift"] <= DRIFT_BOUND, ev
    assert max(r["code_drift"] for r in log) <= DRIFT_BOUND
    assert {"kl_anchor", "kl_weight", "l_reward", "l_g_gan"} <= set(log[-1])


# -- resume -------------------------------------------------------------------------------------
def _state(out, it):
    return torch.load(out / "checkpoints" / f"state_{it:08d}.pt", weights_only=True)


def _assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.parametrize("stage", ["1", "3"])
def test_resume_reproduces_uninterrupted_training(toy, stage1, stage2, tmp_path, stage):
    n = 8
    if stage == "1":
        cfg = stage1_config(toy, n)
        cfg["gan"]["start_iter"] = 2  # GAN, discriminator and EMA all active across the cut
    else:
        cfg = stage3_config(toy, stage1, stage2, n)
        cfg["eval"]["root"] = None
    cfg["checkpoint"]["every"] = n // 2
    cfg["log"]["every"] = 2
    train(cfg, tmp_path / "straight")
    Trainer(cfg, tmp_path / "cut").run(stop_at=n // 2)  # "killed" after the checkpoint at n/2
    with pytest.raises(Exception, match="--resume"):
        Trainer(cfg, tmp_path / "cut")
    Trainer(cfg, tmp_path / "cut", resume=True).run()
    _assert_same(_state(tmp_path / "straight", n), _state(tmp_path / "cut", n))
    straight, cut = read_csv(tmp_path / "straight" / "log.csv"), read_csv(tmp_path / "cut" / "log.csv")
    drop = {"sec_per_iter"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in straight] == [
        {k: v for k, v in r.items() if k not in drop} for r in cut
    ]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_of_every_stage(toy, stage1, stage2, tmp_path, precision):
    """Autocast (and the fp16 GradScaler) through stages 1-3: finite losses, weights move, scaler state saved."""
    import warnings

    cfgs = {"1": stage1_config(toy, 2), "3": stage3_config(toy, stage1, stage2, 2)}
    cfgs["1"]["gan"]["start_iter"] = 1
    cfgs["3"]["eval"]["root"] = None
    cfgs["2"] = resolve({
        "stage": 2, "device": "cpu", "network": NET, "init": {"vqgan": str(stage1 / "net_g_latest.pth")},
        "data": data_section(toy, degradation="codeformer-small"), "train": {"total_iter": 2}, "checkpoint": {"every": 2},
        "log": {"every": 1},
    })
    for name, cfg in cfgs.items():
        cfg["precision"] = precision
        cfg["train"]["fp16_init_scale"] = 256.0  # torch's 65536 overflows the first fp16 steps (they are skipped)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = Trainer(cfg, tmp_path / name)
        before = {k: v.clone() for k, v in trainer.stage.net_g.state_dict().items()}
        trainer.run()
        rows = read_csv(tmp_path / name / "log.csv")
        losses = [v for r in rows for k, v in r.items() if k.startswith(("l_", "ce_"))]
        assert losses and all(np.isfinite(losses)), (name, rows)
        after = trainer.stage.net_g.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), name
        scaler = _state(tmp_path / name, 2)["stage"]["scalers"]["g"]
        assert bool(scaler) == (precision == "fp16"), (name, scaler)  # a disabled scaler saves an empty state
