"""``bfrbench score-dataset DIR --iqa NAME ...``: per-image IQP quality scores of a face folder (CSV)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from methods.iqp_bfr.quality import QualityScorer

COMMAND = "score-dataset"
HELP = "score every image of a folder with NR-IQA metrics -> CSV of normalised [0, 1] quality scores"
DESCRIPTION = (
    "Compute the IQP quality prior of each image: every metric min-max normalised over a reference "
    "set (the folder itself unless --reference or --stats is given; lower-better metrics inverted), "
    "then averaged. Writes scores.csv (image, score, one column per raw metric value) and the "
    "normalisation statistics beside it (scores.stats.json), both atomically."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="folder of aligned face images, or demo (the demo set's GT faces, built on first use)")
    p.add_argument("--iqa", nargs="+", required=True, metavar="NAME", help="NR-IQA metrics (niqe, brisque, pyiqa:musiq ...)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", help="folder whose images define the normalisation range (default: FOLDER)")
    ref.add_argument("--stats", help="normalisation statistics JSON from an earlier run (scores.stats.json)")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=8,
                   help="images scored together (consecutive images of one size; the values do not depend on it)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _input_images(arg: str) -> list[Path]:
    """The images of the FOLDER argument (``demo`` builds the demo set's faces on first use); one line for none."""
    from bench.core.errors import UserError
    from bench.core.imageio import list_images

    folder = Path(arg)
    if arg.split(":")[0] == "demo" and not folder.is_dir():
        from methods.iqp_bfr.train.trainer import resolve_data_root

        folder = Path(resolve_data_root(arg))
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of images")
    paths = list_images(folder)
    if not paths:
        raise UserError(f"{folder}: no images found (png, jpg, bmp, webp, tif)")
    return paths


def _scorer(args: argparse.Namespace, device: str) -> QualityScorer:
    """The quality scorer of ``--iqa`` (with ``--stats`` loaded), checked before any image is scored."""
    from bench.core.errors import UserError
    from methods.iqp_bfr.quality import QualityScorer

    try:
        scorer = QualityScorer(args.iqa, device=device)
        if args.stats:  # checked before any image is scored: a mismatch is one line, not a traceback
            scorer.load_stats(args.stats)
    except ValueError as exc:
        raise UserError(f"{exc}" + (f" (--iqa {' '.join(args.iqa)})" if args.stats else "")) from exc
    return scorer


def _raw_values(scorer: QualityScorer, paths: list[Path], device: str, batch_size: int,
                quiet: bool) -> dict[str, list[float]]:
    """Each metric's raw value per image, in ``paths`` order (consecutive same-size images scored together)."""
    import torch

    from bench.core.imageio import read_image
    from bench.core.inputs import uint8_to_tensor
    from bench.core.progress import progress

    raw: dict[str, list[float]] = {n: [] for n in scorer.names}
    pending: list[torch.Tensor] = []
    bar = progress(len(paths), f"score-dataset | {', '.join(scorer.names)}", quiet)

    def flush() -> None:
        for name, v in scorer.raw(torch.cat(pending).to(device)).items():
            raw[name].extend(float(x) for x in v.reshape(-1))
        bar.update(len(pending))
        pending.clear()

    for p in paths:
        x = uint8_to_tensor(read_image(p).rgb)
        if pending and (x.shape != pending[0].shape or len(pending) == batch_size):
            flush()
        pending.append(x)
    if pending:
        flush()
    bar.close()
    return raw


def main(args: argparse.Namespace) -> int:
    import torch

    from bench.core.atomic import atomic_write_text
    from bench.core.csvsafe import csv_text
    from bench.core.device import resolve_device
    from bench.core.errors import UserError
    from bench.core.imageio import list_images

    if Path(args.out).is_dir():  # checked before any image is scored
        raise UserError(f"--out {args.out}: is a folder; give the CSV file to write, e.g. {Path(args.out) / 'scores.csv'}")
    paths = _input_images(args.folder)
    device = str(resolve_device(args.device))
    scorer = _scorer(args, device)
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: must be at least 1")
    raw = _raw_values(scorer, paths, device, args.batch_size, args.quiet)
    if args.reference:
        ref_paths = list_images(args.reference) if Path(args.reference).is_dir() else []
        if not ref_paths:
            raise UserError(f"--reference {args.reference}: not a folder of images")
        scorer.fit(ref_paths)
    elif not args.stats:  # --stats: loaded above
        scorer.fit_raw(raw)
    scores = scorer.normalise({n: torch.tensor(v, dtype=torch.float64) for n, v in raw.items()})
    rows = [
        [p.name, f"{float(scores[i]):.6f}", *(f"{raw[n][i]:.6g}" for n in scorer.names)] for i, p in enumerate(paths)
    ]
    out = Path(args.out)
    atomic_write_text(out, csv_text(["image", "score", *scorer.names], rows))
    stats_path = out.with_suffix(".stats.json")
    scorer.save_stats(stats_path)
    print(f"{len(paths)} images scored with {', '.join(scorer.names)} -> {out} (statistics: {stats_path})")
    return 0
