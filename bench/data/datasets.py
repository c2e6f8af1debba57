"""Benchmark test sets: where they live on disk, how LQ and GT pair up, and validation.

The standard BFR test sets are fetched by :mod:`bench.data.fetch` where a hashed source serves them (else
users unpack them) under :func:`data_root` (``$BFRBENCH_DATA`` or ``./datasets``)
in the layout of the releases, ``<set>/lq/*.png`` and, for CelebA-Test, ``<set>/gt/*.png``.
The folder names of the common release archives (``celeba_512_validation[_lq]``,
``lfw_cropped_faces``, ``Wider-Test``, ...) are accepted too. ``folder:LQ_DIR`` (or
``folder:LQ_DIR::GT_DIR``) evaluates any folder of aligned faces.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import UserError
from bench.core.imageio import ImageReadError, is_image_file, list_images, read_image
from bench.core.registry import DATASETS, Entry

BENCH_SIZE = 512
#: the DAEFR test-set repository (a dataset repo): CelebA-Test LQ and GT, LFW-Test, WIDER-Test, with SHA-256s
HUB_REPO = "LIAGM/DAEFR_test_datasets"
README_HINT = "see datasets/README.md"


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against the working directory, ``..`` folded, symlinks kept."""
    return Path(os.path.abspath(Path(path).expanduser()))


def data_root() -> Path:
    """Where benchmark sets live: ``$BFRBENCH_DATA`` or ``./datasets``."""
    return Path(os.environ.get("BFRBENCH_DATA") or "datasets").expanduser()


@dataclass
class ImagePair:
    """One test image: its name (file stem), LQ path and GT path (None for LQ-only sets)."""

    name: str
    lq_path: Path
    gt_path: Path | None = None
    #: why this entry cannot be used (e.g. a second file with the same stem); None for a usable pair
    problem: str | None = None


@dataclass
class Problem:
    """One validation finding about one file (or the folder)."""

    path: str
    reason: str
    severity: str = "error"  # "error": unusable or unpaired; "warning": usable but off-standard

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.path}: {self.reason}"


