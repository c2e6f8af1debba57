"""Image reading and writing with the conventions of the official BFR scripts.

Pixels are decoded with OpenCV (as the official inference scripts do, so results match
theirs bit for bit) and returned as RGB uint8 arrays. Inputs that are grey, RGBA,
palette or 16-bit are converted, and each conversion is reported so a run can record it.
Files that are empty, truncated or undecodable raise :class:`ImageReadError`, which names
the file and the fix.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.atomic import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image file that cannot be used; the message names the file, the reason and the fix."""

    def __init__(self, path: str | os.PathLike[str], reason: str, fix: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.fix = fix or "re-download or re-export the file, or remove it from the folder"
        super().__init__(f"{self.path}: {reason} ({self.fix})")


@dataclass
class DecodedImage:
    """An RGB uint8 image (H, W, 3) and the conversions applied to reach it."""

    path: str
    rgb: np.ndarray
    conversions: list[str] = field(default_factory=list)


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden files skipped)."""
    root = Path(folder)
    return sorted(p for p in root.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def _truncation_reason(data: bytes, suffix: str) -> str | None:
    """Structural checks OpenCV does not make: it decodes a cut JPEG with grey padding."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        # walk the chunks; a valid PNG ends with IEND
        pos = 8
        while pos + 8 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            ctype = data[pos + 4 : pos + 8]
            pos += 12 + length
            if ctype == b"IEND":
                return None if pos <= len(data) else "truncated PNG (IEND chunk cut off)"
        return "truncated PNG (no IEND chunk)"
    if data[:2] == b"\xff\xd8":
        tail = data.rstrip(b"\x00")[-2:]
        if tail != b"\xff\xd9":
            return "truncated JPEG (no end-of-image marker)"
    return None


def _png_color_type(data: bytes) -> int | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26:
        return data[25]
    return None


def decode_image(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> DecodedImage:
    """Decode bytes to RGB uint8, converting grey/RGBA/palette/16-bit and noting each conversion."""
    if len(data) == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    reason = _truncation_reason(data, Path(str(path)).suffix.lower())
    if reason:
        raise ImageReadError(path, reason)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(path, "not a decodable image")
    conversions: list[str] = []
    if _png_color_type(data) == 3:
        conversions.append("palette->rgb")
    if arr.dtype == np.uint16:
        arr = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
        conversions.append("16bit->8bit")
    elif arr.dtype != np.uint8:
        raise ImageReadError(path, f"unsupported pixel type {arr.dtype}", "convert it to 8- or 16-bit PNG")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        arr = cv2.cvtColor(arr.reshape(arr.shape[0], arr.shape[1]), cv2.COLOR_GRAY2RGB)
        conversions.append("grey->rgb")
    elif arr.shape[2] == 4:
        # as cv2.imread(IMREAD_COLOR) in the official scripts: alpha is dropped
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
        conversions.append("rgba->rgb (alpha dropped)")
    elif arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(path, f"unsupported channel count {arr.shape[2]}")
    return DecodedImage(path=str(path), rgb=np.ascontiguousarray(arr), conversions=conversions)


def read_image(path: str | os.PathLike[str]) -> DecodedImage:
    """Read an image file as RGB uint8; raises :class:`ImageReadError` naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file: {exc.strerror or exc}", "check the path and permissions") from exc
    return decode_image(data, path)


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB uint8 image atomically (PNG unless the suffix says otherwise)."""
    suffix = Path(path).suffix.lower() or ".png"
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def resize_to(rgb: np.ndarray, size: int = 512) -> np.ndarray:
    """Bilinear resize to size x size, as the official scripts do for aligned input of another size."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
