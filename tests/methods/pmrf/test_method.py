"""The ``pmrf`` method: the release's tensor layout, strict loading (safetensors), neighbourhood attention,
per-image seeded noise (batch independence), parameters, dtype.

The networks run reduced (tests/_helpers/pmrf_tiny.py); the released layout is checked on the meta device
(names and shapes only, no memory). Parity with the official code: test_golden.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bench
from bench import weights as W
from bench.core.registry import METHODS
from bench.engine.step import Engine
from methods.base import image_noise, noise_generator
from methods.pmrf import neighborhood
from methods.pmrf.hdit import axial_positions, halve_positions
from methods.pmrf.method import PMRFNet, load_strict, split_checkpoint
from methods.pmrf.neighborhood import neighborhood_attention, neighborhood_mask, window_starts
from tests._helpers.baselines_support import astronaut, manifest_shapes, to_batch
from tests._helpers.pmrf_tiny import TinyPMRF

MANIFEST = "pmrf_blind_face"


@pytest.fixture(scope="module")
def tiny() -> TinyPMRF:
    return TinyPMRF(steps=2, weights="random")


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    base = astronaut(64)
    return to_batch(*[np.roll(base, 9 * i, axis=1) for i in range(3)])


@pytest.fixture(scope="module")
def meta_net() -> PMRFNet:
    """The released networks on the meta device (names and shapes, no memory; the small fixed buffers on the CPU)."""
    with torch.device("meta"):
        return PMRFNet()


def _meta_zeros(net: PMRFNet, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Zeros with the manifest's names and shapes, each on the device of the tensor it loads into."""
    where = {k: v.device for k, v in net.state_dict().items()}
    return {k: torch.zeros(s, device=where.get(k, "meta")) for k, s in shapes.items()}


def test_released_layout_matches_the_official_manifest_and_loads_strictly(meta_net):
    shapes = manifest_shapes(MANIFEST)
    net = meta_net
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == shapes and sum(int(np.prod(s)) for s in shapes.values()) == 182_746_109
    state = _meta_zeros(net, shapes)
    state["fid.inception.Conv2d_1a_3x3.conv.weight"] = torch.zeros(32, 3, 3, 3, device="meta")  # dropped
    load_strict(net, state, "model.safetensors")


@pytest.mark.parametrize("edit, words", [
    ("rename", "model.mid_level.0.ff.up_proj.weight"),
    ("missing", "mmse_model.conv_last.bias"),
    ("reshape", "model.patch_in.proj.weight"),
])
def test_a_changed_tensor_is_one_line_naming_the_file(meta_net, edit, words):
    net = meta_net
    state = _meta_zeros(net, manifest_shapes(MANIFEST))
    if edit == "rename":
        state["model.mid_level.0.ff.up_proj.weights"] = state.pop(words)
    elif edit == "missing":
        del state[words]
    else:
        state[words] = torch.zeros(256, 47, device="meta")
    with pytest.raises(W.WeightsFileError) as exc:
        load_strict(net, state, "/x/model.safetensors")
    text = str(exc.value)
    assert "\n" not in text and text.startswith("/x/model.safetensors: does not match PMRF's networks")
    assert words in text and "bfrbench fetch pmrf-blind-face" in text


def test_another_checkpoint_is_refused():
    with pytest.raises(W.WeightsFileError, match=r"ckpt: not a PMRF blind-face checkpoint \(unexpected tensors "
                                                 r"\['params_ema.x'\]\)"):
        split_checkpoint({"model.a": torch.zeros(1), "params_ema.x": torch.zeros(1)}, "ckpt")
    with pytest.raises(W.WeightsFileError, match="no model"):
        split_checkpoint({"fid.a": torch.zeros(1)}, "ckpt")


def test_safetensors_checkpoint_loads_and_is_recorded(tiny, tmp_path, faces):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny.net.state_dict().items()}
    state["inception_score.inception.fc.weight"] = torch.zeros(2, 2)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    m = TinyPMRF(steps=2, weights=str(path))
    assert not m.info().standin and m.info().weights[0].sha256 == W.sha256_file(path)
    m.bind_noise(0, ["a"])
    tiny.bind_noise(0, ["a"])
    assert torch.equal(m.restore(faces[:1]), tiny.restore(faces[:1]))
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(W.WeightsFileError, match=r"bad\.safetensors: not a readable safetensors file"):
        TinyPMRF(weights=str(tmp_path / "bad.safetensors"))


def test_window_rule_is_natten_s():
    # centred where it fits, shifted inwards at the borders, always k wide
    assert window_starts(10, 7).tolist() == [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]
    assert window_starts(7, 7).tolist() == [0] * 7
    with pytest.raises(ValueError, match="smaller than the kernel"):
        window_starts(6, 7)


