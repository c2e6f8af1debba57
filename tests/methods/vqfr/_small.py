"""The ``vqfr`` method on the 64x64 network of the golden (every code path of the release, a fraction of the cost)."""
from __future__ import annotations

from methods.vqfr.arch import VQFRConfig, VQFRv2
from methods.vqfr.method import VQFRMethod

#: the golden's SMALL constructor (tests/fixtures/golden/make_vqfr_golden.py)
SMALL = VQFRConfig(base_channels=32, channel_multipliers=(1, 1, 2, 2, 2, 4), code_dim=64, num_code=64)


class SmallVQFR(VQFRMethod):
    """VQFR v2 at 64x64, half width, 64 codes of 64 dims (2x2 latent)."""

    input_size = output_size = 64

    def build_net(self) -> VQFRv2:
        return VQFRv2(SMALL)