@dataclass
class ValidationReport:
    """What :meth:`BenchmarkSet.validate` found: counts, sizes, conversions and each problem file."""

    dataset: str
    lq_dir: Path
    gt_dir: Path | None
    expected_count: int | None
    n_lq: int = 0
    n_gt: int = 0
    n_pairs: int = 0
    sizes: Counter = field(default_factory=Counter)
    conversions: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when every file is usable and every LQ has its GT (warnings allowed)."""
        return not self.errors

    def problem_paths(self, severity: str | None = None) -> dict[str, str]:
        """``{file name: reason}`` (the last reason wins if a file has several)."""
        return {Path(p.path).name: p.reason for p in self.problems if severity in (None, p.severity)}

    def summary(self, limit: int = 20) -> str:
        head = f"{self.dataset}: {self.n_lq} LQ"
        if self.gt_dir is not None:
            head += f", {self.n_gt} GT, {self.n_pairs} pairs"
        if self.expected_count is not None:
            head += f" (expected {self.expected_count})"
        sizes = ", ".join(f"{w}x{h}: {n}" for (w, h), n in self.sizes.most_common(4))
        lines = [head, f"  folder: {self.lq_dir}" + (f" | GT: {self.gt_dir}" if self.gt_dir else "")]
        if sizes:
            lines.append(f"  sizes: {sizes}")
        lines.append(f"  {len(self.errors)} errors, {len(self.warnings)} warnings")
        for p in self.problems[:limit]:
            lines.append(f"  {p}")
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    __str__ = summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "lq_dir": str(self.lq_dir),
            "gt_dir": str(self.gt_dir) if self.gt_dir else None,
            "expected_count": self.expected_count,
            "n_lq": self.n_lq,
            "n_gt": self.n_gt,
            "n_pairs": self.n_pairs,
            "ok": self.ok,
            "sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.items()},
            "conversions": self.conversions,
            "problems": [{"path": p.path, "reason": p.reason, "severity": p.severity} for p in self.problems],
        }


@dataclass(frozen=True)
class DatasetSpec:
    """A standard benchmark: its name, counts, accepted layouts and where to get it."""

    name: str
    title: str
    has_gt: bool
    expected_count: int | None
    #: (LQ folder, GT folder or None) relative to the data root, tried in order
    layouts: tuple[tuple[str, str | None], ...]
    description: str = ""
    download: str = ""
    #: the set's published content fingerprint (bench.data.fingerprint), "" where none is known
    published_fingerprint: str = ""
    #: archives on the Hugging Face hub (:data:`HUB_REPO`) as (file name, "lq" or "gt"); () where none serves it
    hub: tuple[tuple[str, str], ...] = ()
    #: where to get a set no hashed source serves (one line, ``bfrbench fetch`` prints it)
    manual: str = ""


def _layouts(dirs: tuple[str, ...], gt: bool, extra: tuple[tuple[str, str | None], ...] = ()) -> tuple:
    out: list[tuple[str, str | None]] = []
    for d in dirs:
        for lq_name, gt_name in (("lq", "gt"), ("LQ", "GT"), ("lq", "hq"), ("LQ", "HQ")):
            out.append((f"{d}/{lq_name}", f"{d}/{gt_name}" if gt else None))
    out.extend(extra)
    if not gt:  # LQ-only releases are often a flat folder of images
        out.extend((d, None) for d in dirs)
    return tuple(dict.fromkeys(out))


SPECS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec(
            "celeba-test", "CelebA-Test", True, 3000,
            _layouts(
                ("celeba-test", "CelebA-Test", "celeba_test", "celeba"),
                gt=True,
                extra=(
                    ("celeba/celeba_512_validation_lq", "celeba/celeba_512_validation"),
                    ("celeba_512_validation_lq", "celeba_512_validation"),
                    ("CelebA-Test/celeba_512_validation_lq", "CelebA-Test/celeba_512_validation"),
                    ("self_celeba_512_v2", "celeba_512_validation"),
                    ("faces/validation/lq", "faces/validation/gt"),
                ),
            ),
            "3,000 CelebA-HQ faces degraded with GFPGAN's synthetic pipeline (paired GT)",
            "GFPGAN / CodeFormer / VQFR release: celeba_512_validation.zip (GT) + celeba_512_validation_lq.zip (LQ)",
            hub=(("self_celeba_512_v2.zip", "lq"), ("celeba_512_validation.zip", "gt")),
        ),
        DatasetSpec(
            "lfw-test", "LFW-Test", False, 1711,
            _layouts(("lfw-test", "LFW-Test", "lfw_test", "lfw_cropped_faces", "lfw"), gt=False,
                     extra=(("faces/real_world/lfw_test/lq", None),)),
            "first image of each LFW identity, aligned (1,711 real LQ faces)",
            "GFPGAN / VQFR / DAEFR release: lfw_cropped_faces.zip",
            hub=(("lfw_cropped_faces.zip", "lq"),),
        ),
        DatasetSpec(
            "webphoto-test", "WebPhoto-Test", False, 407,
            _layouts(("webphoto-test", "WebPhoto-Test", "webphoto_test", "WebPhoto"), gt=False,
                     extra=(("faces/real_world/webphoto_test/lq", None),)),
            "407 real old photos from the web (GFPGAN paper)",
            "GFPGAN release: WebPhoto-Test",
            manual="no source serves it with hashes: download WebPhoto-Test from the test-set links of "
                   "github.com/wzhouxiff/RestoreFormerPlusPlus (OneDrive/BaiduYun) and put its 407 images in {lq}",
        ),
        DatasetSpec(
            "wider-test", "WIDER-Test", False, 970,
            _layouts(("wider-test", "WIDER-Test", "Wider-Test", "wider_test", "wider"), gt=False,
                     extra=(("faces/real_world/wider_test/lq", None),)),
            "970 heavily degraded faces from WIDER Face (CodeFormer paper)",
            "CodeFormer release: Wider-Test.zip",
            hub=(("Wider-Test.zip", "lq"),),
        ),
        DatasetSpec(
            "celebchild-test", "CelebChild-Test", False, 180,
            _layouts(("celebchild-test", "CelebChild-Test", "celebchild_test", "CelebChild", "Child"), gt=False),
            "180 celebrity childhood photos (GFPGAN paper)",
            "GFPGAN release: CelebChild-Test",
            manual="no source serves it with hashes: download CelebChild-Test from the test-set links of "
                   "github.com/wzhouxiff/RestoreFormerPlusPlus (OneDrive/BaiduYun) and put its 180 images in {lq}",
        ),
    )
}


def _has_images(folder: Path) -> bool:
    try:
        return any(p.is_file() and is_image_file(p) and not p.name.startswith(".") for p in folder.iterdir())
    except OSError:
        return False


def locate(spec: DatasetSpec, root: Path | None = None) -> tuple[Path, Path | None]:
    """The (LQ, GT) folders of a set under ``root``: the first layout whose LQ folder has images,
    else the first whose LQ folder exists, else the canonical layout (which does not exist)."""
    root = data_root() if root is None else Path(root)
    existing = None
    for lq, gt in spec.layouts:
        lq_dir = root / lq
        if lq_dir.is_dir():
            gt_dir = root / gt if gt else None
            if _has_images(lq_dir):
                return lq_dir, gt_dir
            existing = existing or (lq_dir, gt_dir)
    if existing:
        return existing
    lq, gt = spec.layouts[0]
    return root / lq, (root / gt if gt else None)


class BenchmarkSet:
    """A folder of LQ faces (and optionally GT faces with the same file stems)."""

    def __init__(
        self,
        name: str,
        lq_dir: str | os.PathLike[str],
        gt_dir: str | os.PathLike[str] | None = None,
        expected_count: int | None = None,
        title: str | None = None,
        download_hint: str = "",
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.title = title or name
        # absolute (normalised, links kept): per_image.parquet stores these paths, and a run folder
        # must mean the same files wherever it is opened from
        self.lq_dir = _absolute(lq_dir)
        self.gt_dir = _absolute(gt_dir) if gt_dir is not None else None
        self.expected_count = expected_count
        self.download_hint = download_hint
        self._prepare = prepare

    @property
    def has_gt(self) -> bool:
        return self.gt_dir is not None

    @property
    def root(self) -> Path:
        """The set's folder (the parent of ``lq/``, or the LQ folder itself for flat layouts)."""
        return self.lq_dir.parent if self.lq_dir.name.lower() == "lq" else self.lq_dir

    def __repr__(self) -> str:
        return f"BenchmarkSet({self.name!r}, lq={str(self.lq_dir)!r}, gt={str(self.gt_dir) if self.gt_dir else None!r})"

    def ensure(self) -> None:
        """Build the set if it is generated on first use (the demo); a no-op otherwise."""
        if self._prepare is not None:
            self._prepare()

    def _missing_error(self, folder: Path, what: str) -> UserError:
        how = f"download {self.title} ({self.download_hint}) and unpack it there" if self.download_hint else (
            "put the aligned 512x512 face images there"
        )
        where = f" or set BFRBENCH_DATA to the folder that holds the sets (now {data_root()})" if self.download_hint else ""
        return UserError(f"{self.name}: {what} {folder}: {how}{where}; {README_HINT}")

    def _listing(self, folder: Path, kind: str) -> list[Path]:
        if not folder.is_dir():
            raise self._missing_error(folder.absolute(), f"{kind} folder not found:")
        files = list_images(folder)
        if not files:
            raise self._missing_error(folder.absolute(), f"no {kind} images (.png/.jpg/...) in")
        return files

    def _by_stem(self, files: list[Path]) -> tuple[dict[str, Path], list[Path]]:
        out: dict[str, Path] = {}
        dups: list[Path] = []
        for f in files:
            if f.stem in out:
                dups.append(f)
            else:
                out[f.stem] = f
        return out, dups

    def pairs(self) -> list[ImagePair]:
        """Every LQ image, sorted by name, with its GT partner (None when the set or the file has none)."""
        self.ensure()
        lq, lq_dups = self._by_stem(self._listing(self.lq_dir, "LQ"))
        gt: dict[str, Path] = {}
        gt_dups: list[Path] = []
        if self.gt_dir is not None:
            gt, gt_dups = self._by_stem(self._listing(self.gt_dir, "GT"))
        pairs = [ImagePair(name, path, gt.get(name)) for name, path in sorted(lq.items())]
        # a second file with a taken stem is a bad file of its own (named by its file name), never dropped silently
        for kind, dups, kept in (("LQ", lq_dups, lq), ("GT", gt_dups, gt)):
            for d in dups:
                name = d.name if kind == "LQ" else f"{d.name} (GT)"
                pairs.append(ImagePair(name, d, None, problem=(
                    f"{d}: duplicate name: {kept[d.stem].name} has the same stem and is used instead "
                    "(rename or remove one of them)")))
        return pairs

    def validate(self, decode: bool = True, workers: int = 4) -> ValidationReport:
        """Check every file: decodable, not truncated or empty, paired, counted and sized.

        Never raises for bad files: each one is listed with its reason. A missing or empty
        folder is reported as an error problem (the message names the fix).
        """
        report = ValidationReport(self.name, self.lq_dir, self.gt_dir, self.expected_count)
        try:
            self.ensure()
        except UserError as exc:
            report.problems.append(Problem(str(self.root), str(exc)))
            return report
        lq_files: list[Path] = []
        gt_files: list[Path] = []
        for kind, folder, dest in (("LQ", self.lq_dir, lq_files), ("GT", self.gt_dir, gt_files)):
            if folder is None:
                continue
            try:
                dest.extend(self._listing(folder, kind))
            except UserError as exc:
                report.problems.append(Problem(str(folder), str(exc)))
                continue
            for other in sorted(folder.iterdir()):
                if other.is_file() and not other.name.startswith(".") and not is_image_file(other):
                    report.problems.append(Problem(str(other), "not an image file (ignored)", "warning"))
        lq, lq_dups = self._by_stem(lq_files)
        gt, gt_dups = self._by_stem(gt_files)
        for d in lq_dups + gt_dups:
            report.problems.append(Problem(str(d), "duplicate name: another file has the same stem (ignored)"))
        report.n_lq, report.n_gt = len(lq), len(gt)
        if self.gt_dir is not None and gt_files:
            for name in sorted(set(lq) - set(gt)):
                report.problems.append(Problem(str(lq[name]), f"LQ without GT partner (no {name}.* in {self.gt_dir})"))
            for name in sorted(set(gt) - set(lq)):
                report.problems.append(Problem(str(gt[name]), f"GT without LQ partner (no {name}.* in {self.lq_dir})", "warning"))
            report.n_pairs = len(set(lq) & set(gt))
        if self.expected_count is not None and lq and len(lq) != self.expected_count:
            report.problems.append(
                Problem(str(self.lq_dir), f"unexpected count: {len(lq)} LQ images, the benchmark has "
                        f"{self.expected_count} (results are not comparable with published numbers)", "warning")
            )
        if decode:
            sizes = self._check_files(report, sorted(lq.values()) + sorted(gt.values()), workers)
            for name in sorted(set(lq) & set(gt)):
                a, b = sizes.get(lq[name]), sizes.get(gt[name])
                if a and b and a != b:
                    report.problems.append(
                        Problem(str(lq[name]), f"LQ is {a[0]}x{a[1]} but its GT is {b[0]}x{b[1]}", "warning")
                    )
        return report

    @staticmethod
    def _check_files(report: ValidationReport, files: list[Path], workers: int) -> dict[Path, tuple[int, int]]:
        def check(path: Path) -> tuple[Path, tuple[int, int] | None, list[str], str | None]:
            try:
                img = read_image(path)
            except ImageReadError as exc:
                return path, None, [], exc.reason
            h, w = img.rgb.shape[:2]
            return path, (w, h), img.conversions, None

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(check, files))
        sizes: dict[Path, tuple[int, int]] = {}
        for path, size, conv, err in results:
            if err:
                report.problems.append(Problem(str(path), err))
                continue
            assert size is not None
            sizes[path] = size
            report.sizes[size] += 1
            if conv:
                report.conversions[str(path)] = conv
                report.problems.append(Problem(str(path), f"converted on reading: {', '.join(conv)}", "warning"))
            if size != (BENCH_SIZE, BENCH_SIZE):
                report.problems.append(
                    Problem(str(path), f"size {size[0]}x{size[1]}, not {BENCH_SIZE}x{BENCH_SIZE} "
                            f"(allowed: resized to {BENCH_SIZE} for methods, as the official scripts do)", "warning")
                )
        return sizes


