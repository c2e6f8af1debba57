"""Losses of the three IQP / CodeFormer training stages.

Pixel (L1), perceptual (LPIPS, or an offline fallback), hinge GAN with the VQGAN
adaptive weight, vector-quantisation (codebook + commitment) with a per-sample mask,
per-codebook cross-entropy on code logits, the latent L2 loss, and the stage-3 guard
against reward over-optimisation (KL anchor to the frozen stage-2 code distribution).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


# -- pixel ------------------------------------------------------------------------------
def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (BasicSR L1Loss, reduction mean)."""
    return (pred - target).abs().mean()


# -- perceptual -------------------------------------------------------------------------
_TV_WEIGHT_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def lpips_backbone(net: str = "vgg") -> Path | None:
    """The torchvision ImageNet backbone LPIPS needs, if present (weights manager, then the torch hub cache)."""
    from bench.metrics.lpips_metric import BACKBONE_WEIGHTS
    from bench.weights import MissingWeightsError, resolve

    try:
        return resolve(BACKBONE_WEIGHTS[net])
    except (MissingWeightsError, KeyError):
        pass
    hub = Path(torch.hub.get_dir()) / "checkpoints" / _TV_WEIGHT_FILES.get(net, "?")
    return hub if hub.is_file() else None


class LaplacianPyramidLoss(nn.Module):
    """Offline perceptual fallback: L1 over a Laplacian pyramid plus L1 of image gradients.

    Needs no pretrained network. It weights edges and mid frequencies more than plain L1,
    which is what LPIPS contributes to VQGAN training, but it is NOT LPIPS: runs that use it
    are labelled so (``Perceptual.kind``).
    """

    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k = (g[:, None] * g[None, :]) / 256.0
        self.register_buffer("kernel", k.expand(3, 1, 5, 5).clone(), persistent=False)
        self.levels = levels

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.kernel.to(x.dtype), groups=3)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = pred.new_zeros(())
        a, b = pred, target
        for level in range(self.levels):
            if min(a.shape[-2:]) < 8:
                break
            ba, bb = self._blur(a), self._blur(b)
            loss = loss + (2.0**level) * ((a - ba) - (b - bb)).abs().mean()
            a, b = F.avg_pool2d(ba, 2), F.avg_pool2d(bb, 2)
        loss = loss + (a - b).abs().mean()
        dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
        dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
        return loss + (dx(pred) - dx(target)).abs().mean() + (dy(pred) - dy(target)).abs().mean()


class Perceptual(nn.Module):
    """Perceptual loss on images in [-1, 1]: LPIPS v0.1 when its backbone weights exist, else a fallback.

    ``kind``: ``"auto"`` (LPIPS if the torchvision backbone is available, from ``bfrbench fetch
    vgg16_imagenet_torchvision`` or the torch hub cache; otherwise the Laplacian-pyramid fallback,
    with a warning), ``"lpips"`` (required: an error names the fetch command), ``"laplacian"`` (the
    fallback) or ``"none"``. LPIPS is the project's :class:`bench.metrics.lpips_metric.LPIPSNet`,
    the ``lpips`` package's computation (``lpips.LPIPS(net=...)``) with managed weights.
    """

    def __init__(self, kind: str = "auto", net: str = "vgg") -> None:
        super().__init__()
        kind = kind.lower()
        if kind not in ("auto", "lpips", "laplacian", "none"):
            raise ValueError(f"perceptual loss type {kind!r}: use auto, lpips, laplacian or none")
        backbone = lpips_backbone(net) if kind in ("auto", "lpips") else None
        if kind == "auto":
            if backbone is None:
                warnings.warn(
                    f"LPIPS backbone weights ({_TV_WEIGHT_FILES.get(net)}) are not available; training uses the "
                    "Laplacian-pyramid perceptual fallback instead. Run `bfrbench fetch vgg16_imagenet_torchvision` "
                    "(and set perceptual.type: lpips) to train with LPIPS as the papers do",
                    stacklevel=2,
                )
            kind = "lpips" if backbone is not None else "laplacian"
        if kind == "lpips" and backbone is None:
            raise FileNotFoundError(
                f"perceptual.type lpips needs the torchvision {net} ImageNet weights: run "
                "`bfrbench fetch vgg16_imagenet_torchvision`, or set perceptual.type: laplacian"
            )
        self.kind = kind
        self.fn: nn.Module | None = None
        if kind == "lpips":
            from bench.metrics.lpips_metric import build_lpips

            self.fn = build_lpips(net, backbone=backbone)
        elif kind == "laplacian":
            self.fn = LaplacianPyramidLoss()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.fn is None:
            return pred.new_zeros((), dtype=torch.float32)
        # float32 even under autocast: LPIPS' feature normalisation (sqrt + 1e-10) breaks in fp16
        with torch.autocast(pred.device.type, enabled=False):
            value = self.fn(pred.float(), target.float())  # [-1, 1] inputs
        return value.mean() if self.kind == "lpips" else value


