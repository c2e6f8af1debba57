"""The ``pmrf`` method: Posterior-Mean Rectified Flow (Ohayon et al., ICLR 2025) for aligned 512 faces, batched.

Official path (``MMSERectifiedFlow.generate_reconstructions`` of ohayonguy/PMRF b6f16a4, the blind-face checkpoint
``ohayonguy/PMRF_blind_face_image_restoration``): ``z0 = SwinIR(y).clip(0, 1)`` (the posterior mean),
``x_0 = z0 + noise * sigma_s`` (sigma_s = ``mmse_noise_std`` 0.1), then ``steps`` Euler steps
``x += HDiT(x, i / steps) / steps`` and ``clip(0, 1)``. The one deliberate difference: the official code draws the
source noise from the global RNG for the whole batch; here each image's noise comes from its own
``torch.Generator`` seeded from (run seed, image key), so results do not depend on batch size or ranks.
Parity with the official code: tests/methods/pmrf/test_golden.py.
"""
from __future__ import annotations

from pathlib import Path

import torch

from bench import weights as W
from bench.core.registry import METHODS
from methods.base import RestorationMethod, WeightsInfo, image_noise, seeded_normal
from methods.codeformer_family import resize_like_cv2
from methods.pmrf.hdit import PMRF_HDIT, HDiT, HDiTConfig
from methods.pmrf.swinir import SwinIR, SwinIRConfig

WEIGHT_NAME = "pmrf-blind-face"
#: the checkpoint's two networks, under the LightningModule's attribute names
FLOW_PREFIX, MMSE_PREFIX = "model.", "mmse_model."
#: torchmetrics' FID / Inception-Score feature extractors, saved with the LightningModule and unused at inference
METRIC_PREFIXES = ("fid.", "inception_score.")


class PMRFNet(torch.nn.Module):
    """The checkpoint's two networks: ``model`` (the flow's HDiT) and ``mmse_model`` (the SwinIR posterior mean)."""

    def __init__(self, flow: HDiTConfig = PMRF_HDIT, mmse: SwinIRConfig = SwinIRConfig()) -> None:
        super().__init__()
        self.model = HDiT(flow)
        self.mmse_model = SwinIR(mmse)

    def posterior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """The SwinIR estimate clipped to [0, 1]."""
        return self.mmse_model(y).clip(0, 1)

    def sample(self, y: torch.Tensor, noise: torch.Tensor, steps: int, sigma: float) -> torch.Tensor:
        """Euler integration of the flow from ``posterior_mean(y) + sigma * noise``; float32 state, [0, 1] output."""
        x = self.posterior_mean(y).float() + noise.to(y.device, torch.float32) * sigma
        t = torch.ones(y.shape[0], device=y.device)
        dt = 1.0 / steps
        for i in range(steps):
            x = x + self.model(x, t * (i / steps)).to(x.dtype) * dt
        return x.clip(0, 1)