@pytest.mark.parametrize("h, w", [(9, 12), (8, 8), (16, 24), (32, 16)])  # the loop form, then tiles (one, several)
def test_neighborhood_attention_equals_masked_full_attention(h, w):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, h, w, 8, generator=g) for _ in range(3))
    mask = neighborhood_mask(h, w, 7)
    assert mask.sum(1).eq(49).all()
    ref = F.scaled_dot_product_attention(q.flatten(2, 3), k.flatten(2, 3), v.flatten(2, 3), attn_mask=mask,
                                         scale=0.5).view(2, 3, h, w, 8)
    assert torch.allclose(neighborhood_attention(q, k, v, 7, scale=0.5), ref, atol=1e-5)
    assert torch.allclose(neighborhood._slots(q, k, v, 7, 0.5), ref, atol=1e-5)


def test_positions_are_pixel_centres_and_merge_by_means():
    pos = axial_positions(4, 4)
    assert torch.allclose(pos[0, 0], torch.tensor([-0.75, -0.75])) and torch.allclose(pos[3, 2], torch.tensor([0.75, 0.25]))
    assert torch.allclose(halve_positions(pos), axial_positions(2, 2))
    wide = axial_positions(2, 4)
    assert torch.allclose(wide[:, 0, 0], torch.tensor([-0.25, 0.25]))  # the longer side spans [-1, 1]


def test_noise_depends_on_seed_and_key_only():
    a = image_noise(0, ["x", "y"], (3, 4, 4))
    assert torch.equal(a[1], image_noise(0, ["y"], (3, 4, 4))[0])
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[0], image_noise(1, ["x"], (3, 4, 4))[0])
    assert noise_generator(0, "x").initial_seed() == noise_generator(0, "x").initial_seed()


def test_restore_does_not_depend_on_the_batch(tiny, faces):
    names = ["a.png", "b.png", "c.png"]
    tiny.bind_noise(5, names)
    out = tiny.restore(faces)
    assert out.shape == (3, 3, 64, 64) and out.min() >= 0 and out.max() <= 1 and out.std() > 0.05
    one = []
    for i in range(3):
        tiny.bind_noise(5, names[i:i + 1])
        one.append(tiny.restore(faces[i:i + 1]))
    assert torch.allclose(out, torch.cat(one), atol=1e-5)
    tiny.bind_noise(5, ["c.png", "a.png", "b.png"])  # the same images in another order: the same outputs
    assert torch.allclose(tiny.restore(faces[[2, 0, 1]]), out[[2, 0, 1]], atol=1e-5)


def test_engine_binds_seed_and_names_per_call(tiny, faces):
    u8 = (faces * 255).round().to(torch.uint8)
    engine = Engine("cpu")
    engine.seed, engine.method_batch = 7, None
    whole = engine.restore(engine.prepare(tiny, 3, 64), u8, ["a", "b", "c"])
    engine.method_batch = 1  # one image per call
    split = engine.restore(engine.prepare(tiny, 3, 64), u8, ["a", "b", "c"])
    # the same noise per image; only float rounding of the batched matrix products differs (at most one level,
    # measured: 1 value of 36864 at 1e-6 from a rounding edge)
    assert (whole - split).abs().max() <= 1 / 255 + 1e-6 and (whole != split).float().mean() < 1e-3
    engine.seed = 8
    other = engine.restore(engine.prepare(tiny, 3, 64), u8, ["a", "b", "c"])
    assert (other - whole).abs().max() > 2 / 255


def test_parameters_and_seed_are_recorded(tiny):
    tiny.bind_noise(3)
    assert tiny.info().params == {"steps": 2, "noise": 0.1, "run_seed": 3}
    with pytest.raises(ValueError, match="steps must be at least 1"):
        TinyPMRF(steps=0, weights="random")
    with pytest.raises(ValueError, match="noise"):
        TinyPMRF(noise=-0.1, weights="random")


def test_zero_noise_and_one_step_is_the_posterior_mean_plus_one_velocity(tiny, faces):
    m = TinyPMRF(steps=1, noise=0.0, weights="random")
    m.bind_noise(0, ["a"])
    with torch.no_grad():
        z0 = m.net.posterior_mean(faces[:1])
        want = (z0 + m.net.model(z0, torch.zeros(1))).clip(0, 1)
    assert torch.allclose(m.restore(faces[:1]), want, atol=1e-6)


def test_registered_and_catalogued():
    bench.list_methods()
    meta = METHODS.entry("pmrf").meta
    assert meta["weights"] == ["pmrf-blind-face"] and meta["family"] == "pmrf"
    spec = W.WEIGHTS["pmrf-blind-face"]
    assert spec.url.endswith("PMRF_blind_face_image_restoration/resolve/main/model.safetensors")
    assert "MIT" in spec.license
    with pytest.raises(W.MissingWeightsError, match="bfrbench fetch pmrf-blind-face"):
        bench.create_method("pmrf")


