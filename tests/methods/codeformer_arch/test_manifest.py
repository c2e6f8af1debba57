"""Full-size CodeFormer-family networks build exactly the released checkpoints' tensors and load them strictly."""
from __future__ import annotations

import pytest
import torch

from bench import weights as W
from methods.codeformer_arch import CodeLookupNet, VQAutoEncoder, build_network, get_config
from tests._helpers.official_refs import load_manifest, seeded_state_dict

CASES = [
    ("codeformer", "codeformer_v0.1.0"),
    ("vqgan_stage1", "codeformer_vqgan_stage1"),
    ("iqpir", "iqpir_dual_codebook_score_add"),
]


@pytest.mark.parametrize("config,manifest", CASES)
def test_state_dict_matches_manifest_and_loads_strict(config, manifest, tmp_path):
    man = load_manifest(manifest)
    net = build_network(config)
    names_shapes = [(k, list(v.shape)) for k, v in net.state_dict().items()]
    assert names_shapes == [(k, list(v)) for k, v in man["tensors"].items()]  # names, shapes and order
    assert sum(v.numel() for v in net.state_dict().values()) == man["num_params"]

    sd = seeded_state_dict(man["tensors"], seed=3)
    path = tmp_path / f"{manifest}.pth"
    torch.save({"params_ema": sd}, path)
    loaded = W.load_state_dict(path, key="params_ema")
    net.load_state_dict(loaded, strict=True)
    own = net.state_dict()
    for name in ("encoder.blocks.0.weight", "quantize.embedding.weight", "generator.blocks.24.bias"):
        assert torch.equal(own[name], sd[name])
    loaded.pop(name)
    with pytest.raises(RuntimeError, match="Missing key"):
        net.load_state_dict(loaded, strict=True)


def test_constructor_arguments_of_manifests_match_presets():
    cf = load_manifest("codeformer_v0.1.0")["constructor"]
    cfg = get_config("codeformer")
    assert (cfg.dim_embd, cfg.codebook_size, cfg.n_head, cfg.n_layers) == (
        cf["dim_embd"], cf["codebook_size"], cf["n_head"], cf["n_layers"]
    )
    assert list(cfg.connect_list) == cf["connect_list"]
    iq = load_manifest("iqpir_dual_codebook_score_add")["constructor"]
    icfg = get_config("iqpir")
    assert icfg.quantizer == "dual" and iq["quantizer_type"] == "dual_codebook"
    assert icfg.aesthetic_weight == iq["aesthetic_weight"] and icfg.score_cond == iq["score_embedding"]
    vq = load_manifest("codeformer_vqgan_stage1")["constructor"]
    vcfg = get_config("vqgan_stage1")
    assert (vcfg.img_size, vcfg.nf, list(vcfg.ch_mult), vcfg.codebook_size) == (
        vq["img_size"], vq["nf"], vq["ch_mult"], vq["codebook_size"]
    )


def test_cft_tap_positions_are_the_official_block_indices():
    # CodeFormer hard-codes these (fuse_encoder_block / fuse_generator_block); ours derive them
    net = CodeLookupNet(get_config("codeformer", connect_list=("32", "64", "128", "256")))
    assert {str(k): v for k, v in net.encoder.fuse_index.items()} == {
        "512": 2, "256": 5, "128": 8, "64": 11, "32": 14, "16": 18
    }
    assert {str(k): v for k, v in net.generator.fuse_index.items()} == {
        "16": 6, "32": 9, "64": 12, "128": 15, "256": 18, "512": 21
    }


def test_stage1_checkpoint_loads_into_lookup_net():
    man = load_manifest("codeformer_vqgan_stage1")
    sd = seeded_state_dict(man["tensors"], seed=1)
    net = CodeLookupNet("codeformer")
    net.load_stage1(sd)
    assert torch.equal(net.quantize.embedding.weight, sd["quantize.embedding.weight"])
    single = VQAutoEncoder(get_config("tiny_codeformer", arch="vqgan")).state_dict()
    with pytest.raises(ValueError, match="missing.*quantize_aesthetic"):
        CodeLookupNet("tiny").load_stage1(single)
