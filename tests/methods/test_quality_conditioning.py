"""Plug-and-play IQP conditioning: structure-preserving wrapper, bit-identity at init, fine-tuning."""
from __future__ import annotations

import cv2
import pytest
import torch

from methods.codeformer_arch.network import CodeLookupNet
from methods.codeformer_family import standin_state_dict
from methods.quality_conditioning import QualityConditioned

RF_SMALL = {"n_embed": 64, "embed_dim": 32, "ch": 32, "ch_mult": [1, 2, 2, 4], "resolution": 64, "z_channels": 32,
            "attn_resolutions": [8]}


def tiny_codeformer(seed: int = 0) -> CodeLookupNet:
    net = CodeLookupNet("tiny_codeformer")
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    net.load_state_dict(standin_state_dict(shapes, seed), strict=True)
    return net.eval()


def small_restoreformerpp(seed: int = 0):
    from methods.restoreformer.arch import VQVAEGANMultiHeadTransformer
    from methods.restoreformer.method import VARIANTS

    torch.manual_seed(seed)
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in RF_SMALL.items()}
    return VQVAEGANMultiHeadTransformer(**VARIANTS["restoreformer++"], **kw).eval()


def test_codeformer_wrapper_keeps_structure_and_is_bit_identical_at_init():
    base = tiny_codeformer()
    state = {k: v.clone() for k, v in base.state_dict().items()}
    wrapped = QualityConditioned(tiny_codeformer(seed=1), num_bins=10)
    wrapped.base.load_state_dict(state, strict=True)  # the original checkpoint loads strictly into the base
    assert set(wrapped.base.state_dict()) == set(state)
    assert set(wrapped.state_dict()) - {f"base.{k}" for k in state} == {"score_embed.weight"}
    assert wrapped.latent_shape == (32, 8, 8) and wrapped.score_embed.weight.shape == (10, 32 * 8 * 8)
    assert float(wrapped.score_embed.weight.detach().abs().sum()) == 0.0
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = base(x, w=0.5, adain=True)
        for score in (0.05, 0.9, torch.tensor([0.1, 0.5, 0.99])):
            got = wrapped(x, score=score, w=0.5, adain=True)
            assert all(torch.equal(a, b) for a, b in zip(ref, got))
        with torch.no_grad():
            wrapped.score_embed.weight[9].normal_()
        moved = wrapped(x, score=0.9, w=0.5, adain=True)
        assert not torch.equal(moved[1], ref[1])  # the top bin now shifts the latent -> other logits
        assert all(torch.equal(a, b) for a, b in zip(ref, wrapped(x, score=0.05, w=0.5, adain=True)))
        assert all(torch.equal(a, b) for a, b in zip(ref, wrapped(x, w=0.5, adain=True)))  # unconditioned call
        with wrapped.conditioned(0.9):
            assert torch.equal(wrapped.base(x, w=0.5, adain=True)[1], moved[1])
    with pytest.raises(ValueError, match="score has 2 values for a batch of 3"):
        wrapped(x, score=torch.tensor([0.1, 0.2]))


def test_calls_inside_conditioned_block_stay_conditioned():
    """A forward call inside ``with conditioned(...)`` must not drop the block's condition for later calls."""
    wrapped = QualityConditioned(tiny_codeformer(), num_bins=10)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        wrapped.score_embed.weight[9].normal_(generator=torch.Generator().manual_seed(0))
        plain = wrapped(x)[1]
        high = wrapped(x, score=0.95)[1]
        assert not torch.equal(plain, high)
        with wrapped.conditioned(0.95):
            assert torch.equal(wrapped(x)[1], high)
            assert torch.equal(wrapped(x)[1], high)  # the first call left the condition in force
            assert torch.equal(wrapped(x, score=0.05)[1], plain)  # an explicit score wins for that call only
            assert torch.equal(wrapped(x)[1], high)
        assert torch.equal(wrapped(x)[1], plain)  # leaving the block un-conditions
        assert wrapped._score is None and not wrapped._st_active