# ----------------------------------------------------------------------------- registry
def create_standard_set(name: str, root: str | os.PathLike[str] | None = None) -> BenchmarkSet:
    """A registered benchmark located under ``root`` (default :func:`data_root`)."""
    spec = SPECS[name]
    lq_dir, gt_dir = locate(spec, Path(root) if root is not None else None)
    return BenchmarkSet(spec.name, lq_dir, gt_dir, spec.expected_count, spec.title, spec.download)


def standard_available(name: str, root: str | os.PathLike[str] | None = None) -> tuple[bool, str]:
    """(present, reason) for ``bfrbench list``: counts images without decoding them."""
    spec = SPECS[name]
    lq_dir, gt_dir = locate(spec, Path(root) if root is not None else None)
    if not lq_dir.is_dir() or not _has_images(lq_dir):
        return False, f"not found: unpack {spec.title} into {lq_dir} ({spec.download}; {README_HINT})"
    n = len(list_images(lq_dir))
    msg = f"{n} LQ images in {lq_dir}"
    if spec.has_gt:
        if gt_dir is None or not gt_dir.is_dir() or not _has_images(gt_dir):
            return False, f"{msg}, but no GT images in {gt_dir} ({spec.download}; {README_HINT})"
        msg += f", {len(list_images(gt_dir))} GT in {gt_dir}"
    if spec.expected_count and n != spec.expected_count:
        msg += f" (expected {spec.expected_count}: run validation)"
    return True, msg


