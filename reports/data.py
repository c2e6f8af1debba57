"""A run folder loaded for the report: the tables the run folder's readers give, in one object.

Only ``summary.csv`` is required; the other files are optional and the report says which are
absent. Reading, column lists and typing belong to :class:`bench.engine.run_folder.RunFolder`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.engine.run_folder import PER_IMAGE_COLUMNS, RunFolder


@dataclass
class RunData:
    """Everything a report shows, read from one run folder."""

    run_dir: Path
    summary: pd.DataFrame
    manifest: dict[str, Any]
    per_image: pd.DataFrame | None = None
    gains: pd.DataFrame | None = None
    profile: pd.DataFrame | None = None
    #: files the runner may write that this run folder lacks (shown in the report)
    missing: list[str] = field(default_factory=list)
    #: comparison.csv (``bfrbench compare``): paper value, ours, diff, within tolerance
    comparison: pd.DataFrame | None = None
    #: suite.json's rows (``run --suite``): each method's suite variables, score and gate
    suite_rows: pd.DataFrame | None = None

    @property
    def metric_columns(self) -> list[str]:
        """Per-image metric columns in per_image.parquet (every column that is not bookkeeping)."""
        if self.per_image is None:
            return []
        return [c for c in self.per_image.columns if c not in PER_IMAGE_COLUMNS]


def load_run(run_dir: str | Path) -> RunData:
    """Read a run folder; raises UserError naming the file and the fix when it cannot be used."""
    folder = RunFolder(run_dir)
    summary = folder.summary()
    return RunData(folder.path, summary, folder.manifest(), folder.per_image(), folder.gains(), folder.profile(),
                   folder.missing(), folder.comparison(), folder.suite_rows())