def test_bf16_autocast_stays_close_to_fp32(tiny, faces):
    tiny.bind_noise(0, ["a"])
    ref = tiny.restore(faces[:1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = tiny.restore(faces[:1])
    assert low.dtype == torch.float32 and (ref - low).abs().mean() < 0.03


def test_a_recorded_run_is_reused_only_for_the_same_run_seed(tiny, tmp_path):
    from bench.config import MethodSpec
    from bench.engine import reuse

    spec = MethodSpec.parse("test-pmrf-tiny:steps=2", weights="random")
    tiny.bind_noise(4)
    reuse.record(tmp_path, spec, tiny)
    again = reuse.recorded(tmp_path, spec, 4)
    assert again is not None and again.info().params["run_seed"] == 4
    assert reuse.recorded(tmp_path, spec, 5) is None  # another --seed: built again, its units recomputed


def test_official_style_loop_draws_each_image_s_own_noise(tiny, tmp_path):
    """``profile --e2e``'s one-image loop keys the noise by image name, as the engine's run does."""
    from types import SimpleNamespace

    import cv2

    from bench.core import plugins
    from bench.core.registry import METRICS
    from bench.engine.official import official_style
    from tests._helpers.runner_helpers import make_folder

    plugins.load_all()
    root = make_folder(tmp_path / "set", 2)
    pairs = [SimpleNamespace(name=f"img{i:03d}", lq_path=root / "lq" / f"img{i:03d}.png",
                             gt_path=root / "gt" / f"img{i:03d}.png") for i in range(2)]
    tiny.bind_noise(6)  # the run seed, no keys yet
    official_style(tiny, {"psnr": METRICS.create("psnr")}, pairs, tmp_path / "out", device=torch.device("cpu"), size=64)
    for p in pairs:
        rgb = np.ascontiguousarray(cv2.imread(str(p.lq_path))[..., ::-1])
        tiny.bind_noise(6, [p.name])
        want = (tiny.restore(to_batch(rgb))[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        got = cv2.imread(str(tmp_path / "out" / f"{p.name}.png"))[..., ::-1]
        assert np.array_equal(got, want), p.name


def test_run_labels_seed_and_steps_and_another_seed_recomputes(registries, tmp_path):
    """``bfrbench run``'s table names a stochastic method's seed and steps; a rerun with another --seed in the
    same run folder recomputes its unit (the recorded method is for one seed), the same seed reuses it."""
    from bench.config import RunConfig
    from bench.engine.results import format_ranked_tables, sampling_tags
    from bench.engine.runner import Runner
    from tests._helpers.runner_helpers import make_folder, register

    METHODS.add("test-pmrf-tiny", TinyPMRF, takes_quality=False)
    ds = register(make_folder(tmp_path / "set", 2), "pmrf")

    def run(seed: int):
        cfg = RunConfig(datasets=[ds], methods=["test-pmrf-tiny:steps=2"], weights={"test-pmrf-tiny": "random"},
                        metrics=["test-mae"], out=str(tmp_path / "run"), device="cpu", batch_size=2, workers=0,
                        quiet=True, report=False, seed=seed)
        return Runner(cfg).run()

    first = run(3)
    tags = sampling_tags(first.methods)
    assert tags == {"test-pmrf-tiny:steps=2": "seed 3, 2 steps"}
    assert "test-pmrf-tiny:steps=2 [seed 3, 2 steps] [stand-in]" in format_ranked_tables(first.summary, sampling=tags)
    again, other = run(3), run(4)
    assert again.units[0].config_hash == first.units[0].config_hash and again.units[0].batches_computed == 0
    assert other.units[0].config_hash != first.units[0].config_hash and other.units[0].batches_computed > 0


def test_restore_command_keys_whole_image_faces_by_photo_and_index(tiny):
    """``bfrbench restore`` on whole photos: face i of photo P draws the noise of key "P#face{i}", whatever the batch."""
    from types import SimpleNamespace

    from bench.engine.restore_folder import FolderRestorer

    r = FolderRestorer.__new__(FolderRestorer)  # only what _restore_crops uses
    r.engine = Engine("cpu")
    r.engine.seed, r.engine.method_batch = 2, None
    r.prepared = r.engine.prepare(tiny, 3, 64)
    crops = [astronaut(64)] * 3
    r.job = SimpleNamespace(batch_size=1)
    one = r._restore_crops(crops, "p.png")
    r.job.batch_size = 3
    three = r._restore_crops(crops, "p.png")
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in zip(one, three))
    assert not np.array_equal(one[0], one[1])  # the same face at another index: other noise


def test_restore_command_seed_reaches_the_noise(registries, tmp_path):
    import cv2

    from bench.cli import main

    METHODS.add("test-pmrf-tiny", TinyPMRF, takes_quality=False)
    (tmp_path / "in").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "in" / f"f{i}.png"), np.roll(astronaut(64), 7 * i, axis=1))

    def restore(seed: int, batch: int) -> list[np.ndarray]:
        out = tmp_path / f"out{seed}_{batch}"
        assert main(["restore", "--method", "test-pmrf-tiny", "--weights", "random", "--input", str(tmp_path / "in"),
                     "--output", str(out), "--aligned", "--device", "cpu", "--seed", str(seed), "--batch-size",
                     str(batch), "--param", "steps=1", "--quiet"]) == 0
        return [cv2.imread(str(out / f"f{i}.png")) for i in range(2)]

    a, b, c = restore(1, 1), restore(1, 2), restore(2, 2)
    assert all(np.abs(x.astype(int) - y.astype(int)).max() <= 1 for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
