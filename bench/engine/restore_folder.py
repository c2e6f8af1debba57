"""``restore``'s pipeline below the command: list the inputs, read, restore (aligned or whole), write, count.

One bad file is skipped with one line and never stops the rest; the command only parses and presents.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.device import to_uint8
from bench.core.errors import UserError
from bench.core.imageio import DecodedImage, ImageReadError, list_images, read_image, resize_to, write_image
from bench.core.progress import progress
from bench.engine.step import Engine, PreparedMethod


def say(line: str) -> None:
    """One console line, flushed at once (the per-image lines interleave with the progress bar)."""
    print(line, flush=True)


def list_inputs(src: Path) -> list[Path]:
    """The images ``--input`` names: the file itself, or a folder's images; one line for none."""
    if src.is_file():
        files = [src]
    elif src.is_dir():
        files = list_images(src)
    else:
        raise UserError(f"--input {src}: no such file or folder")
    if not files:
        raise UserError(f"--input {src}: no images (.png/.jpg/.bmp/.webp/.tif) found")
    return files


@dataclass
class RestoreJob:
    """What to restore where: the inputs, each one's output name, and how (aligned crops or whole images)."""

    files: list[Path]
    out_dir: Path
    out_names: dict[Path, str]
    aligned: bool
    batch_size: int
    upscale: int = 1
    pipeline: Any = None  # a bench.data.whole_image.WholePipeline; None: the fast one
    quiet: bool = False
    label: str = "restore"


@dataclass
class RestoreCount:
    """What a folder restore did: images written, inputs skipped, faces restored (whole images)."""

    written: int = 0
    skipped: list[Path] = field(default_factory=list)
    faces: int = 0


class FolderRestorer:
    """Runs one prepared method over a :class:`RestoreJob`, counting as it goes."""

    def __init__(self, engine: Engine, prepared: PreparedMethod, size: int, job: RestoreJob) -> None:
        self.engine, self.prepared, self.size, self.job = engine, prepared, size, job
        self.count = RestoreCount()
        self.bar = progress(len(job.files), job.label, job.quiet)

    def run(self) -> RestoreCount:
        """Restore every input; the progress bar is closed before this returns."""
        (self._aligned if self.job.aligned else self._whole)()
        self.bar.close()
        return self.count

    def _read(self, f: Path) -> DecodedImage | None:
        """The decoded image, or None after saying why it is skipped (one bad file never stops the rest)."""
        try:
            return read_image(f)
        except ImageReadError as exc:
            say(f"skipped {exc}")
            self.count.skipped.append(f)
            self.bar.update(1)
            return None

    def _batch(self, faces: list[np.ndarray], keys: list[str] | None = None) -> list[np.ndarray]:
        x = torch.stack([torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1) for f in faces])
        y = self.engine.restore(self.prepared, x, keys)
        return list(to_uint8(y).permute(0, 2, 3, 1).cpu().numpy())

    def _write(self, f: Path, img: np.ndarray) -> None:
        write_image(self.job.out_dir / self.job.out_names[f], img)
        self.count.written += 1

    def _aligned(self) -> None:
        batch: list[tuple[Path, np.ndarray]] = []

        def flush() -> None:
            for (f, _), out in zip(batch, self._batch([img for _, img in batch], [f.name for f, _ in batch])):
                self._write(f, out)
            self.bar.update(len(batch))
            batch.clear()

        for f in self.job.files:
            img = self._read(f)
            if img is None:
                continue
            batch.append((f, resize_to(img.rgb, self.size)))
            if len(batch) == self.job.batch_size:
                flush()
        if batch:
            flush()

    def _restore_crops(self, crops: list[np.ndarray], name: str = "") -> list[np.ndarray]:
        """The faces of one photo in batches; a stochastic method's noise keyed by (photo name, face index)."""
        n = self.job.batch_size
        keys = [f"{name}#face{i}" for i in range(len(crops))]
        return [face for i in range(0, len(crops), n) for face in self._batch(crops[i:i + n], keys[i:i + n])]

    def _whole(self) -> None:
        from bench.data.whole_image import restore_whole

        job = self.job
        for f in job.files:
            img = self._read(f)
            if img is None:
                continue
            try:
                result = restore_whole(img.rgb, partial(self._restore_crops, name=f.name), size=self.size,
                                       upscale=job.upscale, alpha=img.alpha, pipeline=job.pipeline)
            except ValueError as exc:  # e.g. landmarks no similarity fits: this image only, never the run
                say(f"skipped {f}: {exc}")
                self.count.skipped.append(f)
                self.bar.update(1)
                continue
            self.bar.update(1)
            self.count.faces += result.faces
            if not result.faces:
                say(f"{f}: no face found; written {'unchanged' if job.upscale == 1 else 'upscaled'}")
            elif not job.quiet:
                say(f"{f.name}: {result.faces} face{'s' if result.faces > 1 else ''}")
            self._write(f, result.image)


def restore_folder(engine: Engine, prepared: PreparedMethod, size: int, job: RestoreJob) -> RestoreCount:
    """Restore ``job``'s inputs with the prepared method (``size``: its input side) and count what happened."""
    return FolderRestorer(engine, prepared, size, job).run()


__all__ = ["RestoreCount", "RestoreJob", "list_inputs", "restore_folder", "say"]

