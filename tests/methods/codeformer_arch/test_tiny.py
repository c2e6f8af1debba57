"""The tiny CodeFormer-family config: forward, backward, save/load, quality conditioning, dual codebook."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench import weights as W
from methods.codeformer_arch import CodeLookupNet, NetConfig, VQAutoEncoder, build_network, get_config
from methods.codeformer_arch.network import adaptive_instance_normalization
from methods.codeformer_arch.transformer import score_bins


def _net(name: str = "tiny", seed: int = 0, **overrides) -> CodeLookupNet:
    torch.manual_seed(seed)
    return build_network(get_config(name, **overrides)).eval()


def _x(b: int = 2, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_tiny_is_small_and_iqpir_shaped():
    net = _net()
    n = sum(p.numel() for p in net.parameters())
    assert 100_000 < n < 1_000_000
    assert net.is_dual and net.n_scores == 1 and hasattr(net, "quantize_aesthetic")


def test_forward_shapes_and_codes_in_range():
    net = _net()
    with torch.no_grad():
        out, logits, lq = net(_x(), w=0.5, score=0.9, adain=True)
    cfg = net.config
    assert out.shape == (2, 3, 64, 64)
    assert logits.shape == (2, cfg.latent_size, cfg.codebook_size, 2)
    assert lq.shape == (2, cfg.emb_dim, cfg.latent_res, cfg.latent_res)
    _, logits_only, _ = net(_x(), score=0.9, return_logits=True)
    assert torch.equal(logits_only, logits)


def test_dual_lookup_is_common_plus_weighted_hq():
    net = _net(aesthetic_weight=0.3)
    idx = torch.randint(0, net.config.codebook_size, (1, net.config.latent_size, 2), generator=torch.Generator().manual_seed(0))
    got = net.lookup(idx)
    hq = net.quantize_aesthetic.embedding.weight[idx[0, :, 0]]
    common = net.quantize.embedding.weight[idx[0, :, 1]]
    want = (common + 0.3 * hq).T.reshape(1, net.config.emb_dim, net.config.latent_res, net.config.latent_res)
    assert torch.allclose(got, want, atol=1e-6)


def test_quality_condition_changes_codes_and_is_binned():
    net = _net()
    x = _x(1)
    with torch.no_grad():
        codes = {s: net(x, score=s, return_logits=True)[1].argmax(2) for s in (0.1, 0.35, 0.91, 0.99, 1.0)}
    assert (codes[0.1] != codes[0.91]).float().mean() > 0.05  # a real effect on the predicted codes
    assert torch.equal(codes[0.91], codes[0.99])  # same bin (9): same condition
    assert torch.equal(codes[0.99], codes[1.0])  # 1.0 is clamped into the top bin instead of crashing
    assert score_bins(torch.tensor([0.0, 0.09, 0.1, 0.85, 0.9, 1.0]), 10).tolist() == [0, 0, 1, 8, 9, 9]


def test_score_offset_is_added_to_lq_latent():
    net = _net()
    x = _x(2)
    with torch.no_grad():
        z, _ = net.encode(x)
        _, _, lq = net(x, score=torch.tensor([0.25, 0.75]), return_logits=True)
    table = net.score_embed.weight.view(10, *lq.shape[1:])
    assert torch.allclose(lq, z + torch.stack([table[2], table[7]]), atol=1e-6)


def test_backward_stage2_reaches_encoder_transformer_and_score_embedding():
    net = _net().train()
    net.freeze("quantize", "quantize_aesthetic", "generator")
    _, logits, lq = net(_x(), score=torch.tensor([0.2, 0.8]), return_logits=True)
    target = torch.randint(0, net.config.codebook_size, logits.shape[:2] + (2,), generator=torch.Generator().manual_seed(0))
    loss = F.cross_entropy(logits.permute(0, 2, 1, 3), target) + lq.pow(2).mean()
    loss.backward()
    for name in ("encoder.blocks.0.weight", "ft_layers.0.linear1.weight", "score_embed.weight", "position_emb"):
        g = dict(net.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
    assert all(p.grad is None for p in net.generator.parameters())


def test_backward_stage3_trains_cft_and_straight_through_reaches_encoder():
    net = _net().train()
    out, _, _ = net(_x(), w=0.7, score=0.9, adain=True, detach_16=False)
    out.mean().backward()
    assert net.fuse_convs["16"].scale[0].weight.grad.abs().sum() > 0
    assert net.feat_emb.weight.grad is None  # argmax lookup: no gradient through the Transformer
    assert net.encoder.blocks[-1].weight.grad.abs().sum() > 0  # straight-through into lq_feat
    assert net.quantize.embedding.weight.grad is None


def test_fidelity_zero_skips_cft_blocks():
    net = _net()
    x = _x(1)
    with torch.no_grad():
        a = net(x, w=0.0, score=0.9)[0]
        b = net(x, w=0.5, score=0.9)[0]
        for p in net.fuse_convs.parameters():
            p.add_(1.0)
        c = net(x, w=0.0, score=0.9)[0]
    assert torch.equal(a, c)
    assert (a - b).abs().max() > 1e-3


def test_save_load_round_trip(tmp_path):
    net = _net(seed=5)
    path = tmp_path / "tiny.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    other = _net(seed=6)
    other.load_state_dict(W.load_state_dict(path, key="params_ema"), strict=True)
    x = _x(1)
    with torch.no_grad():
        assert torch.equal(net(x, w=0.5, score=0.7, adain=True)[0], other(x, w=0.5, score=0.7, adain=True)[0])


def test_adain_gives_lq_channel_statistics():
    content = torch.randn(2, 8, 4, 4) * 3 + 1
    style = torch.randn(2, 8, 4, 4) * 0.5 - 2
    out = adaptive_instance_normalization(content, style)
    assert torch.allclose(out.mean((2, 3)), style.mean((2, 3)), atol=1e-5)
    # unbiased variance + eps, as the reference
    assert torch.allclose(out.var((2, 3)), style.var((2, 3)) + 1e-5, rtol=1e-3)


def test_input_and_score_errors_are_clear():
    net = _net()
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        net(torch.zeros(1, 3, 32, 32), score=0.9)
    with pytest.raises(ValueError, match="quality-conditioned"):
        net(_x(1))
    with pytest.raises(ValueError, match="one per image"):
        net(_x(2), score=torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="no quality conditioning"):
        _net("tiny_codeformer")(_x(1), score=0.9)
    with pytest.raises(ValueError, match="score_cond"):
        NetConfig(score_cond="concat")


def test_multi_iqa_embedding_sums_one_table_per_model():
    net = _net(score_cond="add_multi", score_bins_list=(20, 20, 20))
    assert [k for k in net.state_dict() if k.startswith("score_embed")] == [
        "score_embed.0.weight", "score_embed.1.weight", "score_embed.2.weight"
    ]
    x = _x(1)
    with torch.no_grad():
        z, _ = net.encode(x)
        _, _, lq = net(x, score=torch.tensor([[0.5, 0.05, 0.99]]), return_logits=True)
        _, _, lq_scalar = net(x, score=0.5, return_logits=True)
    shape = lq.shape[1:]
    want = z + net.score_embed[0].weight[10].view(shape) + net.score_embed[1].weight[1].view(shape)
    want = want + net.score_embed[2].weight[19].view(shape)
    assert torch.allclose(lq, want, atol=1e-5)
    want_scalar = z + sum(t.weight[10].view(shape) for t in net.score_embed)
    assert torch.allclose(lq_scalar, want_scalar, atol=1e-5)


def test_adaln_zero_init_and_conditioning():
    # gate offset 1: at init the conditioned network equals the plain one with the same weights
    plain = _net("tiny_codeformer", seed=3)
    ada = _net("tiny_codeformer", seed=3, score_cond="adaln", adaln_gate_offset=1.0)
    ada.load_state_dict(plain.state_dict(), strict=False)
    x = _x(1)
    with torch.no_grad():
        ref = plain(x, return_logits=True)[1]
        assert torch.allclose(ada(x, score=0.1, return_logits=True)[1], ref, atol=1e-5)
        for layer in ada.ft_layers:
            torch.nn.init.normal_(layer.adaLN_modulation[1].weight, std=0.05)
        lo, hi = ada(x, score=0.1, return_logits=True)[1], ada(x, score=0.9, return_logits=True)[1]
    assert (lo.argmax(2) != hi.argmax(2)).float().mean() > 0.02
    # DiT AdaLN-Zero (offset 0): every layer starts as the identity
    zero = _net("tiny_codeformer", seed=3, score_cond="adaln", adaln_gate_offset=0.0)
    with torch.no_grad():
        z, _ = zero.encode(x)
        direct = zero.idx_pred_layer(zero.feat_emb(z.flatten(2).permute(2, 0, 1))).permute(1, 0, 2)
        assert torch.allclose(zero(x, score=0.3, return_logits=True)[1], direct, atol=1e-5)
    zero.train()
    zero(x, score=0.3, return_logits=True)[1].sum().backward()
    assert zero.ft_layers[0].adaLN_modulation[1].weight.grad.abs().sum() > 0  # the gates can learn


def test_stage1_dual_codebook_gates_hq_branch_per_sample():
    vq = _net("tiny_vqgan").train()
    assert isinstance(vq, VQAutoEncoder) and not isinstance(vq, CodeLookupNet)
    x = _x(2)
    with pytest.raises(ValueError, match="score"):
        vq(x)
    recon, loss, stats = vq(x, score=torch.tensor([0.9, 0.2]))  # only the first passes 0.7
    assert recon.shape == x.shape and loss.ndim == 0
    assert stats["gate"].tolist() == [True, False]
    loss.backward()
    emb = vq.quantize_aesthetic.embedding.weight
    used = stats["aesthetic"]["indices"][0].unique()
    assert emb.grad[used].abs().sum() > 0
    # no HQ-codebook gradient from the low-quality sample: only its codes may move
    vq.zero_grad()
    _, loss_low, _ = vq(x[1:], score=0.2)
    loss_low.backward()
    assert emb.grad is None or emb.grad.abs().sum() == 0
    # the quantized latent is common + 0.8 * hq above the threshold, common alone below
    with torch.no_grad():
        z = vq.encoder(x)
        q, _, st = vq.quantize_latent(z, score=torch.tensor([0.9, 0.2]))
        common = vq.quantize.lookup(st["indices"], z.shape[-2:])
        hq = vq.quantize_aesthetic.lookup(st["aesthetic"]["indices"], z.shape[-2:])
    assert torch.allclose(q[0], common[0] + 0.8 * hq[0], atol=1e-5)
    assert torch.allclose(q[1], common[1], atol=1e-6)


def test_code_indices_are_stage2_targets():
    vq = _net("tiny_vqgan")
    idx = vq.code_indices(_x(2))
    assert idx.shape == (2, vq.config.latent_size, 2)
    with torch.no_grad():
        z = vq.encoder(_x(2))
        d = torch.cdist(z.flatten(2).transpose(1, 2), vq.quantize.embedding.weight.expand(2, -1, -1))
    assert (idx[..., 1] == d.argmin(-1)).float().mean() > 0.99  # nearest common code
