"""``bfrbench synth --hq DIR --out DIR --preset celeba-test --seed N``: make a synthetic paired set."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.cli._argtypes import int_range

COMMAND = "synth"
HELP = "degrade a folder of HQ faces into a paired LQ/GT benchmark (CelebA-Test style)"
DESCRIPTION = (
    "Degrade every image of --hq with a preset pipeline (celeba-test: GFPGAN's, which built "
    "CelebA-Test; codeformer-large / codeformer-small: CodeFormer's training ranges) and write "
    "OUT/lq/NAME.png, OUT/gt/NAME.png and OUT/manifest.json. Each image's random draws depend only "
    "on (--seed, file name), so the result is the same for any --workers and any subset; an "
    "interrupted run resumes. Evaluate the result with `bfrbench run --datasets folder:OUT`."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.data.presets import PRESETS

    parser.add_argument("--hq", required=True, help="folder of high-quality aligned faces")
    parser.add_argument("--out", required=True, help="output folder (gets lq/, gt/ and manifest.json)")
    parser.add_argument("--preset", default="celeba-test", choices=sorted(PRESETS), help="degradation preset")
    parser.add_argument("--seed", type=int, default=0, help="seed; with the file name it fixes each image's draws")
    parser.add_argument("--workers", type=int_range("--workers", 1), default=1, help="processes (default 1)")
    parser.add_argument("--size", type=int_range("--size", 0, 8192), default=512,
                        help="resize HQ images to SIZE x SIZE first (area, for downscaling) (0: keep; default 512)")
    parser.add_argument("--overwrite", action="store_true", help="replace an OUT made with other settings")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from bench.data.degrade import get_preset

    settings = {"preset": args.preset, "seed": args.seed, "size": args.size, "ranges": get_preset(args.preset).to_dict()}
    return json.loads(json.dumps(settings))  # tuples -> lists, as read back from the manifest


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def synth_one(hq_path: str, out_dir: str, preset: str, seed: int, size: int) -> tuple[str, dict[str, Any] | None, str | None]:
    """Degrade one file (skipped when both outputs exist); returns (name, params or None, error)."""
    import cv2

    from bench.core.imageio import ImageReadError, read_image, write_image
    from bench.data.degrade import degrade_with_params, rng_for

    name = Path(hq_path).stem
    lq_path = Path(out_dir) / "lq" / f"{name}.png"
    gt_path = Path(out_dir) / "gt" / f"{name}.png"
    try:
        hq = read_image(hq_path).rgb
    except ImageReadError as exc:
        return name, None, f"{exc.path}: {exc.reason}"
    if size and hq.shape[:2] != (size, size):
        shrink = min(hq.shape[:2]) > size
        hq = cv2.resize(hq, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    lq, params = degrade_with_params(hq, preset, rng_for(seed, name))
    write_image(gt_path, hq)
    write_image(lq_path, lq)  # written last: its presence marks the image done
    return name, params.to_dict(), None


def _hq_files(hq_dir: Path) -> list[Path]:
    """The HQ images of ``--hq``; one line for a missing folder, an empty one or two files with one stem."""
    from bench.core.errors import UserError
    from bench.core.imageio import list_images

    if not hq_dir.is_dir():
        raise UserError(f"--hq {hq_dir}: not a folder (give the folder of HQ aligned faces)")
    files = list_images(hq_dir)
    if not files:
        raise UserError(f"--hq {hq_dir}: no images (.png/.jpg/...) in the folder")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise UserError(f"{f} and {stems[f.stem]} have the same name stem; outputs are NAME.png: rename one")
        stems[f.stem] = f
    return files


def _done_images(out: Path, settings: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The images an earlier run into ``out`` made with these settings (resumed); other settings need --overwrite."""
    from bench.core.errors import UserError

    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        return {}
    previous = json.loads(manifest_path.read_text())
    if previous.get("settings") == settings:
        return dict(previous.get("images", {}))
    if not overwrite:
        was = previous.get("settings") or {}
        raise UserError(
            f"{out} was made with other settings (preset {was.get('preset')}, seed {was.get('seed')}, "
            f"size {was.get('size')}); choose another --out or pass --overwrite"
        )
    return {}


def _results(jobs: list[tuple], workers: int) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """:func:`synth_one` of each job, in order: in ``workers`` spawned processes, or here."""
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked child inherits OpenCV's/torch's thread pools mid-state and can hang
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
            yield from pool.map(synth_one, *zip(*jobs), chunksize=4)
    else:
        for job in jobs:
            yield synth_one(*job)


def main(args: argparse.Namespace) -> int:
    from bench.core.atomic import atomic_write_json

    hq_dir, out = Path(args.hq), Path(args.out)
    files = _hq_files(hq_dir)
    settings = _settings(args)
    manifest_path = out / "manifest.json"
    images = _done_images(out, settings, args.overwrite)
    todo = [f for f in files if not (f.stem in images and (out / "lq" / f"{f.stem}.png").is_file())]
    (out / "lq").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    t0 = time.time()
    jobs = [(str(f), str(out), args.preset, args.seed, args.size) for f in todo]
    for i, (name, params, err) in enumerate(_results(jobs, args.workers), 1):
        if err:
            errors.append(err)
        else:
            images[name] = params
        if not args.quiet and (i % 50 == 0 or i == len(todo)):
            print(f"synth: {i}/{len(todo)} ({time.time() - t0:.0f} s)", file=sys.stderr)
        if i % 200 == 0:
            _write_manifest(manifest_path, settings, hq_dir, images, errors, atomic_write_json)
    _write_manifest(manifest_path, settings, hq_dir, images, errors, atomic_write_json)
    if not args.quiet:
        print(f"synth: {len(images)} pairs in {out} ({args.preset}, seed {args.seed}); "
              f"evaluate with --datasets folder:{out}", file=sys.stderr)
    for e in errors:
        print(f"bfrbench: skipped {e}", file=sys.stderr)
    return 1 if errors else 0


def _write_manifest(path: Path, settings: dict, hq_dir: Path, images: dict, errors: list, writer) -> None:
    writer(path, {
        "tool": "bfrbench synth",
        "settings": settings,
        "hq": str(hq_dir.resolve()),
        "count": len(images),
        "images": dict(sorted(images.items())),
        "skipped": errors,
    })
