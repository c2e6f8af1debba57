"""Parity with the official CodeFormer code (the codeformer-pip 0.0.4 sdist, downloaded by the test).

Fast tests compare the building blocks and a small VQGAN bit for bit; the slow test runs the full
512x512 network through ``bfrbench``'s method against the official inference path.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import bench
from bench.core.device import to_uint8_levels
from methods.codeformer_arch import VQAutoEncoder, get_config
from methods.codeformer_arch.cft import FuseSFTBlock
from methods.codeformer_arch.network import adaptive_instance_normalization
from methods.codeformer_arch.transformer import TransformerSALayer
from tests._helpers.official_refs import basicsr_stubs, load_manifest, load_official_module, seeded_state_dict

pytestmark = [pytest.mark.network, pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")]

REQUIREMENT = "codeformer-pip==0.0.4"


@pytest.fixture(scope="module")
def official():
    return load_official_module(
        REQUIREMENT, "codeformer/basicsr/archs/codeformer_arch.py", basicsr_stubs("codeformer.basicsr")
    )


def _seeded_pair(ref: torch.nn.Module, ours: torch.nn.Module, seed: int) -> None:
    sd = seeded_state_dict({k: list(v.shape) for k, v in ref.state_dict().items()}, seed)
    ref.load_state_dict(sd, strict=True)
    ours.load_state_dict(sd, strict=True)
    ref.eval(), ours.eval()


def test_small_vqgan_matches_official(official):
    ref = official.VQAutoEncoder(64, 32, [1, 2, 2, 4], "nearest", 2, [8], 64, emb_dim=32)
    cfg = get_config(
        "vqgan_stage1", img_size=64, nf=32, ch_mult=(1, 2, 2, 4), attn_resolutions=(8,), codebook_size=64,
        emb_dim=32, connect_list=(),
    )
    ours = VQAutoEncoder(cfg)
    _seeded_pair(ref, ours, seed=11)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        r_out, r_loss, r_stats = ref(x)
        o_out, o_loss, o_stats = ours(x)
    assert torch.equal(o_stats["min_encoding_indices"], r_stats["min_encoding_indices"])
    assert torch.equal(o_out, r_out)
    assert torch.allclose(o_loss, r_loss, rtol=1e-5)
    assert torch.allclose(o_stats["perplexity"], r_stats["perplexity"], rtol=1e-5)
    assert o_out.std() > 0.05


def test_transformer_layer_cft_and_adain_match_official(official):
    ref_layer, our_layer = official.TransformerSALayer(64, 4, 128, 0.0), TransformerSALayer(64, 4, 128, need_weights=True)
    _seed = torch.Generator().manual_seed(1)
    _seeded_pair(ref_layer, our_layer, seed=2)
    x, pos = torch.randn(16, 2, 64, generator=_seed), torch.randn(16, 1, 64, generator=_seed)
    with torch.no_grad():
        assert torch.equal(our_layer(x, query_pos=pos), ref_layer(x, query_pos=pos.repeat(1, 2, 1)))

    ref_cft, our_cft = official.Fuse_sft_block(64, 64), FuseSFTBlock(64, 64)
    _seeded_pair(ref_cft, our_cft, seed=3)
    enc, dec = torch.randn(2, 64, 8, 8, generator=_seed), torch.randn(2, 64, 8, 8, generator=_seed)
    with torch.no_grad():
        assert torch.equal(our_cft(enc, dec, 0.3), ref_cft(enc, dec, 0.3))

    content, style = torch.randn(2, 32, 4, 4, generator=_seed), torch.randn(2, 32, 4, 4, generator=_seed) * 2
    assert torch.equal(adaptive_instance_normalization(content, style), official.adaptive_instance_normalization(content, style))


def test_official_codeformer_builds_the_manifest(official):
    man = load_manifest("codeformer_v0.1.0")
    net = official.CodeFormer(**man["constructor"])
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [(k, v) for k, v in man["tensors"].items()]


def _official_restore(net: torch.nn.Module, rgb: np.ndarray, w: float) -> np.ndarray:
    """inference_codeformer.py on an aligned 512 face (BGR file read -> tensor2img), returned as RGB."""
    bgr = rgb[:, :, ::-1].copy()
    img = cv2.cvtColor((bgr / 255.0).astype(np.float32), cv2.COLOR_BGR2RGB)  # img2tensor(bgr2rgb=True)
    t = torch.from_numpy(img.transpose(2, 0, 1)).float()
    t = ((t - 0.5) / 0.5).unsqueeze(0)  # normalize(0.5, 0.5)
    with torch.no_grad():
        out = net(t, w=w, adain=True)[0]
    out = (out.squeeze(0).float().clamp_(-1, 1) + 1) / 2  # tensor2img(min_max=(-1, 1))
    img = cv2.cvtColor(out.numpy().transpose(1, 2, 0), cv2.COLOR_RGB2BGR)
    return (img * 255.0).round().astype(np.uint8)[:, :, ::-1]


@pytest.mark.slow
def test_full_codeformer_matches_official_inference(official, tmp_path):
    from skimage.data import astronaut

    man = load_manifest("codeformer_v0.1.0")
    sd = seeded_state_dict(man["tensors"], seed=0)
    ref = official.CodeFormer(**man["constructor"]).eval()
    ref.load_state_dict(sd, strict=True)
    path = tmp_path / "codeformer_seeded.pth"
    torch.save({"params_ema": sd}, path)

    rgb = astronaut()  # a real 512x512 face photo
    lq = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    outs = {}
    for w in (0.5, 0.0):
        method = bench.create_method("codeformer", weights=str(path), fidelity=w)
        ours = (to_uint8_levels(method.restore(lq))[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        theirs = _official_restore(ref, rgb, w)
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert (diff <= 1).mean() >= 0.99, (w, diff.max())
        assert ours.std() > 10  # not constant
        outs[w] = ours
    assert np.abs(outs[0.5].astype(int) - outs[0.0].astype(int)).mean() > 1  # CFT did something
