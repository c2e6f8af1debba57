"""The degradation presets (ranges of blur, downsampling, noise, JPEG), as data.

Kept apart from :mod:`bench.data.degrade` (numpy, OpenCV) so the command line lists them without
importing the pipeline.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DegradationPreset:
    """Ranges of one blur / downsample / noise / JPEG pipeline."""

    name: str
    blur_kernel_size: int = 41
    kernel_list: tuple[str, ...] = ("iso", "aniso")
    kernel_prob: tuple[float, ...] = (0.5, 0.5)
    blur_sigma: tuple[float, float] = (0.1, 10.0)
    downsample_range: tuple[float, float] = (0.8, 8.0)
    noise_range: tuple[float, float] | None = (0.0, 20.0)  # of 255
    jpeg_range: tuple[float, float] | None = (60.0, 100.0)
    description: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, DegradationPreset] = {
    p.name: p
    for p in (
        DegradationPreset(
            "celeba-test",
            blur_sigma=(0.1, 10.0),
            downsample_range=(0.8, 8.0),
            noise_range=(0.0, 20.0),
            jpeg_range=(60.0, 100.0),
            description="GFPGAN's synthetic pipeline, as used to build CelebA-Test",
            source="GFPGAN gfpgan/data/ffhq_degradation_dataset.py + options/train_gfpgan_v1.yml",
        ),
        DegradationPreset(
            "codeformer-large",
            blur_sigma=(1.0, 15.0),
            downsample_range=(4.0, 30.0),
            noise_range=(0.0, 20.0),
            jpeg_range=(30.0, 80.0),
            description="CodeFormer stage II/III training degradation (heavy)",
            source="CodeFormer options/CodeFormer_stage2.yml",
        ),
        DegradationPreset(
            "codeformer-small",
            blur_sigma=(0.1, 10.0),
            downsample_range=(1.0, 12.0),
            noise_range=(0.0, 15.0),
            jpeg_range=(60.0, 100.0),
            description="CodeFormer stage III training degradation (mild)",
            source="CodeFormer options/CodeFormer_stage3.yml (blur_sigma, downsample_range, noise_range, jpeg_range)",
        ),
    )
}


def get_preset(preset: str | DegradationPreset) -> DegradationPreset:
    if isinstance(preset, DegradationPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown degradation preset {preset!r}; known: {', '.join(PRESETS)}") from None
