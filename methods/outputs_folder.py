"""``outputs:DIR`` and ``outputs:LABEL=DIR``: a folder of restored images scored as a method.

DIR holds one subfolder per benchmark (``DIR/celeba-test/*.png``) or, for a single dataset, the
images directly. Outputs match the dataset's LQ images by file stem, whatever the extension.
Each problem is named: a missing output, an extra file, two files with one stem, a wrong size
(resized to 512 and recorded, or refused with ``--strict``) and an undecodable file. A missing
or refused output is a failed image of the run (its ``n`` shows it), never silently dropped.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.errors import UserError
from bench.core.filehash import file_identity
from bench.core.imageio import ImageReadError, list_images, probe_image, read_image, resize_to
from bench.core.registry import METHODS, Entry
from methods.base import MethodInfo, RestorationMethod

PREFIX = "outputs"


def printable(text: str) -> str:
    """``text`` with every control character (a newline in a folder name) shown escaped, for tables."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def parse_outputs_spec(spec: str) -> tuple[str, str]:
    """``outputs:DIR`` -> (folder name, DIR); ``outputs:LABEL=DIR`` -> (LABEL, DIR).

    An existing folder whose name holds ``=`` (``outputs:run=1``) is DIR, not LABEL=DIR. A label
    may not hold control characters (it is printed in tables).
    """
    rest = spec.strip().split(":", 1)[1] if ":" in spec else ""
    label, eq, folder = rest.partition("=")
    if not eq or not label.strip() or any(c in label for c in "/\\") or Path(rest.strip()).expanduser().is_dir():
        label, folder = "", rest
    folder = folder.strip()
    if not folder:
        raise UserError(f"method {spec!r}: name the folder, e.g. outputs:results/mine or outputs:mine=results/mine")
    if label and not label.strip().isprintable():
        raise UserError(f"method {printable(spec)}: the label {printable(label.strip())} holds control characters",
                        "give a label of printable characters")
    label = label.strip() or printable(Path(folder.rstrip("/\\")).name or folder)
    return label, folder


def folder_content_hash(files: list[Path]) -> str:
    """SHA-256 over (file name, SHA-256 of its bytes) of every image, sorted by name.

    A file that cannot be read (a dangling or looping symlink) enters as its reason: reading it
    later makes that image an error row, the run goes on.
    """
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0" + file_identity(path).encode() + b"\n")
    return h.hexdigest()


