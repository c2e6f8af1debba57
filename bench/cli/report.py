"""``bfrbench report RUN_DIR``: render a run folder as one self-contained HTML file."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli._argtypes import int_range

COMMAND = "report"
HELP = "render a run folder as a self-contained HTML report (index.html)"
DESCRIPTION = (
    "Render RUN_DIR (summary.csv, per_image.parquet, gains.csv, profile.csv, manifest.json, images/) as one "
    "HTML file: leaderboards, per-benchmark tables, plots, an image gallery and the run manifest. "
    "The file loads nothing from the network."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder `bfrbench run` wrote")
    parser.add_argument("--out", metavar="FILE", default=None, help="where to write the report (default RUN_DIR/index.html)")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--no-images", action="store_true", help="leave the image gallery out (smaller file)")
    images.add_argument(
        "--link-images", action="store_true",
        help="link images relative to the report instead of embedding them (the report then needs the run folder)",
    )
    parser.add_argument("--data-root", action="append", default=[], metavar="DIR",
                        help="a dataset folder on this machine whose images the report may show (repeatable); "
                        "the run's manifest names its folders, but a received run folder could name any, so only "
                        "those under the run folder, $BFRBENCH_DATA or a --data-root are read")
    parser.add_argument("--gallery-images", type=int_range("--gallery-images", 0), default=4, metavar="N",
                        help="sample images per benchmark in the gallery (default 4)")
    parser.add_argument("--thumb-size", type=int, default=192, metavar="PX",
                        help="longest side of the gallery's thumbnails in pixels, 64 to 1024 (default 192)")


def main(args: argparse.Namespace) -> int:
    from bench.core.crashlog import note_run_folder
    from bench.core.errors import UserError
    from reports.render import render_report

    note_run_folder(args.run_dir)
    if not 64 <= args.thumb_size <= 1024:
        raise UserError(f"--thumb-size {args.thumb_size}: must be 64 to 1024 pixels (default 192)")
    for root in args.data_root:
        if not Path(root).is_dir():
            raise UserError(f"--data-root {root}: not a folder; give a dataset folder on this machine")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        out = out / "index.html"
    path = render_report(
        args.run_dir, out, embed_images=not args.link_images, include_images=not args.no_images,
        gallery_images=args.gallery_images, thumb_size=args.thumb_size, data_roots=args.data_root,
    )
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.1f} MB)")
    return 0
