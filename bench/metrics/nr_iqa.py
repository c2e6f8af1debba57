"""First-class names for the NR-IQA set the field reports: musiq, maniqa, clipiqa, qalign, topiq-face, topiq-nr.

Each is pyiqa's metric of that name with pyiqa's defaults (the ``[iqa]`` extra); numbers carry
``pyiqa-<version>:<pyiqa name>``. They are registered, with direction and checkpoint, even when
pyiqa is absent: ``bfrbench list`` shows them as not ready with the install command. When the
weights manager holds the checkpoint (``bfrbench fetch pyiqa-musiq-koniq``) it is handed to pyiqa
(``pretrained_model_path``), so pyiqa needs no download.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from bench.core.registry import METRICS
from bench.metrics.base import MetricUnavailable
from bench.metrics.pyiqa_adapter import PyiqaMetric, protocol_label

INSTALL = "pip install 'bfrbench[iqa]'"


@dataclass(frozen=True)
class NRIQA:
    """One first-class NR-IQA name and the pyiqa metric behind it."""

    name: str
    pyiqa_name: str
    weights: str
    score_range: str
    description: str
    higher_better: bool = True
    #: pyiqa's keyword for a local checkpoint, when the architecture takes one
    path_option: str | None = "pretrained_model_path"


NR_IQA: tuple[NRIQA, ...] = (
    NRIQA("musiq", "musiq", "pyiqa-musiq-koniq", "0-100", "MUSIQ (KonIQ-10k)"),
    NRIQA("maniqa", "maniqa", "pyiqa-maniqa-pipal", "0-1", "MANIQA (PIPAL)"),
    NRIQA("clipiqa", "clipiqa", "pyiqa-clipiqa", "0-1", "CLIP-IQA (CLIP RN50, antonym prompts)", path_option=None),
    NRIQA("qalign", "qalign", "pyiqa-qalign", "1-5", "Q-Align (quality, mPLUG-Owl2; ~15 GB GPU memory)",
          path_option=None),
    NRIQA("topiq-face", "topiq_nr-face", "pyiqa-topiq-nr-face", "0-1", "TOPIQ-face (CGFIQA)"),
    NRIQA("topiq-nr", "topiq_nr", "pyiqa-topiq-nr-koniq", "0-1", "TOPIQ NR (KonIQ-10k)"),
)
BY_NAME = {m.name: m for m in NR_IQA}


def pyiqa_installed() -> bool:
    return importlib.util.find_spec("pyiqa") is not None


def available(spec: NRIQA) -> tuple[bool, str]:
    """Ready when pyiqa is installed; the note says where its checkpoint comes from."""
    if not pyiqa_installed():
        return False, f"needs pyiqa: {INSTALL}"
    from bench.weights import is_available

    if spec.path_option and is_available(spec.weights):
        return True, f"pyiqa installed; checkpoint {spec.weights} from the weights manager"
    return True, f"pyiqa installed; pyiqa downloads its checkpoint on first use (or bfrbench fetch {spec.weights})"


class NamedPyiqaMetric(PyiqaMetric):
    """A pyiqa metric under its first-class bfrbench name (same numbers as ``pyiqa:<name>``)."""

    def __init__(self, spec: NRIQA, **options: Any) -> None:
        if not pyiqa_installed():
            raise MetricUnavailable(f"metric {spec.name} needs pyiqa, which is not installed: {INSTALL}")
        weights_path = None
        if spec.path_option and spec.path_option not in options:
            from bench.weights import expected_path, is_available

            if is_available(spec.weights):
                weights_path = str(expected_path(spec.weights))
                options[spec.path_option] = weights_path
        super().__init__(spec.pyiqa_name, **options)
        self.name = spec.name
        self.weights_path = weights_path

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(name=self.name, pyiqa_name=self.metric_name, weights_path=self.weights_path)
        return out


def _register(spec: NRIQA) -> None:
    def factory(**options: Any) -> NamedPyiqaMetric:
        return NamedPyiqaMetric(spec, **options)

    METRICS.add(
        spec.name,
        factory,
        higher_better=spec.higher_better,
        needs_gt=False,
        protocol=protocol_label(spec.pyiqa_name),
        standard=True,
        weights=[spec.weights],
        description=f"{spec.description}, pyiqa {spec.pyiqa_name!r} with its defaults; range {spec.score_range}",
        available=lambda: available(spec),
        listing_check={"weights": [], "module": "pyiqa"},  # pyiqa fetches its checkpoint itself when it is absent
        install=INSTALL,
        pyiqa_name=spec.pyiqa_name,
    )


for _spec in NR_IQA:
    _register(_spec)

__all__ = ["NR_IQA", "BY_NAME", "NRIQA", "NamedPyiqaMetric", "INSTALL", "available", "pyiqa_installed"]
