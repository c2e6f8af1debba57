"""``bfrbench table RUN [RUN ...]``: a paper's results table from one or more run folders."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

COMMAND = "table"
HELP = "a results table for a paper (LaTeX, Markdown, CSV, JSON) from one or more run folders"
DESCRIPTION = (
    "Methods by datasets by metrics, in the order given, with arrows, the best value bold and the second "
    "underlined, optional bootstrap intervals (--ci) and significance letters (--mark-ties). Several run "
    "folders merge into one leaderboard; a metric measured under two protocols is refused, never merged."
)
FORMAT_CHOICES = ("latex", "markdown", "csv", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.engine import significance as sig

    parser.add_argument("runs", metavar="RUN", nargs="+", help="run folders written by `bfrbench run`")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default="markdown", help="output format (default markdown)")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="datasets, in column order (default: all)")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help="metrics, in column order within each dataset (default: all), e.g. psnr ssim lpips")
    parser.add_argument("--methods", nargs="+", metavar="LABEL", help="methods, in row order (default: all)")
    parser.add_argument("--ci", action="store_true",
                        help="add \u00b1 the half-width of a 95%% bootstrap interval of the mean over images")
    parser.add_argument("--mark-ties", action="store_true",
                        help="letters for methods not significantly different (paired test on common images, Holm)")
    parser.add_argument("--test", choices=sig.TESTS, default="wilcoxon",
                        help="the paired test for --mark-ties (default wilcoxon signed-rank)")
    parser.add_argument("--alpha", type=float, default=sig.ALPHA, help=f"significance level (default {sig.ALPHA})")
    parser.add_argument("--bootstrap", type=int, default=sig.N_BOOT, metavar="N",
                        help=f"bootstrap resamples for --ci and --test bootstrap (default {sig.N_BOOT})")
    parser.add_argument("--seed", type=int, default=sig.SEED, help=f"bootstrap seed (default {sig.SEED})")
    parser.add_argument("--decimals", nargs=2, action="append", default=[], metavar=("METRIC", "K"),
                        help="decimals of a metric (repeatable; default four significant figures)")
    parser.add_argument("--label", nargs=2, action="append", default=[], metavar=("NAME", "TEXT"),
                        help="show a method, dataset or metric as TEXT (repeatable), e.g. --label psnr PSNR")
    parser.add_argument("--caption", default="", help="LaTeX/Markdown caption")
    parser.add_argument("--tex-label", default="", metavar="KEY", help="LaTeX \\label, e.g. tab:results")
    parser.add_argument("--standalone", action="store_true",
                        help="LaTeX: a whole document that compiles on its own (for checking)")
    parser.add_argument("--out", metavar="FILE", default=None, help="write to FILE (default: print)")


def _spec(args: argparse.Namespace):
    from bench.core.errors import UserError
    from reports.paper_table import TableSpec

    if not (math.isfinite(args.alpha) and 0 < args.alpha < 1):
        raise UserError(f"--alpha {args.alpha}: must be between 0 and 1 (e.g. 0.05)")
    if not 100 <= args.bootstrap <= 1_000_000:
        raise UserError(f"--bootstrap {args.bootstrap}: must be 100 to 1000000 resamples (e.g. 2000)")
    if not 0 <= args.seed < 2**63:
        raise UserError(f"--seed {args.seed}: must be 0 to 2**63-1")
    decimals: dict[str, int] = {}
    for metric, k in args.decimals:
        try:
            decimals[metric] = int(k)
        except ValueError:
            decimals[metric] = -1
        if not 0 <= decimals[metric] <= 10:
            raise UserError(f"--decimals {metric} {k}: the number of decimals must be 0 to 10")
    return TableSpec(
        datasets=args.datasets, metrics=args.metrics, methods=args.methods, ci=args.ci, mark_ties=args.mark_ties,
        test=args.test, alpha=args.alpha, n_boot=args.bootstrap, seed=args.seed, decimals=decimals,
        labels=dict(args.label),
    )


def main(args: argparse.Namespace) -> int:
    from bench.core.atomic import atomic_write_text
    from bench.core.errors import UserError
    from reports.merge import merge_runs
    from reports.paper_table import build_table
    from reports.table_formats import latex_document, render

    spec = _spec(args)
    if args.standalone and args.format != "latex":
        raise UserError("--standalone applies to --format latex only")
    merged = merge_runs(args.runs, args.metrics)
    for line in merged.warnings:
        print(line, file=sys.stderr)
    table = build_table(merged, spec)
    text = render(table, args.format, caption=args.caption, label=args.tex_label)
    if args.standalone:
        text = latex_document(text)
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise UserError(f"--out {out}: is a folder; give a file name (e.g. {out / ('table.' + args.format)})")
        atomic_write_text(out, text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
