"""Training configuration: YAML files, ``--set key=value`` overrides, defaults and validation."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from bench.core.errors import UserError

STAGES = ("1", "2", "3", "finetune")

#: every option the trainer knows, with its default; a config may only set these keys
DEFAULTS: dict[str, Any] = {
    "name": "iqp",
    "stage": None,
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "precision": "fp32",  # fp32 | bf16 | fp16 (mixed precision on GPU only)
    "network": {"config": "tiny", "overrides": {}},
    "init": {"vqgan": None, "stage2": None, "net_d": None},
    "data": {},
    "train": {
        "total_iter": 100,
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "betas": [0.9, 0.99],
        "weight_decay": 0.0,
        # constant | cosine (CodeFormer's CosineAnnealingRestartLR, one period) | multistep
        "scheduler": {"type": "constant", "eta_min": 0.0, "milestones": [], "gamma": 0.5},
        "ema_decay": 0.995,
        "grad_clip": None,
        "fp16_init_scale": 65536.0,  # GradScaler's initial loss scale (precision fp16)
        # stage 2/3: modules kept frozen (stage 1 trains everything)
        "fix_modules": ["quantize", "quantize_aesthetic", "generator"],
        # stage 3: CodeFormer's fidelity schedule: rows [until_iter (null = the rest), w, small_per_n]
        # (small degradation with weight w every iteration divisible by small_per_n, otherwise a
        # large-degradation code-only step)
        "w_schedule": [[None, 1.0, 1]],
    },
    "loss": {
        "pixel": 1.0,
        "perceptual": 1.0,
        "codebook": 1.0,
        "feat": 1.0,  # latent L2
        "ce": 0.5,  # cross-entropy per codebook
    },
    "perceptual": {"type": "auto", "net": "vgg"},
    "gan": {
        "enabled": True,
        "start_iter": 30001,  # net_d_start_iter: GAN loss and D updates only after this iteration
        "disc_weight": 0.8,  # multiplies the adaptive weight (stage 1: 0.8; stage 3: scale_adaptive_gan_weight 0.1)
        "max_weight": 1.0,
        "adaptive": True,
        "ndf": 64,
        "n_layers": 4,
    },
    # stage 3 discrete quality optimisation
    "reward": {
        "enabled": True,
        "type": "sharpness",
        "weight": 0.15,
        "start_iter": 0,
        "every": 1,
        "w": 0.0,  # CFT weight of the decoded image the reward sees (0: codes only)
        "condition": "target",  # target (the GT's score, as the reference) | a number (e.g. 0.9)
        "straight_through": "latent",  # latent (paper: lq_feat + (quant - lq_feat).detach()) | softmax
        "options": {},  # extra arguments of the reward (tau, path, name, lo, hi ...)
    },
    "guard": {
        "kl_weight": 1.0,  # weight of KL(p_stage2 || p) on the code distribution
        "target_drift": 0.05,  # code-drift bound the adaptive controller aims under
        "adaptive": True,  # double / halve kl_weight when drift leaves [target/1.5, 1.5 target]
        "max_kl_weight": 100.0,
        "max_drift": 0.15,  # hard bound: a step whose code drift exceeds it gets no reward gradient (null: off)
    },
    # plug-and-play fine-tuning (stage "finetune")
    "finetune": {
        # the base network: a NetConfig name (codeformer, tiny_codeformer ...: a CodeLookupNet) or
        # restoreformer / restoreformer++ (base_kwargs: constructor overrides, e.g. a small test size)
        "base": "tiny_codeformer",
        "base_kwargs": {},
        "weights": None,  # base checkpoint (params_ema / params / bare; RestoreFormer .ckpt); None: random init
        "num_bins": 10,
        "train_transformer": False,
        "vqgan": None,  # optional stage-1 VQGAN for target codes; default: the base's own encoder on GT
        "image_loss": 0.0,  # L1 on the straight-through decoded output (gradient into the embedding)
    },
    "checkpoint": {"every": 1000, "keep": 2},
    "log": {"every": 10, "tensorboard": False},
    # held-out evaluation during training (stage 3: reward and code drift)
    # (score / w: the condition and CFT weight outputs are evaluated at; 0.9 is IQP's inference score)
    "eval": {"root": None, "every": 0, "max_images": 16, "degradation": None, "seed": 1234, "score": 0.9, "w": 0.0,
             "scores": None},
}

_FREE_FORM = {("network", "overrides"), ("reward", "options"), ("data",), ("finetune", "base_kwargs")}


def _merge(base: dict[str, Any], update: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        here = path + (key,)
        if path not in _FREE_FORM and here not in _FREE_FORM and key not in base:
            where = ".".join(path) or "top level"
            raise UserError(f"unknown config key {'.'.join(here)!r} ({where} knows: {', '.join(sorted(base))})")
        if isinstance(value, dict) and isinstance(base.get(key), dict) and here not in _FREE_FORM:
            out[key] = _merge(base[key], value, here)
        else:
            out[key] = copy.deepcopy(value)
    return out


# one parser of values for the whole project (``1e-4`` reads as a float)
from bench.core.options import parse_value, read_yaml_file  # noqa: E402


def apply_set(cfg: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` assignments (dotted paths) to a config dict."""
    cfg = copy.deepcopy(cfg)
    for item in assignments:
        if "=" not in item:
            raise UserError(f"--set {item!r}: use KEY=VALUE, e.g. --set train.total_iter=100")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = parse_value(value)
    return cfg


def load_config(path: str | os.PathLike[str] | None, assignments: list[str] | None = None) -> dict[str, Any]:
    """Read a YAML config (``_base_: other.yaml`` chains allowed), apply overrides, merge defaults."""
    raw = read_yaml(path) if path else {}
    raw = apply_set(raw, assignments or [])
    return resolve(raw)


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping, following ``_base_`` (relative to the file) for shared settings."""
    p = Path(path)
    data = read_yaml_file(p, "config") or {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: a training config is a YAML mapping (key: value)")
    base = data.pop("_base_", None)
    if base:
        parent = read_yaml((p.parent / base) if not Path(base).is_absolute() else base)
        data = _deep_update(parent, data)
    return data


def _deep_update(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def resolve(raw: dict[str, Any]) -> dict[str, Any]:
    """Defaults + the given settings, validated."""
    cfg = _merge(DEFAULTS, raw)
    stage = cfg["stage"]
    if stage is None or str(stage) not in STAGES:
        raise UserError(f"config 'stage' must be one of {', '.join(STAGES)} (got {stage!r})")
    cfg["stage"] = str(stage)
    if cfg["precision"] not in ("fp32", "bf16", "fp16"):
        raise UserError(f"precision {cfg['precision']!r}: use fp32, bf16 or fp16")
    if isinstance(cfg["network"], str):
        cfg["network"] = {"config": cfg["network"], "overrides": {}}
    t = cfg["train"]
    if int(t["total_iter"]) < 1:
        raise UserError("train.total_iter must be at least 1")
    if cfg["stage"] in ("2", "3") and not cfg["init"]["vqgan"]:
        raise UserError(f"stage {cfg['stage']} needs init.vqgan: the stage-1 checkpoint (net_g_latest.pth)")
    if cfg["stage"] == "3" and not cfg["init"]["stage2"]:
        raise UserError("stage 3 needs init.stage2: the stage-2 checkpoint (net_g_latest.pth)")
    return cfg
