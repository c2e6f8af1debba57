"""A suite's official file list: which images each of its folders must hold, from the challenge's repository.

The list is a text file beside the suite (``FOLDER/STEM`` per line, ``#`` comments), named in the suite's
``files: {list, source, commit}``, the commit of the repository it was read from recorded with it. Before
scoring, :func:`check_folders` reports each folder that lacks official files or holds others, so an entry
scored on a different set of faces is seen before its numbers are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import UserError
from bench.core.imageio import list_images

#: a list larger than this is not a file list
MAX_LIST_BYTES = 4 << 20
#: how many names a message shows
SHOWN = 5
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class FileList:
    """The official list: its file, where it was read from and at which commit."""

    path: Path
    source: str
    commit: str

    def read(self) -> dict[str, set[str]]:
        """``{folder: {stem, ...}}``; a malformed line is one error naming the file and the line."""
        try:
            if self.path.stat().st_size > MAX_LIST_BYTES:
                raise UserError(f"{self.path}: over {MAX_LIST_BYTES} bytes; not a suite file list")
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.path}: the suite's file list cannot be read ({exc})") from None
        out: dict[str, set[str]] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            folder, sep, stem = line.rpartition("/")
            if not sep or not folder or not stem:
                raise UserError(f"{self.path}:{n}: expected FOLDER/STEM, got {line[:80]!r}")
            out.setdefault(folder, set()).add(stem)
        return out

    def describe(self) -> str:
        return f"{self.source} @ {self.commit[:12]}"


def parse_files(raw: Any, where: str, base: Path) -> FileList:
    """The suite's ``files`` mapping; the list path is relative to the suite file's folder."""
    if not isinstance(raw, dict) or set(raw) - {"list", "source", "commit"} or not {"list", "source", "commit"} <= set(raw):
        raise UserError(f"{where}: files is a mapping {{list: FILE, source: REPO PATH, commit: SHA}}")
    commit = str(raw["commit"]).strip().lower()
    if not _COMMIT.match(commit):
        raise UserError(f"{where}: files.commit {str(raw['commit'])[:60]!r} is not a 40-digit commit hash")
    path = (base / str(raw["list"])).resolve()
    if not path.is_file():
        raise UserError(f"{where}: files.list {raw['list']!r} not found (looked in {base})")
    return FileList(path, str(raw["source"]), commit)


def _names(names: set[str]) -> str:
    shown = sorted(names)[:SHOWN]
    return ", ".join(shown) + (f" ... (+{len(names) - SHOWN})" if len(names) > SHOWN else "")


def check_folders(files: FileList, folders: dict[str, tuple[str, Path]]) -> list[str]:
    """One line per dataset whose folder lacks official files or holds others.

    ``folders`` maps the list's folder name to (dataset name, folder on disk); a folder that does not
    exist is left to the run (it names the fix).
    """
    official = files.read()
    out = []
    for key, (dataset, folder) in folders.items():
        wanted = official.get(key)
        if wanted is None or not folder.is_dir():
            continue
        present = {p.stem for p in list_images(folder)}
        missing, extra = wanted - present, present - wanted
        parts = []
        if missing:
            parts.append(f"{len(missing)} of its {len(wanted)} official files missing ({_names(missing)})")
        if extra:
            parts.append(f"{len(extra)} not in the official list ({_names(extra)})")
        if parts:
            out.append(f"{dataset}: {folder}: {' and '.join(parts)} [official list: {files.describe()}]; its numbers "
                       "are not the challenge's")
    return out


__all__ = ["FileList", "parse_files", "check_folders"]
