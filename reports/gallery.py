"""Image gallery: LQ | each method | GT side by side, eye and mouth crops, worst and best per metric.

Crops are fixed regions of the aligned FFHQ 512 template (the 5 landmarks facexlib aligns every
benchmark face to), scaled to the image size. Images are embedded as lossless WebP data URIs
(thumbnails, native-resolution crops and the full images of the before/after slider: JPEG would hide
the textures being compared) or, in link mode, referenced relative to the report and cropped with CSS, so the report never requests anything outside the run folder. Only files
under the run folder or a dataset folder the manifest names are shown: a crafted per_image.parquet
cannot pull other local images into a report that is later shared.
"""
from __future__ import annotations

import base64
import math
import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

#: facexlib's 5-point template for 512x512 aligned faces: eyes, nose tip, mouth corners (x, y)
FFHQ_TEMPLATE_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
     [201.26117, 371.41043], [313.08905, 371.15118]]
)


def _box(center: np.ndarray, width: float, height: float) -> tuple[int, int, int, int]:
    cx, cy = center
    return (int(round(cx - width / 2)), int(round(cy - height / 2)), int(round(cx + width / 2)), int(round(cy + height / 2)))


#: (x0, y0, x1, y1) on the 512 template: both eyes with brows' lower edge (x 136-376, y 200-280)
EYES_512 = _box(FFHQ_TEMPLATE_512[0:2].mean(axis=0), 240, 80)
#: both mouth corners with the lips (x 177-337, y 331-411)
MOUTH_512 = _box(FFHQ_TEMPLATE_512[3:5].mean(axis=0), 160, 80)
REGIONS = {"eyes": EYES_512, "mouth": MOUTH_512}

THUMB_SIZE = 192
#: OpenCV's WebP quality above 100 selects lossless coding
WEBP_LOSSLESS = 101


@dataclass
class ImgRef:
    """An image to show: a data URI or a relative link, or a reason it is missing."""

    src: str | None
    alt: str
    missing: str = ""
    #: link mode crops: CSS percentages for an <img> inside a box of the region's aspect ratio
    crop_css: dict[str, str] | None = None
    aspect: str = ""


@dataclass
class Tile:
    """One column of a gallery row: LQ, a method's output or GT."""

    label: str
    kind: str  # "lq" | "method" | "gt"
    thumb: ImgRef
    crops: dict[str, ImgRef]
    scores: list[tuple[str, str]] = field(default_factory=list)
    standin: bool = False


@dataclass
class GalleryRow:
    image: str
    tiles: list[Tile]


@dataclass
class Extreme:
    """The worst or best image of one method on one metric."""

    method: str
    image: str
    value: float
    ref: ImgRef
    shows: str  # "output" or "LQ (outputs not saved)"


@dataclass
class ExtremeRow:
    metric: str
    direction: str
    method: str
    worst: Extreme
    best: Extreme


