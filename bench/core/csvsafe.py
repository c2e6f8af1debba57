"""CSV cells that a spreadsheet cannot run: every CSV bfrbench writes goes through this module.

A text cell starting with ``= + - @``, a tab or a carriage return is read as a formula by
Excel / LibreOffice (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``). Such cells, and cells that
already start with ``'``, get a leading ``'``, the spreadsheet convention for "text"; numbers
(``-0.5``) are left alone. :func:`restore` undoes it exactly, so bfrbench reading its own files
gets the original names back.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def _is_number(text: str) -> bool:
    try:
        return not math.isnan(float(text)) or text.strip().lower() == "nan"
    except ValueError:
        return False


def neutralise(value: Any) -> Any:
    """``value`` safe for a CSV cell: text a spreadsheet would evaluate gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _is_number(value):
        return "'" + value
    return value


def restore(value: Any) -> Any:
    """The original of a cell written by :func:`neutralise`."""
    if isinstance(value, str) and value.startswith("'") and neutralise(value[1:]) == value:
        return value[1:]
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]], **fmt: Any) -> str:
    """The CSV text of ``header`` and ``rows`` (sequences, or mappings keyed by header), every cell neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, **fmt)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        cells = [row.get(h, "") for h in header] if isinstance(row, Mapping) else list(row)
        writer.writerow([neutralise(c) for c in cells])
    return buf.getvalue()


def _is_text(column: pd.Series) -> bool:
    return column.dtype == object or str(column.dtype) in ("string", "str")


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells and column names are neutralised (numbers untouched)."""
    out = df.copy()
    for col in out.columns:
        if _is_text(out[col]):
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(c) if isinstance(c, str) else c for c in out.columns]
    return out


def write_frame(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """``df`` as CSV at ``path``, atomically, text cells neutralised (floats as ``%.10g``)."""
    from bench.core.atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        neutralise_frame(df).to_csv(fh, index=False, float_format="%.10g")


def read_frame(path: str | os.PathLike[str], **kwargs: Any) -> pd.DataFrame:
    """A CSV bfrbench wrote, with the original text of every neutralised cell and column name."""
    import pandas as pd

    return restore_frame(pd.read_csv(path, **kwargs))


def restore_frame(df: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Undo :func:`neutralise_frame` on the text ``columns`` (default: every object column) and names, in place."""
    df.columns = [restore(c) if isinstance(c, str) else c for c in df.columns]
    cols = list(columns) if columns is not None else [c for c in df.columns if _is_text(df[c])]
    for col in cols:
        if col in df.columns:
            df[col] = df[col].map(restore)
    return df
