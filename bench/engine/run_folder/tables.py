"""Typed reading and safe writing of the run folder's tables (CSV and parquet).

Columns are checked and typed here (numbers numeric, flags boolean, names text with the CSV
escape undone), so every reader of a run folder can trust the frames it gets.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.errors import UserError
from bench.core.fileread import read_regular_file

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the largest table or document read from a run folder (a received folder may hold anything)
MAX_FILE_BYTES = 1 << 30

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def to_bool(value: Any, where: str) -> bool:
    """A flag cell as bool (True/False, 1/0, yes/no; empty is False); anything else is a one-line error."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserError(f"{where}: {value!r} is not a boolean (expected True/False); re-run the benchmark to rewrite it")


def check_columns(df: pd.DataFrame, required: Sequence[str], path: Path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; the file was not written by this bfrbench "
            "version (re-run `bfrbench run` to rewrite it)"
        )


def regular_file(path: Path) -> io.BytesIO:
    """``path``'s bytes if it is a regular file under the size cap, checked after opening (a FIFO
    planted in a run folder would block a plain open forever); else a one-line UserError."""
    try:
        return io.BytesIO(read_regular_file(path, MAX_FILE_BYTES))
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc}); "
                        "re-run the benchmark to rewrite it, or remove it") from exc


def read_csv(path: Path, required: Sequence[str], bools: Sequence[str], text: Sequence[str]) -> pd.DataFrame:
    """A CSV bfrbench wrote, typed: ``text`` columns as str, ``bools`` as bool, every other column numeric."""
    import pandas as pd

    from bench.core.csvsafe import restore_frame

    try:
        # keep_default_na=False for text columns: a method called "None" or "NA" stays a name
        df = pd.read_csv(regular_file(path), dtype={c: str for c in text}, keep_default_na=False, na_values={})
    except pd.errors.EmptyDataError as exc:
        raise UserError(f"{path}: empty file; re-run the benchmark to rewrite it") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}); re-run the benchmark to rewrite it") from exc
    restore_frame(df, [c for c in text if c in df.columns])  # names bfrbench neutralised for spreadsheets
    check_columns(df, required, path)
    for col in df.columns:
        if col in text or col in bools:
            continue
        df[col] = pd.to_numeric(df[col].replace("", float("nan")), errors="coerce")
    for col in bools:
        if col in df.columns:
            df[col] = [to_bool(v, f"{path} column {col}") for v in df[col]]
    for col in text:
        if col in df.columns:
            df[col] = df[col].fillna("").astype(str)
    return df


def read_parquet(path: Path, required: Sequence[str], text: Sequence[str], added: Sequence[str] = ()) -> pd.DataFrame:
    """A parquet table bfrbench wrote: ``text`` columns as str, the columns not ``required`` as float.

    ``added``: required columns newer than some folders; one that is absent reads as "" (so older folders still read).
    """
    import pandas as pd

    data = regular_file(path)
    try:
        df = pd.read_parquet(data)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable parquet file ({exc}); re-run the benchmark to rewrite it") from exc
    check_columns(df, [c for c in required if c not in added], path)
    for col in added:
        if col not in df.columns:
            df[col] = ""
    for col in text:
        df[col] = df[col].fillna("").astype(str)
    for col in df.columns:
        if col not in required:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """``df`` as CSV, atomically, with text cells a spreadsheet would evaluate neutralised."""
    from bench.core.csvsafe import write_frame

    write_frame(df, path)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    from bench.core.atomic import atomic_open

    with atomic_open(path, "wb") as fh:
        df.to_parquet(fh, index=False)