def crop_box(region: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """A 512-template region scaled to an image of ``width`` x ``height``, clipped to it."""
    sx, sy = width / 512.0, height / 512.0
    x0, y0, x1, y1 = region
    return (
        max(0, int(math.floor(x0 * sx))), max(0, int(math.floor(y0 * sy))),
        min(width, int(math.ceil(x1 * sx))), min(height, int(math.ceil(y1 * sy))),
    )


class ImageEncoder:
    """Turns image paths into ImgRefs (embedded data URIs or relative links), with a cache."""

    def __init__(self, run_dir: Path, out_dir: Path, embed: bool = True, roots: Sequence[Path] = (),
                 thumb_size: int = THUMB_SIZE) -> None:
        self.run_dir = run_dir
        self.thumb_size = thumb_size
        self.out_dir = out_dir
        self.embed = embed
        #: the folders images may come from: the run folder and the manifest's dataset folders
        self.roots = [Path(os.path.realpath(r)) for r in (run_dir, *roots)]
        self._cache: dict[tuple[str, str], ImgRef] = {}
        self._pixels: dict[str, np.ndarray | str] = {}
        self.bytes_embedded = 0

    def resolve(self, path: str | None) -> Path | None:
        """A per_image path (absolute, or relative to the run folder) as a Path; None when absent."""
        if path is None or (not isinstance(path, (str, os.PathLike)) and pd.isna(path)):
            return None
        if str(path) in ("", "None", "nan", "<NA>"):
            return None
        p = Path(str(path))
        return p if p.is_absolute() else self.run_dir / p

    def _rgb(self, path: Path) -> np.ndarray | str:
        key = str(path)
        if key not in self._pixels:
            from bench.core.imageio import ImageReadError, read_image

            try:
                self._pixels[key] = read_image(path).rgb
            except FileNotFoundError:
                self._pixels[key] = "file not found"
            except ImageReadError as exc:
                self._pixels[key] = exc.reason
            except OSError as exc:
                self._pixels[key] = f"cannot read ({exc.strerror or exc})"
            # keep memory bounded on big runs: thumbnails and crops are cached separately
            if len(self._pixels) > 64:
                self._pixels.pop(next(iter(self._pixels)))
        return self._pixels[key]

    def _uri(self, rgb: np.ndarray) -> str:
        """A lossless data URI: WebP (smaller), or PNG where OpenCV was built without WebP."""
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, WEBP_LOSSLESS])
        mime = "image/webp"
        if not ok:  # pragma: no cover - OpenCV without libwebp
            ok, buf = cv2.imencode(".png", bgr)
            mime = "image/png"
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 HxWx3
            raise RuntimeError("image encoding failed")
        data = base64.b64encode(buf.tobytes()).decode("ascii")
        self.bytes_embedded += len(data)
        return f"data:{mime};base64," + data

    def _link(self, path: Path) -> str:
        try:
            rel = os.path.relpath(path.resolve(), self.out_dir.resolve())
        except ValueError:  # another drive (Windows)
            return path.resolve().as_uri()
        return urllib.parse.quote(Path(rel).as_posix())

    def thumb(self, path: Path | None, alt: str) -> ImgRef:
        """A thumbnail (longest side ``thumb_size``, never upscaled)."""
        return self._get(path, alt, "thumb")

    def full(self, path: Path | None, alt: str) -> ImgRef:
        """The whole image at its own resolution (the before/after slider zooms into it)."""
        return self._get(path, alt, "full")

    def crop(self, path: Path | None, alt: str, region: str) -> ImgRef:
        """The native-resolution crop of a template region ("eyes" or "mouth")."""
        return self._get(path, alt, region)

    def allowed(self, path: Path) -> bool:
        """Whether ``path`` (symlinks resolved) lies under the run folder or a dataset folder."""
        real = Path(os.path.realpath(path))
        return any(_inside(real, r) for r in self.roots)

    def _get(self, path: Path | None, alt: str, kind: str) -> ImgRef:
        if path is None:
            return ImgRef(None, alt, missing="not saved")
        if not self.allowed(path):
            return ImgRef(None, alt, missing=f"not shown: {path} is outside the run folder and the dataset folders "
                          "(`bfrbench report RUN --data-root DIR` shows a dataset folder you trust)")
        key = (str(path), kind)
        if key not in self._cache:
            self._cache[key] = self._make(path, alt, kind)
        cached = self._cache[key]
        # a copy: callers may annotate their ref (alt text, an error) without touching the cache
        return ImgRef(cached.src, alt, cached.missing, cached.crop_css, cached.aspect)

    def _make(self, path: Path, alt: str, kind: str) -> ImgRef:
        if not self.embed:
            if not path.is_file():
                return ImgRef(None, alt, missing=f"file not found: {path}")
            src = self._link(path)
            if kind in ("thumb", "full"):
                return ImgRef(src, alt)
            x0, y0, x1, y1 = REGIONS[kind]
            rw, rh = (x1 - x0) / 512.0, (y1 - y0) / 512.0
            css = {
                "width": f"{100 / rw:.4f}%", "height": f"{100 / rh:.4f}%",
                "left": f"{-100 * (x0 / 512.0) / rw:.4f}%", "top": f"{-100 * (y0 / 512.0) / rh:.4f}%",
            }
            return ImgRef(src, alt, crop_css=css, aspect=f"{x1 - x0} / {y1 - y0}")
        rgb = self._rgb(path)
        if isinstance(rgb, str):
            return ImgRef(None, alt, missing=f"{rgb}: {path}")
        h, w = rgb.shape[:2]
        if kind == "full":
            return ImgRef(self._uri(rgb), alt)
        if kind == "thumb":
            scale = min(1.0, self.thumb_size / max(h, w))
            if scale < 1.0:
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            return ImgRef(self._uri(rgb), alt)
        x0, y0, x1, y1 = crop_box(REGIONS[kind], w, h)
        if x1 <= x0 or y1 <= y0:
            return ImgRef(None, alt, missing=f"image too small to crop ({w}x{h}): {path}")
        rx0, ry0, rx1, ry1 = REGIONS[kind]
        return ImgRef(self._uri(rgb[y0:y1, x0:x1]), alt, aspect=f"{rx1 - rx0} / {ry1 - ry0}")


def output_path(enc: ImageEncoder, out_path: Any, dataset: str, method: str, image: str) -> Path | None:
    """A method's saved output: out_path if set, else images/<dataset>/<method>/<image>.png if present."""
    p = enc.resolve(out_path)
    if p is not None:
        return p
    from bench.core.names import folder_name

    guess = enc.run_dir / "images" / folder_name(dataset) / folder_name(method) / f"{image}.png"
    return guess if guess.is_file() else None


