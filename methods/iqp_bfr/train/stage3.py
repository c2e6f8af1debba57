"""Stage 3: CodeFormer's CFT training plus IQP's discrete quality optimisation, with a measured guard.

CodeFormer part (``CodeFormerJointModel``): codebooks and decoder frozen; small degradations
decoded with the CFT fidelity weight w (L1 + perceptual + adaptive hinge GAN on the last CFT
layer), large degradations as code-only steps (CE + latent L2), following ``train.w_schedule``.

IQP part: the predicted codes are looked up in the frozen codebook(s) and decoded by the frozen
generator through a straight-through estimator, ``quant = lq_feat + (quant - lq_feat).detach()``
(or, with ``reward.straight_through: softmax``, through the softmax-expected codebook vector, so
the Transformer gets the gradient too). A differentiable NR-IQA reward on that image trains the
encoder / Transformer while the output stays made of codebook entries.

Guard against reward over-optimisation: KL(p_stage2 || p) between the code distributions of the
frozen stage-2 model and the one being trained, on the same input and condition, with weight
``guard.kl_weight``. ``code_drift`` (fraction of tokens whose argmax code differs from stage 2's)
is measured every reward step; with ``guard.adaptive`` the KL weight doubles while drift exceeds
1.5 x ``guard.target_drift`` and halves below target / 1.5 (the PPO adaptive-KL rule), and on a
step whose drift exceeds ``guard.max_drift`` the reward is switched off (only the anchor acts).
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from bench.core.errors import UserError
from methods.iqp_bfr.train import losses as L
from methods.iqp_bfr.train.monitor import CodebookUsage
from methods.iqp_bfr.train.reward import build_reward, reward_loss
from methods.iqp_bfr.train.stages import (
    Precision,
    Stage,
    build_net_config,
    build_teacher,
    code_targets,
    freeze_modules,
    gan_discriminator_step,
    gan_generator_term,
    gan_setup,
    load_net_checkpoint,
    trainable,
)


def fidelity_schedule(rows: list[list[Any]], it: int) -> tuple[float, int]:
    """(w, small_per_n) of iteration ``it`` from rows [until_iter | None, w, small_per_n]."""
    for until, w, per_n in rows:
        if until is None or it <= int(until):
            return float(w), max(1, int(per_n))
    until, w, per_n = rows[-1]
    return float(w), max(1, int(per_n))


def soft_lookup(net: Any, logits: torch.Tensor) -> torch.Tensor:
    """Softmax-expected codebook vector per token, shaped like the looked-up latent (B, C, H, W)."""
    cfg = net.config
    hw = cfg.latent_res

    def expect(lg: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        z = F.softmax(lg.float(), -1) @ table.float()  # (B, L, C)
        return z.view(z.shape[0], hw, hw, -1).permute(0, 3, 1, 2)

    parts = L.split_logits(logits)
    out = expect(parts["common"], net.quantize.embedding.weight)
    if "hq" in parts:
        out = out + cfg.aesthetic_weight * expect(parts["hq"], net.quantize_aesthetic.embedding.weight)
    return out


class Stage3(Stage):
    """CFT + discrete quality optimisation (see the module docstring)."""

    module_names = ("net_g", "net_d")

    def __init__(self, cfg: dict[str, Any], device: torch.device, precision: Precision) -> None:
        super().__init__(cfg, device, precision)
        from methods.codeformer_arch.network import CodeLookupNet

        self.net_config = build_net_config(cfg["network"])
        sd, _ = load_net_checkpoint(cfg["init"]["stage2"])
        self.net_g = CodeLookupNet(self.net_config)
        try:
            self.net_g.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise UserError(
                f"{cfg['init']['stage2']}: not a stage-2 network of {self.net_config.name} "
                f"({str(exc).splitlines()[-1].strip()[:160]}); use the stage-2 run trained with this network config"
            ) from exc
        self.net_g.to(device).train()
        self.teacher, _ = build_teacher(cfg["init"]["vqgan"], self.net_config, device)
        # the frozen stage-2 model: the anchor of the guard and the reference of code drift
        self.ref = copy.deepcopy(self.net_g).eval().requires_grad_(False)
        fix = list(cfg["train"]["fix_modules"])
        freeze_modules(self.net_g, fix)
        self.fix_transformer = "transformer" in fix or "ft_layers" in fix
        if self.fix_transformer:
            freeze_modules(self.net_g, ["ft_layers", "idx_pred_layer", "position_emb", "feat_emb"])
            self.net_g.position_emb.requires_grad_(False)
        self.fix_generator = "generator" in fix
        self.perceptual = L.Perceptual(cfg["perceptual"]["type"], cfg["perceptual"]["net"]).to(device)
        self.add_optimizer("g", trainable(self.net_g), float(cfg["train"]["lr_g"]))
        gan_setup(self)
        self.make_ema()
        r = cfg["reward"]
        # built even when the reward is off, so held-out evaluation reports it (a no-reward control run)
        self.reward_fn = build_reward({"type": r["type"], **(r.get("options") or {})}, device)
        self.reward = self.reward_fn if r["enabled"] else None
        self.kl_weight = float(cfg["guard"]["kl_weight"])
        self.w = {k: float(v) for k, v in cfg["loss"].items()}
        self.usage = CodebookUsage(self.net_config.codebook_size)

    # state -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"kl_weight": torch.tensor(self.kl_weight, dtype=torch.float64)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "kl_weight" in state:
            self.kl_weight = float(state["kl_weight"])

    # pieces ------------------------------------------------------------------------------------
    def conditioned(self) -> bool:
        return self.net_g.n_scores > 0

    def targets(self, gt: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        with torch.no_grad():
            idx = self.teacher.code_indices(gt)
            return code_targets(idx), self.net_g.lookup(idx)

    def reward_score(self, score: torch.Tensor | None) -> torch.Tensor | None:
        cond = self.cfg["reward"]["condition"]
        if score is None or cond == "target":
            return score
        return torch.full_like(score, float(cond))

    def last_layer(self) -> torch.Tensor:
        if not self.fix_generator:
            return self.net_g.generator.blocks[-1].weight
        largest = self.net_config.connect_list[-1]
        return self.net_g.fuse_convs_dict[largest].shift[-1].weight

    def forward_codes(self, net: Any, x: torch.Tensor, score: torch.Tensor | None):
        """(lq_feat with the condition, encoder taps, code logits)."""
        lq_feat, enc = net.encode(x)
        lq_feat, cond = net.condition(lq_feat, score)
        return lq_feat, enc, net.predict_logits(lq_feat, cond)

    def straight_through(self, net: Any, lq_feat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Looked-up latent whose values are codebook entries and whose gradient reaches the encoder / logits."""
        quant = net.lookup(logits.argmax(dim=2))
        if self.cfg["reward"]["straight_through"] == "softmax":
            soft = soft_lookup(net, logits)
            return soft + (quant - soft).detach()
        return lq_feat + (quant - lq_feat).detach()

    # the step ------------------------------------------------------------------------------------
    def step(self, it: int, batch: dict[str, Any]) -> dict[str, float]:
        gt = batch["gt"].to(self.device)
        w, per_n = fidelity_schedule(self.cfg["train"]["w_schedule"], it)
        large = (it % per_n != 0) and "lq_large" in batch
        inp = batch["lq_large" if large else "lq"].to(self.device)
        score = batch["score"].to(self.device) if self.conditioned() else None
        tgt, quant_gt = self.targets(gt)
        log: dict[str, float] = {"w": w, "large_de": float(large)}
        out = None
        with self.prec.autocast():
            lq_feat, enc, logits = self.forward_codes(self.net_g, inp, score)
            l_total = lq_feat.new_zeros((), dtype=torch.float32)
            if not self.fix_transformer:
                l_feat = L.latent_l2(lq_feat.float(), quant_gt) * self.w["feat"]
                ce = L.code_cross_entropy(logits, tgt)
                l_total = l_total + l_feat + self.w["ce"] * sum(ce.values())
                log.update({"l_feat": float(l_feat.detach()), **{k: float(v.detach()) for k, v in ce.items()}})
            if not large:
                quant = self.net_g.lookup(logits.argmax(dim=2)).detach()
                out = self.net_g.decode(quant, enc, w)
                if out.requires_grad:  # w > 0 or a trainable generator: image-level losses
                    l_pix = L.l1_loss(out.float(), gt) * self.w["pixel"]
                    l_per = self.perceptual(out, gt) * self.w["perceptual"]
                    l_gan, gan_log = gan_generator_term(self, it, out, l_pix + l_per, self.last_layer())
                    l_total = l_total + l_pix + l_per + l_gan
                    log.update({"l_pix": float(l_pix.detach()), "l_percep": float(l_per.detach()), **gan_log})
            l_quality, q_log = self.quality_terms(it, inp, score, lq_feat, enc, logits)
            l_total = l_total + l_quality
            log.update(q_log)
        if l_total.requires_grad:
            self.optimize("g", l_total)
        if out is not None and out.requires_grad:
            log.update(gan_discriminator_step(self, it, gt, out))
        log.update(L.code_accuracy(logits.detach(), tgt))
        for name, lg in L.split_logits(logits.detach()).items():
            self.usage.add(f"pred_{name}", lg.argmax(-1))
        self.update_ema()
        return log

    def quality_terms(
        self, it: int, inp: torch.Tensor, score: torch.Tensor | None, lq_feat: torch.Tensor, enc: dict, logits: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """(reward loss + weighted KL anchor, log values) of this iteration; zero outside reward steps."""
        r = self.cfg["reward"]
        if self.reward is None or it < int(r["start_iter"]) or it % max(1, int(r["every"])) != 0:
            return lq_feat.new_zeros((), dtype=torch.float32), {}
        r_score = self.reward_score(score)
        if r_score is not None and not torch.equal(r_score, score):
            lq_feat, enc, logits = self.forward_codes(self.net_g, inp, r_score)
        q_st = self.straight_through(self.net_g, lq_feat, logits)
        out = self.net_g.decode(q_st, enc, float(r["w"]))
        rew = self.reward((out.float().clamp(-1, 1) + 1) / 2)
        l_rew = reward_loss(rew, float(r["weight"]))
        with torch.no_grad():
            _, _, ref_logits = self.forward_codes(self.ref, inp, r_score)
        kl = L.code_anchor_kl(logits, ref_logits)
        drift = L.code_drift(logits.detach(), ref_logits)
        g = self.cfg["guard"]
        # trust region: past the hard bound the reward is switched off and only the anchor acts
        reward_on = g.get("max_drift") is None or drift <= float(g["max_drift"])
        loss = (l_rew if reward_on else 0.0) + self.kl_weight * kl
        log = {"reward": float(rew.detach().mean()), "l_reward": float(l_rew.detach()), "kl_anchor": float(kl.detach()),
               "code_drift": drift, "kl_weight": self.kl_weight, "reward_on": float(reward_on)}
        if g["adaptive"]:
            target = float(g["target_drift"])
            if drift > 1.5 * target:
                self.kl_weight = min(self.kl_weight * 2.0, float(g["max_kl_weight"]))
            elif drift < target / 1.5:
                self.kl_weight = max(self.kl_weight / 2.0, 1e-4)
        return loss, log

    def log_summary(self) -> dict[str, float]:
        return self.usage.summary()

    @torch.no_grad()
    def evaluate(self, batch: dict[str, Any]) -> dict[str, float]:
        """Held-out: reward of the output at the eval condition, code drift from stage 2, code accuracy."""
        e = self.cfg["eval"]
        net = self.ema.module if self.ema else self.net_g
        gt, lq = batch["gt"].to(self.device), batch["lq"].to(self.device)
        score = torch.full((lq.shape[0],), float(e.get("score", 0.9)), device=self.device) if self.conditioned() else None
        out, logits, _ = net(lq, w=float(e.get("w", 0.0)), score=score)
        _, ref_logits, _ = self.ref(lq, w=0.0, score=score, return_logits=True)
        tgt, _ = self.targets(gt)
        res = {"code_drift": L.code_drift(logits, ref_logits), **L.code_accuracy(logits, tgt)}
        res["reward"] = float(self.reward_fn((out.clamp(-1, 1) + 1) / 2).mean())
        return res