class OutputsFolder(RestorationMethod):
    """Reads restored images from a folder by the dataset's image names instead of restoring."""

    name = PREFIX
    reads_outputs = True
    binds_dataset = True

    def __init__(self, folder: str, strict: bool = False, size: int = 512) -> None:
        super().__init__(folder=str(Path(folder).expanduser().resolve()), strict=bool(strict))
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise UserError(f"outputs folder {folder} does not exist or is not a folder; give the folder of your "
                            "restored images (one subfolder per benchmark, or the images directly)")
        self.strict = bool(strict)
        self.size = size
        self.dataset: str | None = None
        self.subfolder: Path | None = None
        self.files: dict[str, Path] = {}
        self.content_hash = ""

    def _locate(self, names: tuple[str, ...]) -> Path | None:
        """``DIR/<dataset>`` (any of its names, any letter case), else DIR when it holds images directly."""
        subdirs = {p.name.lower(): p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
        for dataset in names:
            short = dataset.split(":", 1)[-1].rstrip("/\\")
            for key in (dataset.lower(), Path(short).name.lower()):
                if key in subdirs:
                    return subdirs[key]
        return self.folder if list_images(self.folder) else None

    def bind_dataset(self, dataset: str, pairs: list[Any], aliases: tuple[str, ...] = (),
                     known: list[str] | None = None, workdir: Path | None = None) -> dict[str, Any]:
        """Match this dataset's images to the folder's files; returns the validation report (``workdir`` unused).

        ``known``: every image name of the dataset when ``pairs`` is a part of it (``--limit``):
        outputs of the images left out are not "extra files".
        """
        self.dataset = dataset
        self.subfolder = self._locate((dataset, *aliases))
        files = list_images(self.subfolder) if self.subfolder is not None else []
        by_stem: dict[str, list[Path]] = {}
        for f in files:
            by_stem.setdefault(f.stem, []).append(f)
        self.files = {stem: paths[0] for stem, paths in by_stem.items()}
        expected = {p.name for p in pairs}
        missing = sorted(expected - set(self.files))
        of_dataset = expected | set(known or ())
        extra = sorted(p.name for stem, paths in by_stem.items() if stem not in of_dataset for p in paths)
        duplicates = {stem: [p.name for p in paths] for stem, paths in by_stem.items() if len(paths) > 1}
        self.content_hash = folder_content_hash(files)
        undecodable, wrong_size = self._probe(sorted(expected & set(self.files)))
        problems = [f"missing output for {n} (no {n}.* in {self.subfolder or self.folder})" for n in missing]
        problems += [f"undecodable output {self.files[n]}: {why}" for n, why in undecodable.items()]
        problems += [f"wrong size output {self.files[n]}: {size}, expected {self.size}x{self.size} "
                     + ("(refused: --strict)" if self.strict else f"(resized to {self.size}x{self.size})")
                     for n, size in wrong_size.items()]
        problems += [f"extra file {n}: no image of {dataset} has this name (ignored)" for n in extra]
        problems += [f"two files for {s}: {', '.join(v)} " + ("(refused: --strict; keep one)" if self.strict
                                                               else f"(using {v[0]})")
                     for s, v in sorted(duplicates.items())]
        self.duplicates = duplicates
        return {
            "folder": str(self.folder),
            "subfolder": str(self.subfolder) if self.subfolder else None,
            "content_hash": self.content_hash,
            "files": len(files),
            "matched": len(expected & set(self.files)),
            "expected": len(expected),
            "missing": missing,
            "extra": extra,
            "duplicates": duplicates,
            "undecodable": undecodable,
            "wrong_size": wrong_size,
            "strict": self.strict,
            "problems": problems,
        }

    def _probe(self, names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """The matched outputs that cannot be decoded ({name: reason}) or are not SxS ({name: "WxH"}),
        from their headers and structure only (no decoding), so they are named before the run."""
        bad, wrong = {}, {}
        for name in names:
            try:
                w, h = probe_image(self.files[name])
            except ImageReadError as exc:
                bad[name] = exc.reason
                continue
            if (w, h) != (self.size, self.size):
                wrong[name] = f"{w}x{h}"
        return bad, wrong

    def output_file(self, name: str) -> str | None:
        path = self.files.get(name)
        return str(path) if path is not None else None

    def info(self) -> MethodInfo:
        params = {"folder": str(self.folder), "strict": self.strict}
        if self.dataset is not None:
            params.update(dataset=self.dataset, content_hash=self.content_hash)
        return MethodInfo(name=self.name, params=params, weights=[])

    def _read(self, name: str) -> tuple[np.ndarray | None, str, list[str]]:
        """(RGB image or None, failure reason, conversions) for one image name."""
        path = self.files.get(name)
        if path is None:
            where = self.subfolder or self.folder
            return None, f"missing output: no {name}.* in {where} (restore this image or remove it from the set)", []
        if self.strict and len(getattr(self, "duplicates", {}).get(name, ())) > 1:
            return None, (f"two outputs for {name}: {', '.join(self.duplicates[name])} (--strict refuses to choose; "
                          "keep one)"), []
        try:
            img = read_image(path)
        except ImageReadError as exc:
            return None, f"undecodable output {exc.path}: {exc.reason} ({exc.fix})", []
        conv = [f"output: {c}" for c in img.conversions]
        rgb = img.rgb
        h, w = rgb.shape[:2]
        if (h, w) != (self.size, self.size):
            if self.strict:
                return None, (f"wrong size output {path}: {w}x{h}, expected {self.size}x{self.size} "
                              "(--strict refuses it; save 512x512 outputs or drop --strict to resize)"), conv
            conv.append(f"output: wrong size {w}x{h}, resized to {self.size}x{self.size} (bilinear)")
            rgb = resize_to(rgb, self.size)
        return rgb, "", conv

    def restore_named(
        self, names: list[str], lq: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, str], dict[str, list[str]]]:
        """The outputs of ``names`` (B', 3, S, S) in [0, 1], the failed names with reasons, and conversions."""
        images, failed, conversions = [], {}, {}
        for name in names:
            rgb, reason, conv = self._read(name)
            if conv:
                conversions[name] = conv
            if rgb is None:
                failed[name] = reason
                continue
            images.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
        if images:
            out = torch.stack(images).to(lq.device, torch.float32) / 255.0
        else:
            out = torch.empty(0, 3, self.size, self.size, device=lq.device)
        return out, failed, conversions

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("an outputs folder is read by image name: the runner calls restore_named")


def _resolver(rest: str) -> Entry:
    """``outputs:DIR`` or ``outputs:LABEL=DIR``: the entry reads DIR; its ``label`` names it in every table."""
    label, folder = parse_outputs_spec(f"{PREFIX}:{rest}")

    def factory(strict: bool = False, weights: Any = None) -> OutputsFolder:
        if weights is not None:
            raise UserError(f"outputs:{folder} takes no weights")
        return OutputsFolder(folder, strict=strict)

    return Entry(name=f"{PREFIX}:{folder}", factory=factory,
                 meta={"description": "restored images read from a folder", "takes_quality": False, "label": label})


METHODS.add_resolver(PREFIX, _resolver)

__all__ = ["OutputsFolder", "parse_outputs_spec", "folder_content_hash", "PREFIX"]