def dataset_roots(manifest: dict[str, Any], run_dir: Path) -> list[Path]:
    """The dataset folders a run's manifest names (root, LQ and GT folders, data root, the folders of
    ``outputs:DIR`` methods); relative ones are taken relative to the run folder."""
    keys = ("root", "lq_dir", "gt_dir", "data_root")
    found: list[str] = []
    top = manifest.get("data_root")
    if isinstance(top, str):
        found.append(top)
    for info in (manifest.get("datasets") or {}).values():
        if not isinstance(info, dict):
            continue
        for d in (info, info.get("validation") if isinstance(info.get("validation"), dict) else {}):
            found += [d[k] for k in keys if isinstance(d.get(k), str) and d[k]]
    for info in (manifest.get("methods") or {}).values():  # outputs:DIR methods: the folders they read
        outputs = info.get("outputs") if isinstance(info, dict) else None
        for rep in (outputs.values() if isinstance(outputs, dict) else ()):
            if isinstance(rep, dict) and isinstance(rep.get("subfolder") or rep.get("folder"), str):
                found.append(rep.get("subfolder") or rep["folder"])
    return [Path(p) if Path(p).is_absolute() else run_dir / p for p in dict.fromkeys(found)]


def _inside(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def honoured_roots(listed: Sequence[Path], run_dir: Path, data_roots: Sequence[Path] = (),
                   trust_listed: bool = False) -> list[Path]:
    """The dataset folders a report may read images from, out of those a manifest ``listed``.

    A manifest can come with a received run folder, so its folders are only hints: one is honoured
    when it exists and is not the file system root or the home folder, and lies under the run
    folder, the benchmark data root (``$BFRBENCH_DATA``) or a folder the user named on this
    machine (``data_roots``, ``report --data-root``). ``trust_listed`` (the report ``bfrbench run``
    writes for the run it just made here) honours every listed folder that passes the first test.
    """
    from bench.data.datasets import data_root

    home = Path(os.path.realpath(Path.home()))

    def usable(p: Path) -> bool:
        return p.is_dir() and p != Path(p.anchor) and p != home

    bases = [b for b in (Path(os.path.realpath(b)) for b in (run_dir, data_root())) if usable(b)]
    bases += [b for b in (Path(os.path.realpath(b)) for b in data_roots) if b.is_dir()]  # the user's word
    out = []
    for root in listed:
        real = Path(os.path.realpath(root))
        if usable(real) and (trust_listed or any(_inside(real, b) for b in bases)):
            out.append(real)
    return out


def sample_images(per_image: pd.DataFrame, dataset: str, k: int) -> list[str]:
    """``k`` images spread evenly over the benchmark's sorted image names (deterministic)."""
    names = sorted(set(per_image.loc[per_image["dataset"] == dataset, "image"]))
    if not names or k <= 0:
        return []
    idx = np.unique(np.linspace(0, len(names) - 1, min(k, len(names))).round().astype(int))
    return [names[i] for i in idx]


def _tile_images(enc: ImageEncoder, path: Path | None, label: str) -> tuple[ImgRef, dict[str, ImgRef]]:
    thumb = enc.thumb(path, label)
    crops = {region: enc.crop(path, f"{label} ({region})", region) for region in REGIONS}
    return thumb, crops


def gallery_rows(
    enc: ImageEncoder, per_image: pd.DataFrame, dataset: str, methods: Sequence[str], metrics: Sequence[str],
    standin: set[str], k: int = 4,
) -> list[GalleryRow]:
    """Rows of LQ | methods (in leaderboard order) | GT for ``k`` sample images of a benchmark."""
    from reports.tables import fmt

    from_ds = per_image[per_image["dataset"] == dataset]
    # without saved outputs the method columns would be empty boxes: show LQ | GT only
    saved = {m for m in methods if any(
        output_path(enc, r["out_path"], dataset, m, r["image"]) is not None
        for r in from_ds[from_ds["method"] == m].head(3).to_dict("records"))}
    rows: list[GalleryRow] = []
    for image in sample_images(per_image, dataset, k):
        # records, not itertuples: metric names such as "pyiqa:musiq" are not identifiers
        recs = from_ds[from_ds["image"] == image].to_dict("records")
        by_method = {r["method"]: r for r in recs}
        first = recs[0]
        tiles: list[Tile] = []
        thumb, crops = _tile_images(enc, enc.resolve(first["lq_path"]), f"{image} LQ")
        tiles.append(Tile("LQ", "lq", thumb, crops))
        for meth in methods:
            rec = by_method.get(meth)
            if rec is None or meth not in saved:
                continue
            path = output_path(enc, rec.get("out_path"), dataset, meth, image)
            thumb, crops = _tile_images(enc, path, f"{image} {meth}")
            if rec["status"] != "ok":
                thumb.missing = f"error: {rec['error']}"
            scores = [(m, fmt(rec.get(m))) for m in metrics]
            scores = [(m, v) for m, v in scores if v != "\u2014"]
            tiles.append(Tile(meth, "method", thumb, crops, scores, standin=meth in standin))
        gt = next((enc.resolve(r["gt_path"]) for r in recs if enc.resolve(r["gt_path"])), None)
        if gt is not None:
            thumb, crops = _tile_images(enc, gt, f"{image} GT")
            tiles.append(Tile("GT", "gt", thumb, crops))
        rows.append(GalleryRow(image, tiles))
    return rows


@dataclass
class CompareSide:
    """One image the before/after slider can show (LQ, a method's output, GT)."""

    label: str
    kind: str
    ref: ImgRef


def compare_sides(enc: ImageEncoder, per_image: pd.DataFrame, dataset: str, image: str,
                  methods: Sequence[str]) -> list[CompareSide]:
    """LQ, each method's saved output (leaderboard order) and GT of one image, full resolution."""
    recs = per_image[(per_image["dataset"] == dataset) & (per_image["image"] == image)].to_dict("records")
    if not recs:
        return []
    by_method = {r["method"]: r for r in recs}
    sides = [CompareSide("LQ", "lq", enc.full(enc.resolve(recs[0]["lq_path"]), f"{image} LQ"))]
    for meth in methods:
        rec = by_method.get(meth)
        path = output_path(enc, rec.get("out_path"), dataset, meth, image) if rec else None
        if path is not None and rec["status"] == "ok":
            sides.append(CompareSide(meth, "method", enc.full(path, f"{image} {meth}")))
    gt = next((enc.resolve(r["gt_path"]) for r in recs if enc.resolve(r["gt_path"])), None)
    if gt is not None:
        sides.append(CompareSide("GT", "gt", enc.full(gt, f"{image} GT")))
    sides = [s for s in sides if s.ref.src]
    return sides if len(sides) > 1 else []


def _extreme(enc: ImageEncoder, rec: pd.Series, dataset: str, method: str, metric: str, tag: str) -> Extreme:
    """One worst/best entry: the method's output if saved, else the LQ input."""
    alt = f"{tag} {metric}: {rec['image']}"
    value = float(rec[metric])
    out = output_path(enc, rec["out_path"], dataset, method, rec["image"])
    if out is not None:
        return Extreme(method, rec["image"], value, enc.thumb(out, alt), "output")
    return Extreme(method, rec["image"], value, enc.thumb(enc.resolve(rec["lq_path"]), alt), "LQ (outputs not saved)")


def extremes(
    enc: ImageEncoder, per_image: pd.DataFrame, dataset: str, methods: Sequence[str], metrics: Sequence[str],
    higher_better: dict[str, bool],
) -> tuple[list[ExtremeRow], list[str]]:
    """Worst and best image per (metric, method); also the metrics skipped for an unknown direction."""
    df = per_image[(per_image["dataset"] == dataset) & (per_image["status"] == "ok")]
    rows: list[ExtremeRow] = []
    no_direction: list[str] = []
    for m in metrics:
        if m not in df.columns:
            continue
        if m not in higher_better:
            if np.isfinite(df[m].to_numpy(dtype=float)).any():
                no_direction.append(m)
            continue
        hb = higher_better[m]
        for meth in methods:
            sub = df[df["method"] == meth]
            vals = sub[m].to_numpy(dtype=float)
            finite = np.flatnonzero(np.isfinite(vals))
            if finite.size == 0:
                continue
            order = finite[np.argsort(vals[finite], kind="stable")]
            lo, hi = order[0], order[-1]
            worst_i, best_i = (lo, hi) if hb else (hi, lo)

            rows.append(ExtremeRow(m, "higher is better" if hb else "lower is better", meth,
                                   _extreme(enc, sub.iloc[worst_i], dataset, meth, m, "worst"),
                                   _extreme(enc, sub.iloc[best_i], dataset, meth, m, "best")))
    return rows, no_direction


def group_extremes(rows: list[ExtremeRow]) -> list[tuple[str, str, list[ExtremeRow]]]:
    """(metric, direction, rows) in the order metrics first appear."""
    groups: dict[str, list[ExtremeRow]] = {}
    for r in rows:
        groups.setdefault(r.metric, []).append(r)
    return [(m, rs[0].direction, rs) for m, rs in groups.items()]
