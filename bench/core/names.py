"""Folder names derived from user-given names (datasets, method labels) that stay inside their folder."""
from __future__ import annotations

import hashlib
import re


def safe_text(name: str, limit: int = 80) -> str:
    """``name`` with every character outside ``A-Za-z0-9._+-`` replaced, cut to ``limit``, never hidden or empty."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)[:limit].lstrip(".") or "_"


def folder_name(name: str, limit: int = 80) -> str:
    """:func:`safe_text` of ``name`` ending in 8 hex digits of its SHA-256 (``limit`` characters at most).

    Two names that sanitise or truncate to the same text still get different folders.
    """
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe_text(name, max(1, limit - 9))}-{digest}"
