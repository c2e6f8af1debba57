"""Image decoding is bounded: header dimensions checked first, decoder errors mapped, 16-bit without float64."""
from __future__ import annotations

import struct
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest

from bench.core import imageio
from bench.core.imageio import HEADER_BYTES, ImageReadError, decode_image, header_size, read_image


def png_header_only(width: int, height: int, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` with a small (too short) IDAT: a decompression-bomb shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_header_size_matches_the_decoder(ext):
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, rgb)
    assert ok
    assert header_size(buf.tobytes()) == (53, 37)
    assert decode_image(buf.tobytes()).rgb.shape == (37, 53, 3)


def test_huge_png_refused_from_its_header(tmp_path):
    """Review: 50000x50000 raised cv2.error (aborting `restore`), 32768^2 took 4.1 GiB."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(50_000, 50_000))
    with pytest.raises(ImageReadError, match=r"50000x50000 pixels, over the 67,108,864-pixel limit") as err:
        read_image(path)
    assert str(path) in str(err.value) and "BFRBENCH_MAX_IMAGE_PIXELS" in str(err.value)


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    ok, buf = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))
    path = tmp_path / "a.png"
    path.write_bytes(buf.tobytes())
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "1000")
    with pytest.raises(ImageReadError, match="40x40 pixels, over the 1,000-pixel limit"):
        read_image(path)
    assert read_image(path, max_pixels=1600).rgb.shape == (40, 40, 3)


def test_every_decoder_error_is_an_unreadable_image_error(tmp_path, monkeypatch):
    ok, buf = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    path = tmp_path / "a.png"
    path.write_bytes(buf.tobytes())

    def boom(*a, **k):
        raise cv2.error("OpenCV(4.x) imdecode_: (-215:Assertion failed) pixels <= CV_IO_MAX_IMAGE_PIXELS")

    monkeypatch.setattr(imageio.cv2, "imdecode", boom)
    with pytest.raises(ImageReadError, match="the decoder failed .*CV_IO_MAX_IMAGE_PIXELS"):
        read_image(path)


def test_unknown_format_is_an_unreadable_image_error():
    with pytest.raises(ImageReadError, match="not a PNG, JPEG"):
        decode_image(b"P6\n2 2\n255\n" + b"\0" * 12, "x.ppm")


def test_16bit_conversion_is_exact_and_stays_in_integers():
    """round(v / 257) for every 16-bit value, with no float64 copy (the review saw 4.4 GiB for 486 KB)."""
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = np.round(values.astype(np.float64) / 257.0).astype(np.uint8)
    assert np.array_equal(imageio._to_8bit(values), expected)

    rgba16 = np.random.default_rng(1).integers(0, 65536, (512, 512, 4), dtype=np.uint16)
    ok, buf = cv2.imencode(".png", rgba16)
    assert ok
    tracemalloc.start()
    try:
        out = decode_image(buf.tobytes(), "rgba16.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.conversions == ["16bit->8bit", "rgba->rgb (alpha dropped)"]
    bgr8 = np.round(rgba16[..., :3].astype(np.float64) / 257).astype(np.uint8)
    assert np.array_equal(out.rgb, bgr8[..., ::-1])
    # decoded 16-bit buffer + uint8 outputs + row blocks: less than a float64 copy alone (4x the 16-bit bytes)
    assert peak < 4 * rgba16.nbytes, f"peak {peak:,} bytes for a {rgba16.nbytes:,}-byte 16-bit image"


def test_official_style_reader_is_bounded_too(tmp_path):
    from bench.engine.official import _read_rgb_tensor

    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(40_000, 40_000))
    with pytest.raises(ImageReadError, match="over the .*-pixel limit"):
        _read_rgb_tensor(path, 512)


def test_restore_skips_a_bomb_and_restores_the_rest(tmp_path, capsys):
    """Review: a 50000x50000 PNG raised cv2.error and `bfrbench restore` aborted the whole folder."""
    from bench.cli import main

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    (src / "bomb.png").write_bytes(png_header_only(50_000, 50_000))
    out = tmp_path / "out"
    assert main(["restore", "--method", "lq", "--input", str(src), "--output", str(out), "--aligned",
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]
    assert "bomb.png" in capsys.readouterr().out


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_mangled_files_only_ever_raise_the_unreadable_image_error(ext):
    """Random byte flips and cuts of a valid file: decoded, or ImageReadError; never another exception."""
    ok, buf = cv2.imencode(ext, np.random.default_rng(2).integers(0, 256, (48, 40, 3), dtype=np.uint8))
    good = bytearray(buf.tobytes())
    rng = np.random.default_rng(3)
    for _ in range(120):
        data = bytearray(good)
        for pos in rng.integers(0, min(len(data), 64), 3):  # headers live at the start
            data[pos] = int(rng.integers(0, 256))
        data = bytes(data[: int(rng.integers(1, len(data) + 1))]) if rng.random() < 0.3 else bytes(data)
        try:
            out = decode_image(data, f"x{ext}", max_pixels=1 << 20)
        except ImageReadError:
            continue
        assert out.rgb.dtype == np.uint8 and out.rgb.ndim == 3 and out.rgb.shape[2] == 3


def test_a_huge_sparse_file_is_refused_before_it_is_read(tmp_path):
    """A 3 GiB sparse file behind a valid 64x64 PNG header: refused from its header and size (issue 20, item 18)."""
    import os
    import subprocess
    import sys

    ok, buf = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))
    path = tmp_path / "sparse.png"
    with open(path, "wb") as fh:
        fh.write(buf.tobytes())
        fh.truncate(3 << 30)
    assert path.stat().st_size == 3 << 30
    with pytest.raises(ImageReadError, match="bytes for a 64x64 image"):
        read_image(path)
    (tmp_path / "zeros.png").write_bytes(b"")
    with open(tmp_path / "zeros.png", "wb") as fh:
        fh.truncate(3 << 30)
    with pytest.raises(ImageReadError, match="not a PNG"):
        read_image(tmp_path / "zeros.png")
    # what a process reads of it: its header alone (rchar: bytes its read() calls returned, measured around the
    # call, so imports and other tests' processes cannot count), and its own peak memory stays far below the file
    # (VmHWM: the peak RSS since exec; ru_maxrss of the children was the largest earlier child of this pytest)
    code = ("import re, sys; from pathlib import Path; from bench.core.imageio import read_image\n"
            "def rchar():\n    return int(re.search(r'rchar:\\s+(\\d+)', Path('/proc/self/io').read_text()).group(1))\n"
            "before = rchar()\n"
            "try:\n    read_image(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__)\n"
            "print(rchar() - before)\n"
            "print(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.split()
    assert out[0] == "ImageReadError", out
    assert int(out[1]) <= HEADER_BYTES + (64 << 10), out  # the header, not 3 GiB (nor a second header's worth)
    assert int(out[2]) * 1024 < 1 << 30, out  # VmHWM is in kB


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would wait for a writer forever
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path / "pipe.png")
