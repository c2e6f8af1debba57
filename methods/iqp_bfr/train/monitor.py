"""Training logs: CSV files rewritten atomically (resume-safe), optional TensorBoard, codebook usage."""
from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from bench.core.atomic import atomic_write_text
from bench.core.csvsafe import csv_text, restore


class CSVLog:
    """Rows of scalars kept in memory and rewritten atomically; reopening drops rows after a step."""

    def __init__(self, path: str | os.PathLike[str], resume_step: int | None = None,
                 columns: list[str] | tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        #: the header, fixed from the first write (``columns``: the ones known up front, e.g. GAN losses)
        self.fields: list[str] = list(dict.fromkeys(["step", *columns]))
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.fields += [restore(f) for f in reader.fieldnames or [] if restore(f) not in self.fields]
                rows = [{restore(k): restore(v) for k, v in r.items()} for r in reader]
                self.rows = [r for r in rows if int(float(r["step"])) <= resume_step]

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def flush(self) -> None:
        if not self.rows:
            return
        for r in self.rows:  # a column nobody declared still gets one (the whole file is rewritten)
            self.fields += [k for k in r if k not in self.fields]
        atomic_write_text(self.path, csv_text(self.fields, [{k: _fmt(v) for k, v in r.items()} for r in self.rows]))

    def column(self, name: str) -> list[float]:
        return [float(r[name]) for r in self.rows if r.get(name) not in (None, "")]


def _fmt(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        v = v.item()
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


class TensorBoard:
    """Scalars to TensorBoard when ``torch.utils.tensorboard`` (the tensorboard package) is installed."""

    def __init__(self, logdir: Path, enabled: bool) -> None:
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(logdir))
        except ImportError:
            warnings.warn("log.tensorboard is on but the tensorboard package is not installed; CSV logs only", stacklevel=2)

    def add(self, row: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(float(v)):
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class CodebookUsage:
    """Histogram of selected codes over a logging window: perplexity and fraction of codes used."""

    def __init__(self, codebook_size: int) -> None:
        self.size = codebook_size
        self.counts: dict[str, torch.Tensor] = {}

    def add(self, name: str, indices: torch.Tensor) -> None:
        if indices.numel() == 0:
            return
        c = torch.bincount(indices.detach().reshape(-1).cpu(), minlength=self.size).double()
        self.counts[name] = self.counts.get(name, torch.zeros(self.size, dtype=torch.float64)) + c

    def summary(self, reset: bool = True) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, c in self.counts.items():
            total = float(c.sum())
            if total == 0:
                continue
            p = c / total
            ent = float(-(p[p > 0] * p[p > 0].log()).sum())
            out[f"perplexity_{name}"] = math.exp(ent)
            out[f"usage_{name}"] = float((c > 0).double().mean())
        if reset:
            self.counts = {}
        return out
