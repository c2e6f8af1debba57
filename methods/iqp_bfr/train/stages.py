"""Stage 1 (dual-codebook VQGAN) and stage 2 (quality-conditioned code lookup), plus the shared base.

A stage owns its networks, optimizers, gradient scalers and EMA; :class:`~methods.iqp_bfr.train.trainer.Trainer`
runs the loop, schedules the learning rate, checkpoints and logs. Every stage's state is a
dict of tensors, so a checkpoint loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import torch
from torch import nn

from bench.core.device import DTYPES
from bench.core.errors import UserError
from methods.iqp_bfr.train import losses as L
from methods.iqp_bfr.train.discriminator import PatchDiscriminator
from methods.iqp_bfr.train.ema import ModelEMA
from methods.iqp_bfr.train.monitor import CodebookUsage


# -- precision ---------------------------------------------------------------------------
class Precision:
    """Autocast and gradient scaling: bf16 / fp16 autocast (GradScaler for fp16) or plain fp32.

    Meant for GPUs; it also runs on CPU (slower than fp32 there), which is how the tests exercise it.
    """

    def __init__(self, precision: str, device: torch.device, init_scale: float = 65536.0) -> None:
        self.name = precision
        self.device = device
        self.init_scale = float(init_scale)
        self.dtype = None if self.name == "fp32" else DTYPES.get(self.name)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device.type, init_scale=self.init_scale, enabled=self.name == "fp16")


# -- checkpoints of networks ----------------------------------------------------------------
def net_config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def net_config_from_dict(d: dict[str, Any]) -> Any:
    from methods.codeformer_arch.config import config_from_dict

    return config_from_dict(d)


def build_net_config(section: dict[str, Any]) -> Any:
    """The ``network:`` section -> NetConfig (preset name + overrides)."""
    from methods.codeformer_arch.config import get_config

    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in (section.get("overrides") or {}).items()}
    try:
        return get_config(section["config"], **overrides)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"network config: {exc}") from exc


def load_net_checkpoint(path: str, key: str = "params_ema") -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """(state dict, saved NetConfig dict or None) from a trainer export or a release checkpoint."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a checkpoint dict")
    cfg = obj.get("net_config")
    for k in (key, "params_ema", "params"):
        if k in obj and isinstance(obj[k], dict):
            return obj[k], cfg
    return obj, cfg


