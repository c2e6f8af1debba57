"""The ``codeformer`` and ``iqp-bfr`` methods: registry, weights handling, batching, resizing, parameters."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import bench
from bench import weights as W
from bench.core.device import to_uint8_levels
from bench.core.registry import METHODS
from methods.codeformer_arch import build_network, get_config
from methods.codeformer_family import resize_like_cv2, standin_state_dict


def _faces(b: int = 3, size: int = 64, seed: int = 0) -> torch.Tensor:
    """uint8-level RGB batch in [0, 1], as the runner passes it."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (b, 3, size, size)).astype(np.float32) / 255.0)


def test_registered_with_official_defaults():
    bench.list_methods()
    cf, iqp = METHODS.entry("codeformer").meta, METHODS.entry("iqp-bfr").meta
    assert cf["defaults"]["fidelity"] == 0.5 and cf["defaults"]["adain"] is True and not cf["takes_quality"]
    assert iqp["takes_quality"] and iqp["defaults"]["quality"] == 0.9
    assert iqp["defaults"]["fidelity"] == 0.0 and iqp["defaults"]["fusion"] == 0.5 and iqp["defaults"]["adain"] is True
    assert cf["weights"] == ["codeformer"] and iqp["weights"] == ["iqpir"]


@pytest.mark.parametrize("name", ["codeformer", "iqp-bfr"])
def test_missing_managed_weights_say_how_to_fetch(name):
    with pytest.raises(W.MissingWeightsError, match=r"bfrbench fetch (codeformer|iqpir)"):
        bench.create_method(name)


def test_random_weights_are_labelled_standin_and_deterministic():
    a = bench.create_method("iqp-bfr", weights="random", config="tiny", seed=4)
    b = bench.create_method("iqp-bfr", weights="random", config="tiny", seed=4)
    c = bench.create_method("iqp-bfr", weights="random", config="tiny", seed=5)
    assert a.info().standin and a.weights_info[0].name == "iqpir" and a.params["seed"] == 4
    x = _faces(1)
    assert torch.equal(a.restore(x), b.restore(x))
    assert not torch.equal(a.restore(x), c.restore(x))


