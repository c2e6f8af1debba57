"""Image reading and writing with the conventions of the official BFR scripts.

Pixels are decoded with OpenCV (as the official inference scripts do, so results match
theirs bit for bit) and returned as RGB uint8 arrays. Inputs that are grey, RGBA,
palette or 16-bit are converted, and each conversion is reported so a run can record it.
Files that are empty, truncated or undecodable raise :class:`ImageReadError`, which names
the file and the fix. The dimensions are read from the file header before anything is decoded,
and an image above :func:`pixel_limit` (``$BFRBENCH_MAX_IMAGE_PIXELS``, default 2^26, an
8192x8192 image) is refused, so a small crafted file cannot allocate gigabytes.
"""
from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.core.atomic import atomic_write_bytes
from bench.core.errors import ImageReadError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS_ENV = "BFRBENCH_MAX_IMAGE_PIXELS"
#: the default pixel cap: far above any benchmark image (512x512) or a large in-the-wild photo
DEFAULT_MAX_PIXELS = 1 << 26


@dataclass
class DecodedImage:
    """An RGB uint8 image (H, W, 3) and the conversions applied to reach it."""

    path: str
    rgb: np.ndarray
    conversions: list[str] = field(default_factory=list)
    #: the alpha channel (H, W) uint8 of an RGBA input, kept apart (benchmarks drop it; ``restore`` keeps it)
    alpha: np.ndarray | None = None


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden files skipped).

    A dangling symlink with an image name is listed too, so that reading it reports it as a bad
    file instead of it vanishing from the set.
    """
    root = Path(folder)
    return sorted(
        p for p in root.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.exists())) and is_image_file(p) and not p.name.startswith(".")
    )


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


def pixel_limit() -> int:
    """The largest width x height decoded: ``$BFRBENCH_MAX_IMAGE_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return DEFAULT_MAX_PIXELS


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    frame = _jpeg_frame(data)
    return None if frame is None else frame[:2]


def _jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, colour components) from a JPEG's start-of-frame header."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers: no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if pos + 10 > len(data):
                return None
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h, data[pos + 9]
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    dims: dict[int, int] = {}
    for i in range(count):
        entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            dims[tag] = struct.unpack(order + ("H" if typ == 3 else "I"), entry[8 : 10 if typ == 3 else 12])[0]
    return (dims[256], dims[257]) if len(dims) == 2 else None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, WebP or TIFF header, without decoding; None if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM" and len(data) >= 26:
            (dib,) = struct.unpack("<I", data[14:18])
            if dib == 12:
                return struct.unpack("<HH", data[18:22])
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind = data[12:16]
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if kind == b"VP8L":
                (bits,) = struct.unpack("<I", data[21:25])
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if kind == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            return None
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except struct.error:
        return None
    return None


def _to_8bit(arr: np.ndarray, rows: int = 32) -> np.ndarray:
    """16-bit -> 8-bit as ``round(v / 257)``, in integer arithmetic and row blocks (no float64 copy)."""
    out = np.empty(arr.shape, np.uint8)
    for start in range(0, arr.shape[0], rows):
        block = arr[start : start + rows]
        q, r = np.divmod(block, np.uint16(257))
        q += r >= 129  # v / 257 is never exactly k + 0.5, so this is round-half-anything
        out[start : start + rows] = q
    return out


def _png_color_type(data: bytes) -> int | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26:
        return data[25]
    return None


def decode_image(
    data: bytes, path: str | os.PathLike[str] = "<bytes>", *, max_pixels: int | None = None,
) -> DecodedImage:
    """Decode bytes to RGB uint8, converting grey/RGBA/palette/16-bit and noting each conversion.

    The header's dimensions are checked against ``max_pixels`` (default :func:`pixel_limit`)
    before decoding; every decoder failure becomes :class:`ImageReadError`.
    """
    if len(data) == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    reason = _truncation_reason(data, Path(str(path)).suffix.lower())
    if reason:
        raise ImageReadError(path, reason)
    check_bounded(data, path, max_pixels=max_pixels)
    try:
        return _decode(data, path)
    except ImageReadError:
        raise
    except (cv2.error, MemoryError, ValueError, OverflowError) as exc:
        raise ImageReadError(path, f"the decoder failed ({type(exc).__name__}: {str(exc).strip()[:200]})") from exc