def test_restoreformerpp_wrapper_hooks_the_latent_before_quantization():
    base = small_restoreformerpp()
    wrapped = QualityConditioned(small_restoreformerpp(), num_bins=10, input_size=64)
    wrapped.base.load_state_dict(base.state_dict(), strict=True)
    assert wrapped._latent_module is wrapped.base.quant_conv and wrapped.latent_shape == (32, 8, 8)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(base(x), wrapped(x, score=0.9))
        wrapped.score_embed.weight[9].fill_(5.0)
        assert not torch.equal(base(x), wrapped(x, score=0.9))
        assert torch.equal(base(x), wrapped(x, score=0.2))
    # training: the straight-through quantizer lets an image loss reach the embedding
    wrapped.train()
    out = wrapped(x, score=torch.tensor([0.95, 0.95]))
    out.abs().mean().backward()
    assert float(wrapped.score_embed.weight.grad[9].abs().sum()) > 0
    assert float(wrapped.score_embed.weight.grad[:9].abs().sum()) == 0


def test_embedding_file_round_trip_and_mismatch(tmp_path):
    a = QualityConditioned(tiny_codeformer(), num_bins=10)
    with torch.no_grad():
        a.score_embed.weight.normal_()
    a.save_embedding(tmp_path / "emb.pth")
    b = QualityConditioned(tiny_codeformer(), num_bins=10)
    b.load_embedding(tmp_path / "emb.pth")
    assert torch.equal(a.score_embed.weight, b.score_embed.weight)
    with pytest.raises(ValueError, match="another base network"):
        QualityConditioned(tiny_codeformer(), num_bins=20).load_embedding(tmp_path / "emb.pth")


def test_registered_plug_and_play_methods():
    import bench
    from bench.core.registry import METHODS

    bench.list_methods()
    for name, base in (("codeformer+iqp", "codeformer"), ("restoreformer+++iqp", "restoreformer++")):
        meta = METHODS.entry(name).meta
        assert meta["takes_quality"] is True and meta["base"] == base and meta["defaults"]["quality"] == 0.9
    m = bench.create_method("codeformer+iqp", weights="random", config="tiny_codeformer", quality=0.9)
    b = bench.create_method("codeformer", weights="random", config="tiny_codeformer")
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(m.restore(x), b.restore(x))
    info = m.info()
    assert info.params["quality"] == 0.9 and info.weights[-1].name == "iqp-embedding" and info.standin
    with pytest.raises(ValueError, match="quality must be in"):
        bench.create_method("codeformer+iqp", weights="random", config="tiny_codeformer", quality=1.5)


