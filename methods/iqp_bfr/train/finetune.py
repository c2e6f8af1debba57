"""Plug-and-play fine-tuning: train only IQP's score embedding bolted onto an existing network.

The base (a CodeFormer-style :class:`CodeLookupNet`, or RestoreFormer / RestoreFormer++) is
wrapped in :class:`methods.quality_conditioning.QualityConditioned` and frozen; only the
zero-initialised score embedding (and, with ``finetune.train_transformer``, the Transformer of
a code-lookup base) learns. Losses:

- code-lookup base: cross-entropy to the GT codes + latent L2 (CodeFormer's stage-II losses),
  the GT codes coming from a stage-1 VQGAN (``finetune.vqgan``) or, without one, from the base's
  own encoder on the GT face; optionally L1 on the decoded output through the straight-through
  lookup (``finetune.image_loss``);
- RestoreFormer(++): L1 + perceptual on the output, the gradient reaching the embedding through
  a straight-through quantizer.

The score condition is each GT's quality score, so the embedding learns what distinguishes
high- from low-quality targets. The run writes ``embedding.pth`` (for the ``+iqp`` methods)
beside the usual checkpoints.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.core.errors import UserError
from methods.iqp_bfr.train import losses as L
from methods.iqp_bfr.train.monitor import CodebookUsage
from methods.iqp_bfr.train.stages import Precision, Stage, build_teacher, code_targets, load_net_checkpoint

LOOKUP_TRANSFORMER = ("ft_layers", "idx_pred_layer", "feat_emb", "position_emb")


def resolve_weights(value: str | None) -> str | None:
    """A checkpoint path, or the managed file of a registered weights name (``codeformer``, ``vqgan-code1024``)."""
    if not value:
        return None
    from pathlib import Path

    from bench import weights as W

    if value in W.WEIGHTS and not Path(value).exists():
        return str(W.resolve(value))
    if not Path(value).is_file():
        raise UserError(f"{value}: no such checkpoint (give a path or a registered weights name)")
    return value


def build_base(name: str, weights: str | None, kwargs: dict[str, Any] | None = None) -> tuple[nn.Module, str]:
    """(base network, kind) for a finetune ``base`` name: ``lookup`` or ``restoreformer``."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in (kwargs or {}).items()}
    weights = resolve_weights(weights)
    if name.lower() in ("restoreformer", "restoreformer++"):
        from methods.restoreformer.arch import VQVAEGANMultiHeadTransformer
        from methods.restoreformer.method import VARIANTS, extract_restoreformer_state

        net = VQVAEGANMultiHeadTransformer(**{**VARIANTS[name.lower()], **kwargs})
        if weights:
            state, _ = extract_restoreformer_state(torch.load(weights, map_location="cpu", weights_only=True), weights)
            net.load_state_dict(state, strict=True)
        return net, "restoreformer"
    from methods.codeformer_arch.config import get_config
    from methods.codeformer_arch.network import CodeLookupNet

    try:
        cfg = get_config(name, **kwargs)
    except KeyError as exc:
        raise UserError(f"finetune.base {name!r}: {exc}") from exc
    if cfg.score_cond != "none":
        raise UserError(f"finetune.base {name!r} is already quality-conditioned; plug-and-play wraps an unconditioned network")
    net = CodeLookupNet(cfg)
    if weights:
        sd, _ = load_net_checkpoint(weights)
        net.load_state_dict(sd, strict=True)
    return net, "lookup"


