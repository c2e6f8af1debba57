"""Dataclass configurations of the CodeFormer-family networks (CodeFormer, IQPIR, stage-1 VQGAN, tiny).

One ``NetConfig`` describes the VQ autoencoder (encoder, codebook(s), generator) and, for the
code-lookup networks, the Transformer, the quality conditioning and the CFT fuse blocks. The
full-size presets build exactly the tensors of the released checkpoints (see
tests/fixtures/manifests/); ``tiny`` is a few-hundred-thousand-parameter model for tests and CPU
training.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: quantizer kinds: one nearest-neighbour codebook, or the IQP common + HQ ("aesthetic") pair
QUANTIZERS = ("nearest", "dual")
#: score conditioning of the Transformer input: none, the released additive binned embedding
#: (one table, or one table per IQA model), or AdaLN modulation of every Transformer layer
SCORE_CONDS = ("none", "add", "add_multi", "adaln")


@dataclass(frozen=True)
class NetConfig:
    """Every constructor argument of the VQ autoencoder and the code-lookup network."""

    name: str = "codeformer"
    #: "lookup" builds a CodeLookupNet (stage 2/3), "vqgan" a VQAutoEncoder (stage 1)
    arch: str = "lookup"
    # --- VQ autoencoder (stage 1) ---
    img_size: int = 512
    in_channels: int = 3
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    codebook_size: int = 1024
    emb_dim: int = 256
    beta: float = 0.25
    norm_groups: int = 32
    norm_eps: float = 1e-6
    quantizer: str = "nearest"
    #: dual codebook: decoder input is ``common + aesthetic_weight * hq``
    aesthetic_weight: float = 0.5
    #: dual codebook, stage 1: the HQ branch learns only from samples whose score exceeds this
    aesthetic_threshold: float = 0.7
    # --- code lookup (stage 2/3); ignored by VQAutoEncoder ---
    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    dim_mlp: int = 1024
    #: feature sizes (as strings, like the checkpoints' ModuleDict keys) that get a CFT block
    connect_list: tuple[str, ...] = ("32", "64", "128", "256")
    score_cond: str = "none"
    #: bins of the additive score embedding (``floor(score * bins)``)
    score_bins: int = 10
    #: multi-IQA variant: one embedding table per IQA model, with this many bins each (with
    #: ``adaln``, its length is the number of scores per image; empty means one)
    score_bins_list: tuple[int, ...] = ()
    #: AdaLN: width of the score embedding that drives the modulation
    adaln_cond_dim: int = 256
    #: AdaLN: residual gate is ``gate_offset + g`` with g zero-initialised; 0.0 is DiT's
    #: AdaLN-Zero (each block starts as the identity), 1.0 keeps a pretrained Transformer's
    #: function at initialisation (plug-and-play fine-tuning)
    adaln_gate_offset: float = 0.0
    #: the released IQPIR forward writes ``quant = lq + (quant - lq).detach()`` (straight-through);
    #: CodeFormer's does not. Same values up to float rounding, so kept for exact parity.
    straight_through: bool = False
    #: True: the reference's exact float ops (swish as ``x * sigmoid(x)``, attention through
    #: nn.MultiheadAttention's explicit-weights path), bit-identical to the official code on CPU.
    #: False: fused SiLU and scaled-dot-product attention kernels (faster on GPU; outputs differ
    #: by float rounding only, about 1e-4 of the [-1, 1] range at full size)
    exact_ops: bool = True

    def __post_init__(self) -> None:
        if self.arch not in ("lookup", "vqgan"):
            raise ValueError(f"NetConfig.arch must be 'lookup' or 'vqgan', got {self.arch!r}")
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"NetConfig.quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}")
        if self.score_cond not in SCORE_CONDS:
            raise ValueError(f"NetConfig.score_cond must be one of {SCORE_CONDS}, got {self.score_cond!r}")
        if self.score_cond == "add_multi" and not self.score_bins_list:
            raise ValueError("NetConfig.score_cond='add_multi' needs score_bins_list (bins per IQA model)")
        if self.img_size % self.downsample_factor:
            raise ValueError(f"NetConfig.img_size {self.img_size} is not a multiple of {self.downsample_factor}")
        for s in self.connect_list:
            if int(s) not in self.resolutions or int(s) == self.img_size:
                raise ValueError(
                    f"NetConfig.connect_list entry {s!r} is not an inner feature size of this network "
                    f"(sizes {self.resolutions[1:]})"
                )
        for c in set(self.channels.values()) | {2 * self.channels[int(s)] for s in self.connect_list}:
            if c % self.norm_groups:
                raise ValueError(f"NetConfig: {c} channels are not divisible by norm_groups={self.norm_groups}")
        if self.dim_embd % self.n_head:
            raise ValueError(f"NetConfig.dim_embd {self.dim_embd} is not divisible by n_head {self.n_head}")

    # --- derived sizes ---
    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_res(self) -> int:
        """Side of the quantized latent (16 for a 512 input)."""
        return self.img_size // self.downsample_factor

    @property
    def latent_size(self) -> int:
        """Number of latent tokens (position embedding rows)."""
        return self.latent_res**2

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Feature side at each level, from the input down to the latent."""
        return tuple(self.img_size // 2**i for i in range(len(self.ch_mult)))

    @property
    def channels(self) -> dict[int, int]:
        """Feature channels at each feature side (``{512: 64, 256: 128, ..., 16: 512}`` full size)."""
        return {r: self.nf * m for r, m in zip(self.resolutions, self.ch_mult)}

    @property
    def n_codebooks(self) -> int:
        return 2 if self.quantizer == "dual" else 1

    def replace(self, **changes) -> NetConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


CODEFORMER = NetConfig(name="codeformer")
#: IQPIR as its inference_codeformer.py builds it: dual codebook, additive score embedding
IQPIR = NetConfig(name="iqpir", quantizer="dual", score_cond="add", aesthetic_weight=0.5, straight_through=True)
#: multi-IQA variant: one 20-bin table per IQA model (TOPIQ-face, MUSIQ-GFIQA, Q-Align)
IQPIR_MULTI = IQPIR.replace(name="iqpir_multi", score_cond="add_multi", score_bins_list=(20, 20, 20))
#: IQPIR backbone with AdaLN score conditioning instead of the additive embedding
IQPIR_ADALN = IQPIR.replace(name="iqpir_adaln", score_cond="adaln")
#: CodeFormer's stage-1 VQGAN (vqgan_code1024.pth)
VQGAN_STAGE1 = NetConfig(name="vqgan_stage1", arch="vqgan")
#: IQP stage-1 VQGAN with the dual codebook (stage-1 fusion weight 0.8, threshold 0.70)
VQGAN_STAGE1_DUAL = NetConfig(
    name="vqgan_stage1_dual", arch="vqgan", quantizer="dual", aesthetic_weight=0.8, aesthetic_threshold=0.7
)
#: a small IQPIR-shaped network at 64x64 (8x8 latent) for tests and CPU training
TINY = NetConfig(
    name="tiny",
    img_size=64,
    nf=8,
    ch_mult=(1, 2, 2, 4),
    attn_resolutions=(8,),
    codebook_size=64,
    emb_dim=32,
    norm_groups=4,
    quantizer="dual",
    score_cond="add",
    straight_through=True,
    dim_embd=64,
    n_head=4,
    n_layers=2,
    dim_mlp=128,
    connect_list=("16", "32"),
)
#: tiny with a single codebook and no score (a tiny CodeFormer)
TINY_CODEFORMER = TINY.replace(name="tiny_codeformer", quantizer="nearest", score_cond="none", straight_through=False)
#: stage-1 dual-codebook VQGAN matching ``tiny`` (same encoder, codebooks and generator)
TINY_VQGAN = TINY.replace(name="tiny_vqgan", arch="vqgan", aesthetic_weight=0.8, score_cond="none")

CONFIGS: dict[str, NetConfig] = {
    c.name: c
    for c in (
        CODEFORMER, IQPIR, IQPIR_MULTI, IQPIR_ADALN, VQGAN_STAGE1, VQGAN_STAGE1_DUAL, TINY, TINY_CODEFORMER, TINY_VQGAN
    )
}
_ALIASES = {"iqp": "iqpir", "iqp-bfr": "iqpir", "vqgan": "vqgan_stage1"}


def get_config(name: str, **overrides) -> NetConfig:
    """The named preset (``codeformer``, ``iqpir``, ``vqgan_stage1``, ``tiny`` ...), with overrides."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in CONFIGS:
        raise KeyError(f"unknown network config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    cfg = CONFIGS[key]
    return cfg.replace(**overrides) if overrides else cfg


def config_from_dict(d: dict) -> NetConfig:
    """A NetConfig from ``dataclasses.asdict`` output (e.g. a trainer export's ``net_config``)."""
    names = {f.name for f in dataclasses.fields(NetConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"net_config has unknown fields {unknown}; it was written by a newer bfrbench?")
    return NetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