def split_checkpoint(state: dict[str, torch.Tensor], path: str | Path = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The ``model.*`` and ``mmse_model.*`` tensors of a PMRF checkpoint; the metric extractors are dropped.

    Any other key means another file: one WeightsFileError naming it."""
    keep = {k: v for k, v in state.items() if k.startswith((FLOW_PREFIX, MMSE_PREFIX))}
    other = [k for k in state if k not in keep and not k.startswith(METRIC_PREFIXES)]
    if other or not keep:
        what = f"unexpected tensors {other[:3]}" if other else "no model.* / mmse_model.* tensors"
        raise W.WeightsFileError(path, f"not a PMRF blind-face checkpoint ({what})", _FIX)
    return keep


_FIX = ("pass PMRF's model.safetensors (ohayonguy/PMRF_blind_face_image_restoration), or leave --weights out to use "
        f"the managed one (`bfrbench fetch {WEIGHT_NAME}`)")


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file read with the safetensors library (no pickle); other files via ``torch.load``."""
    if str(path).endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise W.WeightsFileError(path, f"not a readable safetensors file ({exc})", _FIX) from exc
    return W.load_state_dict(path)


def load_strict(net: PMRFNet, state: dict[str, torch.Tensor], path: str | Path = "<checkpoint>") -> None:
    """``net.load_state_dict(split_checkpoint(state), strict=True)``; a mismatch is one WeightsFileError line."""
    from methods.base import state_dict_mismatch

    keep = split_checkpoint(state, path)
    try:
        net.load_state_dict(keep, strict=True)
    except RuntimeError as exc:
        raise W.WeightsFileError(path, f"does not match PMRF's networks ({state_dict_mismatch(net, keep)})",
                                 _FIX) from exc


def standin_state_dict(reference: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights for ``reference``'s names and shapes that keep activations O(1).

    Matrices and convolutions are N(0, 1/fan_in) (the zero-initialised output projections too, so every path
    matters), norm scales 1 +- 0.1, attention scales 10 +- 1, biases small; fixed buffers (rotary frequencies,
    Swin position indices and shift masks) are kept as built, the Fourier-feature matrices are N(0, 1) as the
    official init."""
    out: dict[str, torch.Tensor] = {}
    for name, ref in reference.items():
        shape = tuple(ref.shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("freqs", "relative_position_index", "attn_mask"):
            t = ref.clone()
        elif name.endswith(("time_emb.weight", "aug_emb.weight")):
            t = seeded_normal(name, shape, seed, 1.0)
        elif leaf == "fac":
            t = seeded_normal(name, shape, seed, 0.1, mean=0.5)
        elif name.endswith("self_attn.scale"):
            t = seeded_normal(name, shape, seed, 1.0, mean=10.0)
        elif leaf == "scale" or (leaf == "weight" and len(shape) == 1):
            t = seeded_normal(name, shape, seed, 0.1, mean=1.0)
        elif leaf == "bias":
            t = seeded_normal(name, shape, seed, 0.02)
        elif leaf == "relative_position_bias_table":
            t = seeded_normal(name, shape, seed, 0.5)
        else:  # the velocity head damped, so a few Euler steps stay mostly inside [0, 1]
            fan_in = 1
            for n in shape[1:]:
                fan_in *= n
            gain = 0.1 if name.endswith("patch_out.proj.weight") else 1.0
            t = seeded_normal(name, shape, seed, gain * fan_in ** -0.5)
        out[name] = t.to(ref.dtype)
    return out


@METHODS.register
class PMRFMethod(RestorationMethod):
    """PMRF restoring aligned 512x512 faces: SwinIR posterior mean, then a rectified flow (HDiT), per-image noise."""

    name = "pmrf"
    takes_quality = False
    stochastic = True
    weights = (WEIGHT_NAME,)
    family = "pmrf"
    description = ("PMRF (ICLR 2025, ohayonguy/PMRF, MIT) posterior-mean rectified flow: SwinIR + HDiT, "
                   "Euler steps, per-image seeded noise")

    def __init__(self, steps: int = 25, noise: float = 0.1, weights: str | None = None) -> None:
        if int(steps) < 1:
            raise ValueError(f"pmrf: steps must be at least 1, got {steps}")
        if not float(noise) >= 0.0:
            raise ValueError(f"pmrf: noise (the source's sigma) must be >= 0, got {noise}")
        super().__init__(steps=int(steps), noise=float(noise))
        spec = W.WEIGHTS[WEIGHT_NAME]
        path = None if weights == "random" else W.resolve(spec.name, weights)  # fail fast, before building
        self.net = self.build_net()
        if path is None:
            self.net.load_state_dict(standin_state_dict(self.net.state_dict()), strict=True)
            self.weights_info = [WeightsInfo(name=spec.name, standin=True, note="deterministic random stand-in weights")]
        else:
            load_strict(self.net, load_checkpoint(path), path)
            self.weights_info = [WeightsInfo(name=spec.name, path=str(path), sha256=W.sha256_file(path))]
        self.net.eval()

    def build_net(self) -> PMRFNet:
        """The networks this method runs (the released configuration)."""
        return PMRFNet()

    def info(self):  # type: ignore[override]
        """The parameters, with the run seed the noise is drawn from (the unit key, the manifest and the reuse
        record carry it: a run with another seed recomputes)."""
        out = super().info()
        out.params["run_seed"] = self.noise_seed
        return out

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        y = resize_like_cv2(lq.to(self.device, torch.float32), self.input_size).contiguous()
        keys = self.noise_keys or [f"#{i}" for i in range(y.shape[0])]  # unkeyed (profiling): position in the call
        if len(keys) != y.shape[0]:
            raise ValueError(f"pmrf: {len(keys)} noise keys for {y.shape[0]} images")
        noise = image_noise(self.noise_seed, keys, tuple(y.shape[1:]))
        return self.net.sample(y, noise, self.params["steps"], self.params["noise"]).float()