class FineTune(Stage):
    """Score embedding (+ optionally the Transformer) trained on a frozen base network."""

    export_name = "embedding.pth"
    needs_scores = True  # type: ignore[assignment]

    def __init__(self, cfg: dict[str, Any], device: torch.device, precision: Precision) -> None:
        super().__init__(cfg, device, precision)
        from methods.quality_conditioning import QualityConditioned

        f = cfg["finetune"]
        base, self.kind = build_base(str(f["base"]), f.get("weights"), f.get("base_kwargs"))
        self.net_config = getattr(base, "config", None)
        base.requires_grad_(False)
        size = int(cfg["data"].get("size", 512))
        self.net_g = QualityConditioned(base, num_bins=int(f["num_bins"]), input_size=size).to(device)
        self.tuned_base: list[str] = []
        if f["train_transformer"]:
            if self.kind != "lookup":
                raise UserError("finetune.train_transformer needs a code-lookup base (CodeFormer); RestoreFormer has none")
            for name, p in base.named_parameters():
                if name.split(".")[0] in LOOKUP_TRANSFORMER:
                    p.requires_grad_(True)
                    self.tuned_base.append(name)
        self.net_g.eval()  # frozen layers keep inference behaviour (no dropout / norm statistics updates)
        self.net_g.training = True  # ... while the wrapper itself trains (straight-through quantizer)
        vqgan = resolve_weights(f.get("vqgan"))
        self.teacher = build_teacher(vqgan, self.net_config, device)[0] if vqgan else None
        self.perceptual = L.Perceptual(cfg["perceptual"]["type"], cfg["perceptual"]["net"]).to(device) if self.kind == "restoreformer" else None
        self.add_optimizer("g", [p for p in self.net_g.parameters() if p.requires_grad], float(cfg["train"]["lr_g"]))
        self.ema = None  # the frozen base needs no average; the embedding is exported as trained
        self.w = {k: float(v) for k, v in cfg["loss"].items()}
        self.usage = CodebookUsage(getattr(self.net_config, "codebook_size", 1024))

    # targets -----------------------------------------------------------------------------------
    @torch.no_grad()
    def targets(self, gt: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """GT codes and GT quantized latent: the stage-1 teacher's, or the base's own encoder + codebook."""
        base = self.net_g.base
        if self.teacher is not None:
            idx = self.teacher.code_indices(gt)
        else:
            z, _ = base.encode(gt)  # no score set: the hook adds nothing
            idx, _ = base.quantize.nearest(z)
        return code_targets(idx), base.lookup(idx)

    def step(self, it: int, batch: dict[str, Any]) -> dict[str, float]:
        gt, lq, score = (batch[k].to(self.device) for k in ("gt", "lq", "score"))
        log: dict[str, float] = {}
        with self.prec.autocast():
            if self.kind == "lookup":
                tgt, quant_gt = self.targets(gt)
                image_w = float(self.cfg["finetune"]["image_loss"])
                if image_w > 0:
                    out, logits, lq_feat = self.net_g(lq, score=score, w=0.0, detach_16=False)
                else:
                    out, (_, logits, lq_feat) = None, self.net_g(lq, score=score, w=0.0, return_logits=True)
                l_feat = L.latent_l2(lq_feat.float(), quant_gt) * self.w["feat"]
                ce = L.code_cross_entropy(logits, tgt)
                loss = l_feat + self.w["ce"] * sum(ce.values())
                log.update({"l_feat": float(l_feat.detach()), **{k: float(v.detach()) for k, v in ce.items()}})
                log.update(L.code_accuracy(logits.detach(), tgt))
                self.usage.add("pred_common", L.split_logits(logits.detach())["common"].argmax(-1))
                if out is not None:
                    l_img = L.l1_loss(out.float(), gt) * image_w
                    loss = loss + l_img
                    log["l_image"] = float(l_img.detach())
            else:
                out = self.net_g(lq, score=score)
                l_pix = L.l1_loss(out.float(), gt) * self.w["pixel"]
                l_per = self.perceptual(out, gt) * self.w["perceptual"]
                loss = l_pix + l_per
                log.update({"l_pix": float(l_pix.detach()), "l_percep": float(l_per.detach())})
        self.optimize("g", loss)
        log["embed_norm"] = float(self.net_g.score_embed.weight.detach().norm())
        return log

    def log_summary(self) -> dict[str, float]:
        return self.usage.summary()

    def export(self) -> dict[str, Any]:
        return {**self.net_g.embedding_state(self.tuned_base), "stage": "finetune", "base": str(self.cfg["finetune"]["base"])}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        # the frozen base is rebuilt from its checkpoint: save only what trains
        trained = {"score_embed.weight"} | {f"base.{n}" for n in self.tuned_base}
        state["modules"] = {"net_g": {k: v for k, v in self.net_g.state_dict().items() if k in trained}}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net_g.load_state_dict(state["modules"]["net_g"], strict=False)
        rest = {**state, "modules": {}}
        super().load_state_dict(rest)

    @torch.no_grad()
    def evaluate(self, batch: dict[str, Any]) -> dict[str, float]:
        if self.kind != "lookup":
            return {}
        gt, lq = batch["gt"].to(self.device), batch["lq"].to(self.device)
        tgt, _ = self.targets(gt)
        _, logits, _ = self.net_g(lq, score=batch["score"].to(self.device), w=0.0, return_logits=True)
        return L.code_accuracy(logits, tgt)