# -- GAN ----------------------------------------------------------------------------------
def hinge_d_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Discriminator hinge losses (real, fake): mean relu(1 - D(x)), mean relu(1 + D(G(z)))."""
    return F.relu(1.0 - real_pred).mean(), F.relu(1.0 + fake_pred).mean()


def hinge_g_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean D(G(z))."""
    return -fake_pred.mean()


def adaptive_gan_weight(
    recon_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1.0
) -> torch.Tensor:
    """VQGAN / CodeFormer adaptive weight: ||grad recon|| / (||grad gan|| + 1e-4) at the last layer, clamped."""
    recon_grads = torch.autograd.grad(recon_loss, last_layer, retain_graph=True)[0]
    g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = recon_grads.norm() / (g_grads.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


# -- vector quantisation ------------------------------------------------------------------
def vq_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float = 0.25, mask: torch.Tensor | None = None) -> torch.Tensor:
    """VQ loss as CodeFormer's quantizer computes it: ``||sg[e]-z||^2 + beta ||e-sg[z]||^2``.

    ``mask`` (B,) of 0/1 keeps only some samples (the HQ codebook learns from high-score
    images only); a batch with no kept sample gives an exact zero with no gradient path.
    """
    per = ((z_q.detach() - z) ** 2).flatten(1).mean(1) + beta * ((z_q - z.detach()) ** 2).flatten(1).mean(1)
    if mask is None:
        return per.mean()
    mask = mask.to(per.dtype)
    return (per * mask).sum() / per.shape[0]


# -- stage 2 / 3 code losses --------------------------------------------------------------
def split_logits(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, N, K) -> {"common": ...}; dual (B, N, K, 2) -> {"hq": [..., 0], "common": [..., 1]} (IQP layout)."""
    if logits.ndim == 3:
        return {"common": logits}
    if logits.ndim == 4 and logits.shape[-1] == 2:
        return {"hq": logits[..., 0], "common": logits[..., 1]}
    raise ValueError(f"code logits must be (B, N, K) or (B, N, K, 2), got {tuple(logits.shape)}")


def code_cross_entropy(logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One cross-entropy per codebook: {"ce_common": ..., "ce_hq": ...}; targets (B, N) long."""
    out = {}
    for name, lg in split_logits(logits).items():
        if name not in targets:
            raise KeyError(f"no target codes for the {name} codebook")
        out[f"ce_{name}"] = F.cross_entropy(lg.float().permute(0, 2, 1), targets[name])
    return out


def code_accuracy(logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of tokens whose argmax code equals the target code, per codebook."""
    return {
        f"acc_{name}": float((lg.argmax(-1) == targets[name]).float().mean())
        for name, lg in split_logits(logits).items()
        if name in targets
    }


def latent_l2(lq_feat: torch.Tensor, quant_feat_gt: torch.Tensor) -> torch.Tensor:
    """CodeFormer's latent loss: mean squared distance of the LQ latent to the GT quantised latent."""
    return ((quant_feat_gt.detach() - lq_feat) ** 2).mean()


def code_anchor_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_ref || p) per token, averaged over tokens and codebooks: the stage-3 anchor to stage 2."""
    total = logits.new_zeros((), dtype=torch.float32)
    cur, ref = split_logits(logits), split_logits(ref_logits)
    for name in cur:
        lp = F.log_softmax(cur[name].float(), -1)
        lq = F.log_softmax(ref[name].detach().float(), -1)
        total = total + (lq.exp() * (lq - lp)).sum(-1).mean()
    return total / len(cur)


def code_drift(logits: torch.Tensor, ref_logits: torch.Tensor) -> float:
    """Fraction of tokens (all codebooks) whose argmax code differs from the reference model's."""
    cur, ref = split_logits(logits), split_logits(ref_logits)
    diffs = [(cur[n].argmax(-1) != ref[n].argmax(-1)).float().mean() for n in cur]
    return float(torch.stack(diffs).mean())