# -- the stage base ----------------------------------------------------------------------------
class Stage:
    """Networks, optimizers, scalers and EMA of one training stage."""

    #: names of the networks (attributes) saved in the training state
    module_names: tuple[str, ...] = ("net_g",)
    #: file name of :meth:`export` in the output folder
    export_name: str = "net_g_latest.pth"

    def __init__(self, cfg: dict[str, Any], device: torch.device, precision: Precision) -> None:
        self.cfg, self.device, self.prec = cfg, device, precision
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.base_lr: dict[str, float] = {}
        self.ema: ModelEMA | None = None
        self.net_config: Any = None

    # optimizers -------------------------------------------------------------------------------
    def add_optimizer(self, name: str, params: list[nn.Parameter], lr: float) -> None:
        t = self.cfg["train"]
        if not params:
            raise UserError(f"optimizer {name}: no trainable parameters (check train.fix_modules)")
        self.optimizers[name] = torch.optim.Adam(params, lr=lr, betas=tuple(t["betas"]), weight_decay=float(t["weight_decay"]))
        self.scalers[name] = self.prec.scaler()
        self.base_lr[name] = lr

    def optimize(self, name: str, loss: torch.Tensor, drop_grads: tuple[nn.Parameter, ...] = ()) -> None:
        """Backward (scaled for fp16), optionally clip, step. ``drop_grads``: params left untouched this step."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        for p in drop_grads:
            p.grad = None  # Adam skips parameters without a gradient: no update, no moment change
        clip = self.cfg["train"]["grad_clip"]
        if clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"] if p.grad is not None], clip)
        scaler.step(opt)
        scaler.update()

    def set_lr(self, schedule: Any) -> None:
        """Set every optimizer's rate to ``schedule(base_lr)``."""
        for name, opt in self.optimizers.items():
            for g in opt.param_groups:
                g["lr"] = schedule(self.base_lr[name])

    def current_lr(self) -> dict[str, float]:
        """Learning rates (and fp16 loss scales) for the log."""
        out = {f"lr_{n}": o.param_groups[0]["lr"] for n, o in self.optimizers.items()}
        out.update({f"loss_scale_{n}": s.get_scale() for n, s in self.scalers.items() if s.is_enabled()})
        return out

    # state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {n: getattr(self, n).state_dict() for n in self.module_names if getattr(self, n, None) is not None},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
            "ema": self.ema.state_dict() if self.ema else {},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for n, sd in state["modules"].items():
            getattr(self, n).load_state_dict(sd, strict=True)
        for n, sd in state["optimizers"].items():
            self.optimizers[n].load_state_dict(sd)
        for n, sd in state["scalers"].items():
            if sd:
                self.scalers[n].load_state_dict(sd)
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.load_extra_state(state.get("extra", {}))

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def export(self) -> dict[str, Any]:
        """The release-style checkpoint: params, params_ema, the NetConfig and the stage."""
        out: dict[str, Any] = {"params": self.net_g.state_dict()}
        # without EMA the trained weights are also the inference weights (loaders read params_ema)
        out["params_ema"] = self.ema.state_dict() if self.ema else out["params"]
        if self.net_config is not None:
            out["net_config"] = net_config_to_dict(self.net_config)
        out["stage"] = self.cfg["stage"]
        if getattr(self, "net_d", None) is not None:
            out["params_d"] = self.net_d.state_dict()
        return out

    # hooks ------------------------------------------------------------------------------------
    @property
    def needs_scores(self) -> bool:
        """Whether training uses a quality score per image (dual codebook gate or score condition)."""
        net = self.net_g
        return bool(getattr(net, "n_scores", 0)) or bool(getattr(net, "is_dual", False) and self.cfg["stage"] == "1")

    def step(self, it: int, batch: dict[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    def log_summary(self) -> dict[str, float]:
        """Window statistics (codebook usage ...) added to a log row."""
        return {}

    @torch.no_grad()
    def evaluate(self, batch: dict[str, Any]) -> dict[str, float]:
        """Held-out figures for one batch (means)."""
        return {}

    def update_ema(self) -> None:
        if self.ema:
            self.ema.update(self.net_g)

    def make_ema(self) -> None:
        decay = float(self.cfg["train"]["ema_decay"])
        self.ema = ModelEMA(self.net_g, decay) if decay > 0 else None

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def freeze_modules(net: nn.Module, names: list[str]) -> None:
    """requires_grad False for the named submodules that exist on ``net``."""
    for name in names:
        mod = getattr(net, name, None)
        if isinstance(mod, nn.Module):
            for p in mod.parameters():
                p.requires_grad_(False)


def trainable(net: nn.Module) -> list[nn.Parameter]:
    return [p for p in net.parameters() if p.requires_grad]


def gan_setup(stage: Stage) -> None:
    """The PatchGAN discriminator and its optimizer when ``gan.enabled``."""
    g = stage.cfg["gan"]
    stage.net_d = None
    if g["enabled"]:
        stage.net_d = PatchDiscriminator(3, int(g["ndf"]), int(g["n_layers"])).to(stage.device)
        if stage.cfg["init"].get("net_d"):
            sd, _ = load_net_checkpoint(stage.cfg["init"]["net_d"], key="params_d")
            stage.net_d.load_state_dict(sd, strict=True)
        stage.add_optimizer("d", list(stage.net_d.parameters()), float(stage.cfg["train"]["lr_d"]))


def gan_generator_term(
    stage: Stage, it: int, out: torch.Tensor, recon: torch.Tensor, last_layer: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Adaptive-weighted hinge generator loss once ``it > gan.start_iter`` (else zero)."""
    g = stage.cfg["gan"]
    if stage.net_d is None or it <= int(g["start_iter"]):
        return out.new_zeros(()), {}
    for p in stage.net_d.parameters():
        p.requires_grad_(False)
    l_gan = L.hinge_g_loss(stage.net_d(out))
    if g["adaptive"] and recon.requires_grad:
        d_weight = L.adaptive_gan_weight(recon, l_gan, last_layer, float(g["max_weight"]))
    else:
        d_weight = out.new_tensor(1.0)
    d_weight = d_weight * float(g["disc_weight"])
    return d_weight * l_gan, {"l_g_gan": float((d_weight * l_gan).detach()), "d_weight": float(d_weight)}


def gan_discriminator_step(stage: Stage, it: int, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """One hinge update of the discriminator once ``it > gan.start_iter``."""
    if stage.net_d is None or it <= int(stage.cfg["gan"]["start_iter"]):
        return {}
    for p in stage.net_d.parameters():
        p.requires_grad_(True)
    with stage.prec.autocast():
        l_real, l_fake = L.hinge_d_loss(stage.net_d(real), stage.net_d(fake.detach()))
    stage.optimize("d", l_real + l_fake)
    return {"l_d_real": float(l_real.detach()), "l_d_fake": float(l_fake.detach())}


def code_targets(indices: torch.Tensor) -> dict[str, torch.Tensor]:
    """VQAutoEncoder.code_indices output -> {"common": (B, L)[, "hq": (B, L)]}."""
    if indices.ndim == 3:
        return {"hq": indices[..., 0], "common": indices[..., 1]}
    return {"common": indices}


# -- stage 1 ------------------------------------------------------------------------------
class Stage1(Stage):
    """Dual-codebook VQGAN: L1 + perceptual + hinge GAN (adaptive weight) + codebook losses, EMA.

    The HQ codebook learns only from samples whose score exceeds ``aesthetic_threshold``: the
    network zeroes its quantized output and loss elsewhere, and a batch with no such sample
    leaves the HQ codebook's weights and Adam moments untouched.
    """

    module_names = ("net_g", "net_d")

    def __init__(self, cfg: dict[str, Any], device: torch.device, precision: Precision) -> None:
        super().__init__(cfg, device, precision)
        from methods.codeformer_arch.network import VQAutoEncoder

        self.net_config = build_net_config(cfg["network"])
        self.net_g = VQAutoEncoder(self.net_config).to(device).train()
        if cfg["init"].get("vqgan"):
            sd, _ = load_net_checkpoint(cfg["init"]["vqgan"])
            self.net_g.load_state_dict(sd, strict=True)
        self.perceptual = L.Perceptual(cfg["perceptual"]["type"], cfg["perceptual"]["net"]).to(device)
        self.add_optimizer("g", trainable(self.net_g), float(cfg["train"]["lr_g"]))
        gan_setup(self)
        self.make_ema()
        self.usage = CodebookUsage(self.net_config.codebook_size)
        self.w = {k: float(v) for k, v in cfg["loss"].items()}

    @property
    def hq_codebook(self) -> nn.Parameter | None:
        q = getattr(self.net_g, "quantize_aesthetic", None)
        return None if q is None else q.embedding.weight

    def step(self, it: int, batch: dict[str, Any]) -> dict[str, float]:
        gt = batch["gt"].to(self.device)
        score = batch["score"].to(self.device)
        with self.prec.autocast():
            recon, l_cb, stats = self.net_g(gt, score=score if self.net_g.is_dual else None)
            l_pix = L.l1_loss(recon.float(), gt) * self.w["pixel"]
            l_per = self.perceptual(recon, gt) * self.w["perceptual"]
            l_rec = l_pix + l_per
            l_gan, gan_log = gan_generator_term(self, it, recon, l_rec, self.net_g.generator.blocks[-1].weight)
            l_total = l_rec + l_gan + l_cb * self.w["codebook"]
        gate = stats.get("gate")
        drop = ()
        if gate is not None and not bool(gate.any()) and self.hq_codebook is not None:
            drop = (self.hq_codebook,)
        self.optimize("g", l_total, drop_grads=drop)
        log = {"l_pix": float(l_pix.detach()), "l_percep": float(l_per.detach()), "l_codebook": float(l_cb.detach()), **gan_log}
        log.update(gan_discriminator_step(self, it, gt, recon))
        self.usage.add("common", stats["indices"])
        if gate is not None:
            log["gate_frac"] = float(gate.float().mean())
            self.usage.add("hq", stats["aesthetic"]["indices"][gate])
        self.update_ema()
        return log

    def log_summary(self) -> dict[str, float]:
        return self.usage.summary()

    @torch.no_grad()
    def evaluate(self, batch: dict[str, Any]) -> dict[str, float]:
        net = self.ema.module if self.ema else self.net_g
        gt = batch["gt"].to(self.device)
        recon, _, _ = net(gt, score=batch["score"].to(self.device) if net.is_dual else None)
        return {"l1": float((recon.clamp(-1, 1) - gt).abs().mean())}


# -- stage 2 ------------------------------------------------------------------------------
def build_teacher(path: str, fallback_config: Any, device: torch.device) -> tuple[Any, dict[str, torch.Tensor]]:
    """The frozen stage-1 VQAutoEncoder whose encoder gives the GT codes (and its state dict)."""
    from methods.codeformer_arch.network import VQAutoEncoder

    sd, saved = load_net_checkpoint(path)
    vq_cfg = net_config_from_dict(saved) if saved else fallback_config
    teacher = VQAutoEncoder(vq_cfg)
    try:
        teacher.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: not a stage-1 VQGAN of network {vq_cfg.name} ({str(exc).splitlines()[0]})") from exc
    teacher.eval().requires_grad_(False)
    return teacher.to(device), sd


def build_lookup_from_vqgan(cfg: dict[str, Any], device: torch.device) -> tuple[Any, Any, Any]:
    """(CodeLookupNet with the stage-1 weights, frozen stage-1 VQAutoEncoder for targets, NetConfig)."""
    from methods.codeformer_arch.network import CodeLookupNet

    net_config = build_net_config(cfg["network"])
    teacher, sd = build_teacher(cfg["init"]["vqgan"], net_config, device)
    net_g = CodeLookupNet(net_config)
    try:
        net_g.load_stage1(sd)
    except ValueError as exc:
        raise UserError(f"{cfg['init']['vqgan']}: {exc}") from exc
    return net_g.to(device), teacher, net_config


class Stage2(Stage):
    """Code lookup: codebooks + decoder frozen; CE per codebook + latent L2; score added to the LQ latent."""

    def __init__(self, cfg: dict[str, Any], device: torch.device, precision: Precision) -> None:
        super().__init__(cfg, device, precision)
        self.net_g, self.teacher, self.net_config = build_lookup_from_vqgan(cfg, device)
        freeze_modules(self.net_g, list(cfg["train"]["fix_modules"]) + ["fuse_convs_dict"])
        self.net_g.train()
        self.add_optimizer("g", trainable(self.net_g), float(cfg["train"]["lr_g"]))
        self.make_ema()
        self.usage = CodebookUsage(self.net_config.codebook_size)
        self.w = {k: float(v) for k, v in cfg["loss"].items()}

    def conditioned(self, net: Any) -> bool:
        return net.n_scores > 0

    def targets(self, gt: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """GT code indices per codebook and the GT quantized latent (the frozen stage-1 encoder's)."""
        with torch.no_grad():
            idx = self.teacher.code_indices(gt)
            return code_targets(idx), self.net_g.lookup(idx)

    def step(self, it: int, batch: dict[str, Any]) -> dict[str, float]:
        gt, lq = batch["gt"].to(self.device), batch["lq"].to(self.device)
        score = batch["score"].to(self.device) if self.conditioned(self.net_g) else None
        tgt, quant_gt = self.targets(gt)
        with self.prec.autocast():
            _, logits, lq_feat = self.net_g(lq, w=0.0, score=score, return_logits=True)
            l_feat = L.latent_l2(lq_feat.float(), quant_gt) * self.w["feat"]
            ce = L.code_cross_entropy(logits, tgt)
            l_total = l_feat + self.w["ce"] * sum(ce.values())
        self.optimize("g", l_total)
        self.update_ema()
        log = {"l_feat": float(l_feat.detach()), **{k: float(v.detach()) for k, v in ce.items()}, **L.code_accuracy(logits, tgt)}
        for name, lg in L.split_logits(logits.detach()).items():
            self.usage.add(f"pred_{name}", lg.argmax(-1))
        return log

    def log_summary(self) -> dict[str, float]:
        return self.usage.summary()

    @torch.no_grad()
    def evaluate(self, batch: dict[str, Any]) -> dict[str, float]:
        net = self.ema.module if self.ema else self.net_g
        gt, lq = batch["gt"].to(self.device), batch["lq"].to(self.device)
        tgt, _ = self.targets(gt)
        score = batch["score"].to(self.device) if self.conditioned(net) else None
        _, logits, _ = net(lq, w=0.0, score=score, return_logits=True)
        return L.code_accuracy(logits, tgt)