def test_restore_is_batched_in_range_and_batch_independent():
    m = bench.create_method("codeformer", weights="random", config="tiny_codeformer")
    x = _faces(3)
    out = m.restore(x)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.01
    one = torch.cat([m.restore(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(out, one, atol=1e-5)


def test_method_equals_official_pipeline_on_the_network():
    m = bench.create_method("iqp-bfr", weights="random", config="tiny", quality=0.35, fidelity=0.6, fusion=0.7)
    x = _faces(2)
    net = m.net
    assert net.config.aesthetic_weight == 0.7
    with torch.no_grad():
        want = (net(x * 2 - 1, w=0.6, score=0.35, adain=True)[0].clamp(-1, 1) + 1) / 2
    assert torch.equal(m.restore(x), want)


@pytest.mark.parametrize("param,values", [("quality", (0.1, 0.9)), ("fidelity", (0.0, 0.8)), ("fusion", (0.0, 1.0))])
def test_parameters_reach_the_network(param, values):
    x = _faces(1)
    outs = [bench.create_method("iqp-bfr", weights="random", config="tiny", **{param: v}).restore(x) for v in values]
    assert (outs[0] - outs[1]).abs().max() > 1e-3


def test_off_size_input_is_resized_like_cv2():
    m = bench.create_method("codeformer", weights="random", config="tiny_codeformer")
    x = _faces(2, size=80)
    u8 = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    resized = np.stack([cv2.resize(im, (64, 64), interpolation=cv2.INTER_LINEAR) for im in u8])
    xr = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(resize_like_cv2(x, 64), xr)
    assert torch.equal(m.restore(x), m.restore(xr))
    assert resize_like_cv2(xr, 64) is xr  # no-op (and no rounding) at the network size


def test_trainer_export_loads_with_its_config(tmp_path):
    cfg = get_config("tiny", aesthetic_weight=0.5)
    torch.manual_seed(0)
    net = build_network(cfg)
    path = tmp_path / "net_g_latest.pth"
    import dataclasses

    torch.save({"params": net.state_dict(), "params_ema": net.state_dict(), "net_config": dataclasses.asdict(cfg)}, path)
    m = bench.create_method("iqp-bfr", weights=str(path))
    assert m.net.config.img_size == 64 and not m.info().standin
    assert m.weights_info[0].path == str(path) and len(m.weights_info[0].sha256) == 64
    x = _faces(1)
    with torch.no_grad():
        want = (net.eval()(x * 2 - 1, w=0.0, score=0.9, adain=True)[0].clamp(-1, 1) + 1) / 2
    assert torch.equal(m.restore(x), want)


def test_wrong_checkpoint_names_file_and_fix(tmp_path):
    shapes = {k: tuple(v.shape) for k, v in build_network("tiny_codeformer").state_dict().items()}
    sd = standin_state_dict(shapes, 0)
    sd.pop("feat_emb.bias")
    path = tmp_path / "broken.pth"
    torch.save({"params_ema": sd}, path)
    with pytest.raises(ValueError, match=r"broken\.pth.*(bfrbench fetch codeformer)"):
        bench.create_method("codeformer", weights=str(path), config="tiny_codeformer")
    torch.save({"something": 1}, path)
    with pytest.raises(ValueError, match=r"broken\.pth: not a CodeFormer-family checkpoint"):
        bench.create_method("codeformer", weights=str(path), config="tiny_codeformer")


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="quality must be in"):
        bench.create_method("iqp-bfr", weights="random", config="tiny", quality=1.5)
    with pytest.raises(ValueError, match="fidelity"):
        bench.create_method("codeformer", weights="random", config="tiny_codeformer", fidelity=-0.1)
    with pytest.raises(TypeError):  # precision is the engine's --dtype, not a method parameter
        METHODS.create("codeformer", weights="random", config="tiny_codeformer", dtype="bf16")
    with pytest.raises(ValueError, match="no quality conditioning"):
        METHODS.create("codeformer", weights="random", config="tiny_codeformer", quality=0.5)
    with pytest.raises(TypeError):
        METHODS.create("codeformer", weights="random", config="tiny_codeformer", fidelty=0.5)
    m = bench.create_method("codeformer", weights="random", config="tiny_codeformer")
    # a CHW tensor is one image (pyiqa's idiom, bench.core.inputs.as_batch); what is not an RGB image is refused
    for bad in (torch.zeros(64, 64), torch.zeros(1, 64, 64), torch.zeros(1, 1, 64, 64), torch.zeros(2, 4, 64, 64)):
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
            m.restore(bad)
    x = _faces(1)
    assert torch.equal(m.restore(x[0]), m.restore(x))


def test_bf16_autocast_runs_on_cpu_and_stays_close():
    x = _faces(1)
    ref = bench.create_method("codeformer", weights="random", config="tiny_codeformer").restore(x)
    m = bench.create_method("codeformer", weights="random", config="tiny_codeformer")
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the engine's precision, not the method's
        out = m.restore(x)
    assert out.dtype == torch.float32 and m._exact_now is False  # fused kernels under autocast
    m.restore(x)
    assert m._exact_now is True  # the reference's exact ops again in fp32
    # mean |bf16 - fp32| on random weights: 0.0556 (14 levels) measured with the locked torch 2.14.1 at 2
    # threads, ~7 levels at 1 thread; unrelated images differ by ~80 levels (0.31): 0.1 separates the two
    assert (to_uint8_levels(out) - to_uint8_levels(ref)).abs().mean() < 0.1


def test_unconditioned_export_runs_under_iqp_without_quality(tmp_path):
    import dataclasses

    cfg = get_config("tiny_codeformer")
    torch.manual_seed(1)
    net = build_network(cfg)
    path = tmp_path / "plain.pth"
    torch.save({"params_ema": net.state_dict(), "net_config": dataclasses.asdict(cfg)}, path)
    m = bench.create_method("iqp-bfr", weights=str(path))
    assert "quality" not in m.params and "fusion" not in m.params
    assert m.restore(_faces(1)).shape == (1, 3, 64, 64)