def check_bounded(data: bytes, path: str | os.PathLike[str] = "<bytes>", *, max_pixels: int | None = None) -> None:
    """Refuse (:class:`ImageReadError`) an image whose header is unknown or whose size passes the pixel cap."""
    size = header_size(data)
    if size is None:
        raise ImageReadError(path, "not a PNG, JPEG, BMP, WebP or TIFF image (or its header is damaged)")
    limit = max_pixels or pixel_limit()
    if 0 in size:
        raise ImageReadError(path, f"{size[0]}x{size[1]} pixels: an empty image")
    if size[0] * size[1] > limit:
        raise ImageReadError(
            path, f"{size[0]}x{size[1]} pixels, over the {limit:,}-pixel limit",
            f"downscale it, or raise the limit with {MAX_PIXELS_ENV}=N",
        )


def _decode(data: bytes, path: str | os.PathLike[str]) -> DecodedImage:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(path, "not a decodable image")
    conversions: list[str] = []
    alpha = None
    if _png_color_type(data) == 3:
        conversions.append("palette->rgb")
    if data[:2] == b"\xff\xd8" and (_jpeg_frame(data) or (0, 0, 3))[2] == 4:
        conversions.append("cmyk->rgb")  # OpenCV's decoder converts four-component (CMYK/YCCK) JPEGs
    if arr.dtype == np.uint16:
        arr = _to_8bit(arr)
        conversions.append("16bit->8bit")
    elif arr.dtype != np.uint8:
        raise ImageReadError(path, f"unsupported pixel type {arr.dtype}", "convert it to 8- or 16-bit PNG")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        arr = cv2.cvtColor(arr.reshape(arr.shape[0], arr.shape[1]), cv2.COLOR_GRAY2RGB)
        conversions.append("grey->rgb")
    elif arr.shape[2] == 4:
        # as cv2.imread(IMREAD_COLOR) in the official scripts: alpha is dropped from the image
        alpha = np.ascontiguousarray(arr[:, :, 3])
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
        conversions.append("rgba->rgb (alpha dropped)")
    elif arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(path, f"unsupported channel count {arr.shape[2]}")
    return DecodedImage(path=str(path), rgb=np.ascontiguousarray(arr), conversions=conversions, alpha=alpha)


#: bytes read first: enough for the header of any supported format (a JPEG's frame header may
#: follow up to a few 64 KiB metadata segments)
HEADER_BYTES = 1 << 18
#: metadata an encoded file may carry beyond its pixels (EXIF, ICC profiles, thumbnails)
METADATA_ALLOWANCE = 16 << 20


def max_file_bytes(width: int, height: int) -> int:
    """The largest file an image of this size may be: 16-bit RGBA stored raw, plus metadata."""
    return 8 * width * height + 16 * height + METADATA_ALLOWANCE


def _read_bounded(path: str | os.PathLike[str], max_pixels: int | None) -> bytes:
    """The bytes of a regular image file whose header and size were checked before the whole file was read."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise ImageReadError(path, f"dangling symlink (its target {os.readlink(p)} does not exist)",
                             "point the link at an existing file, or remove it")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file: {exc.strerror or exc}", "check the path and permissions") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(path, "not a regular file (a FIFO, device or folder)", "give an image file")
        try:
            head = fh.read(HEADER_BYTES)
            if len(head) >= st.st_size:
                return head
            check_bounded(head, path, max_pixels=max_pixels)
            w, h = header_size(head) or (0, 0)
            if st.st_size > max_file_bytes(w, h):
                raise ImageReadError(path, f"{st.st_size:,} bytes for a {w}x{h} image: far more than its pixels "
                                     "need (a damaged or padded file)", "re-save the image")
            return head + fh.read(st.st_size - len(head))
        except OSError as exc:
            raise ImageReadError(path, f"cannot read file: {exc.strerror or exc}",
                                 "check the path and permissions") from exc


def probe_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of an image file from its header, after every check :func:`read_image` makes
    before decoding (regular file, known header, pixel and size bounds, truncation); no decoding."""
    data = _read_bounded(path, max_pixels)
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    reason = _truncation_reason(data, Path(path).suffix.lower())
    if reason:
        raise ImageReadError(path, reason)
    check_bounded(data, path, max_pixels=max_pixels)
    w, h = header_size(data) or (0, 0)
    return w, h


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> DecodedImage:
    """Read an image file as RGB uint8; raises :class:`ImageReadError` naming the file.

    Only a regular file is read (a FIFO or device is refused without blocking), and its header
    and size are checked before the whole file is: a huge or sparse file never reaches memory.
    """
    return decode_image(_read_bounded(path, max_pixels), path, max_pixels=max_pixels)


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB (or RGBA: H, W, 4) uint8 image atomically (PNG unless the suffix says otherwise)."""
    suffix = Path(path).suffix.lower() or ".png"
    code = cv2.COLOR_RGBA2BGRA if rgb.ndim == 3 and rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(rgb, code))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def resize_to(rgb: np.ndarray, size: int = 512) -> np.ndarray:
    """Bilinear resize to size x size, as the official scripts do for aligned input of another size."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
