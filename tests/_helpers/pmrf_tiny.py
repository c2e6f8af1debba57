"""A reduced PMRF (every code path of the released networks at a fraction of the cost) for the tests.

HDiT widths 32/64/128, depths 1/1/2, heads of 32, neighbourhood attention (kernel 7) at the two upper levels and
global at the bottom, mapping 64 x 1; SwinIR width 24, two groups of 2 blocks (shift masks built for 64 x 64
features, as the release's). The same reduced configuration the official golden was made with
(tests/fixtures/golden/make_pmrf_golden.py)."""
from __future__ import annotations

from methods.pmrf.hdit import HDiTConfig, HDiTLevel
from methods.pmrf.method import PMRFMethod, PMRFNet
from methods.pmrf.swinir import SwinIRConfig

TINY_HDIT = HDiTConfig(levels=(HDiTLevel(1, 32, 32), HDiTLevel(1, 64, 32), HDiTLevel(2, 128, 32, kernel_size=0)),
                       mapping_depth=1, mapping_width=64)
TINY_SWINIR = SwinIRConfig(embed_dim=24, depths=(2, 2), num_heads=(2, 2), img_size=64)


class TinyPMRF(PMRFMethod):
    """``pmrf`` on the reduced networks, for 64 x 64 faces."""

    name = "test-pmrf-tiny"
    input_size = output_size = 64

    def build_net(self) -> PMRFNet:
        return PMRFNet(TINY_HDIT, TINY_SWINIR)