# -- fine-tuning --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("pp_faces")
    img = data.astronaut()
    rows = ["image,score"]
    for i in range(6):
        crop = cv2.resize(img[10 * i : 10 * i + 256, 100 + 10 * i : 356 + 10 * i], (128, 128), interpolation=cv2.INTER_AREA)
        if i % 2:
            crop = cv2.GaussianBlur(crop, (0, 0), 2.0)
        cv2.imwrite(str(root / f"f{i}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        rows.append(f"f{i}.png,{0.2 if i % 2 else 0.9}")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


def finetune_config(faces, tmp_path, base: str, weights: str, **finetune):
    from methods.iqp_bfr.train.config import resolve

    return resolve({
        "stage": "finetune", "device": "cpu",
        "finetune": {"base": base, "weights": weights, **finetune},
        "data": {"root": str(faces), "scores": str(faces / "scores.csv"), "size": 64, "batch_size": 2,
                 "degradation": "codeformer-small", "degrade_size": 128},
        "train": {"total_iter": 4, "lr_g": 1e-2, "ema_decay": 0.0},
        "perceptual": {"type": "laplacian"}, "checkpoint": {"every": 4}, "log": {"every": 2},
    })


@pytest.mark.parametrize("train_transformer", [False, True])
def test_finetune_trains_only_the_embedding_and_writes_a_loadable_file(faces, tmp_path, train_transformer):
    from methods.iqp_bfr.train.trainer import train

    base = tiny_codeformer()
    ckpt = tmp_path / "base.pth"
    torch.save({"params_ema": base.state_dict()}, ckpt)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    train(finetune_config(faces, tmp_path, "tiny_codeformer", str(ckpt), train_transformer=train_transformer), tmp_path / "ft")
    emb = torch.load(tmp_path / "ft" / "embedding.pth", weights_only=True)
    assert float(emb["score_embed.weight"].abs().sum()) > 0  # it learned
    tuned = {k[len("base."):] for k in emb if k.startswith("base.")}
    assert bool(tuned) == train_transformer
    assert all(k.split(".")[0] in ("ft_layers", "idx_pred_layer", "feat_emb", "position_emb") for k in tuned)
    state = torch.load(tmp_path / "ft" / "checkpoints" / "state_00000004.pt", weights_only=True)
    assert set(state["stage"]["modules"]["net_g"]) == {"score_embed.weight"} | {f"base.{k}" for k in tuned}
    # load the base + embedding as the registered method does and compare with the frozen base
    wrapped = QualityConditioned(tiny_codeformer(), num_bins=10)
    wrapped.base.load_state_dict(before, strict=True)
    wrapped.load_embedding(tmp_path / "ft" / "embedding.pth")
    after = wrapped.base.state_dict()
    for k, v in before.items():
        if k in tuned:
            continue
        assert torch.equal(after[k], v), f"frozen parameter {k} changed"
    if train_transformer:
        assert any(not torch.equal(after[k], before[k]) for k in tuned)


def test_finetune_restoreformerpp_keeps_the_base_frozen(faces, tmp_path):
    from methods.iqp_bfr.train.finetune import FineTune
    from methods.iqp_bfr.train.trainer import Trainer

    net = small_restoreformerpp()
    ckpt = tmp_path / "rf.ckpt"
    torch.save({"state_dict": {f"vqvae.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    cfg = finetune_config(faces, tmp_path, "restoreformer++", str(ckpt), base_kwargs=RF_SMALL)
    cfg["loss"]["pixel"] = 1.0
    trainer = Trainer(cfg, tmp_path / "ft")
    assert isinstance(trainer.stage, FineTune) and trainer.stage.kind == "restoreformer"
    trainer.run()
    after = trainer.stage.net_g.base.state_dict()
    assert all(torch.equal(after[k], v) for k, v in net.state_dict().items())
    assert float(trainer.stage.net_g.score_embed.weight.detach().abs().sum()) > 0


def test_finetune_errors(faces, tmp_path):
    from bench.core.errors import UserError
    from methods.iqp_bfr.train.trainer import Trainer

    with pytest.raises(UserError, match="already quality-conditioned"):
        Trainer(finetune_config(faces, tmp_path, "tiny", None), tmp_path / "a")
    with pytest.raises(UserError, match="no such checkpoint"):
        Trainer(finetune_config(faces, tmp_path, "tiny_codeformer", str(tmp_path / "nope.pth")), tmp_path / "b")
    cfg = finetune_config(faces, tmp_path, "restoreformer++", None, base_kwargs=RF_SMALL, train_transformer=True)
    with pytest.raises(UserError, match="code-lookup base"):
        Trainer(cfg, tmp_path / "c")


def test_one_quality_check_for_iqp_and_the_plug_in_variants():
    """codeformer_family and quality_conditioning checked quality with two copies; one function now, one message."""
    import math

    import bench
    from methods.base import check_quality

    assert check_quality("m", 1) == 1.0 and isinstance(check_quality("m", 1), float)
    for bad in (1.5, -0.1, math.nan, "abc", None):
        with pytest.raises(ValueError, match=r"^m: quality must be in \[0, 1\] \(0.9 asks for the best\), got "):
            check_quality("m", bad)
    messages = []
    for name in ("iqp-bfr", "codeformer+iqp"):
        config = "tiny" if name == "iqp-bfr" else "tiny_codeformer"
        with pytest.raises(ValueError) as info:
            bench.create_method(name, weights="random", config=config, quality=math.nan)
        messages.append(str(info.value).split(": ", 1)[1])
    assert messages[0] == messages[1]