def _register_standard() -> None:
    for spec in SPECS.values():
        if spec.name in DATASETS:
            continue

        def factory(root: str | None = None, _name: str = spec.name) -> BenchmarkSet:
            return create_standard_set(_name, root)

        DATASETS.add(
            spec.name,
            factory,
            title=spec.title,
            has_gt=spec.has_gt,
            expected_count=spec.expected_count,
            description=spec.description,
            download=spec.download,
            available=lambda _name=spec.name: standard_available(_name),
            spec=spec,
            published_fingerprint=spec.published_fingerprint,
        )


FOLDER_SEPARATOR = "::"


def parse_folder_name(rest: str) -> tuple[Path, Path | None]:
    """``LQ_DIR`` or ``LQ_DIR::GT_DIR``; a folder holding ``lq/`` (and ``gt/``) is taken as a set folder."""
    if not rest:
        raise UserError("folder: needs a path, e.g. folder:my_faces or folder:my_lq::my_gt")
    lq_s, sep, gt_s = rest.partition(FOLDER_SEPARATOR)
    lq = Path(lq_s).expanduser()
    gt = Path(gt_s).expanduser() if sep and gt_s else None
    if gt is None and (lq / "lq").is_dir() and not _has_images(lq):
        if (lq / "gt").is_dir():
            gt = lq / "gt"
        lq = lq / "lq"
    return lq, gt


def folder_set(rest: str) -> BenchmarkSet:
    """The dataset named ``folder:REST`` (see :func:`parse_folder_name`)."""
    lq, gt = parse_folder_name(rest)
    return BenchmarkSet(f"folder:{rest}", lq, gt, None, title=str(lq))


def _folder_resolver(rest: str) -> Entry:
    lq, gt = parse_folder_name(rest)

    def available() -> tuple[bool, str]:
        if not _has_images(lq):
            return False, f"no images in {lq}"
        return True, f"{len(list_images(lq))} LQ images in {lq}" + (f", GT in {gt}" if gt else "")

    return Entry(
        name=f"folder:{rest}",
        factory=lambda **_: folder_set(rest),
        meta={"has_gt": gt is not None, "expected_count": None, "title": str(lq),
              "description": "a folder of aligned faces", "available": available},
    )


_register_standard()
DATASETS.add_resolver("folder", _folder_resolver)

__all__ = [
    "ImagePair", "Problem", "ValidationReport", "DatasetSpec", "BenchmarkSet", "SPECS", "data_root",
    "locate", "create_standard_set", "standard_available", "parse_folder_name", "folder_set",
]
