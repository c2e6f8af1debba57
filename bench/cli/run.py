"""``bfrbench run``: benchmark methods on datasets; no arguments runs the embedded demo suite."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import RunConfig, check_settings
from bench.core.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from bench.engine.runner import RunOutcome

COMMAND = "run"
HELP = "benchmark methods on datasets (no arguments: the embedded demo suite)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML run config; command-line options override it")
    p.add_argument("--suite", help="a suite: built-in name (paper-celeba, paper-realworld, ntire2025-rwfr, "
                   "ntire2026-rwfr) or a suite YAML file; its datasets, methods and metrics, then its score and gate")
    p.add_argument("--datasets", nargs="+", help="benchmark names or folder:LQ_DIR[::GT_DIR] (default: demo)")
    p.add_argument("--methods", nargs="+", help="method specs NAME[:key=value,...], or outputs:DIR / outputs:LABEL=DIR to score a folder "
                   "of restored images, or ntire:PATH to run an NTIRE challenge team folder (needs --allow-code) "
                   "(default: lq classical)")
    p.add_argument("--metrics", nargs="+",
                   help="metric specs NAME[:key=value,...], e.g. psnr:crop_border=4 fid:reference=DIR "
                   "(default: every registered default metric; bfrbench list metrics --verbose shows options)")
    p.add_argument("--strict", action="store_true",
                   help="anything skipped is an error (exit status 4): a skipped method or metric, a bad input file; "
                   "outputs:DIR methods refuse wrong-size images instead of resizing them to 512")
    p.add_argument("--allow-code", action="store_true",
                   help="let ntire:PATH methods run the Python code of their team folder (runs that code in this "
                   "process: only for code you trust)")
    p.add_argument("--out", help="run folder (default: runs/<timestamp>); rerunning into it resumes")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N]")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader worker processes (default: none on a CPU device, else one per core but one, at most 8)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=None,
                   help="the one precision knob: autocast dtype of the methods on a GPU (a method needing fp32 keeps it)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the methods (falls back to eager, with a note, where compiling fails)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default=None,
                   help="channels_last memory format for the methods (auto: on for CUDA)")
    p.add_argument("--weights", action="append", default=[], metavar="METHOD=PATH",
                   help="weights file for a method (or METHOD=random for labelled stand-in weights)")
    p.add_argument("--save-images", action="store_true", help="also write restored PNGs into the run folder")
    p.add_argument("--limit", type=int, help="at most N images per dataset")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--quiet", action="store_true",
                   help="no progress output or tables (warnings, errors and the run folder are still printed)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    if getattr(args, "suite", None):
        if args.config:
            raise UserError("--suite and --config both define the run: give one (a suite file may hold run settings)")
        if args.datasets:
            raise UserError("--suite and --datasets: a suite defines its datasets",
                            fix="drop --datasets, or copy the suite file and list your datasets in it")
        from bench.suites import load_suite

        suite = load_suite(args.suite)
        cfg = suite.run_config()
        for line in suite.check_files():  # before any scoring: the faces are not the challenge's
            print(f"WARNING {line}", file=sys.stderr, flush=True)
        if args.metrics:  # added to the suite's (its score and gate need theirs)
            args.metrics = list(cfg.metrics or []) + [m for m in args.metrics if m not in (cfg.metrics or [])]
    else:
        cfg = RunConfig.from_yaml(args.config) if args.config else RunConfig()
    given = {attr: getattr(args, attr) for attr in ("datasets", "methods", "metrics", "out", "device", "batch_size",
                                                     "workers", "dtype", "limit", "seed", "compile", "channels_last")
             if getattr(args, attr) is not None}
    for attr, value in check_settings(given, "command line", flags=True).items():
        setattr(cfg, attr, value)
    if cfg.out:
        check_out_folder(Path(cfg.out))
    for item in args.weights:
        method, eq, path = item.partition("=")
        if not eq:
            raise UserError(f"--weights {item!r}: expected METHOD=PATH")
        if path != "random" and not Path(path).expanduser().is_file():  # checked before any work
            raise UserError(f"--weights {item}: {path} {'is not a file' if Path(path).exists() else 'does not exist'}",
                            fix=f"check the path, or leave --weights out to use {method}'s managed weights")
        cfg.weights[method] = path
    cfg.save_images = cfg.save_images or args.save_images
    cfg.strict = cfg.strict or args.strict
    cfg.allow_code = cfg.allow_code or args.allow_code
    cfg.quiet = args.quiet
    cfg.report = not args.no_report
    cfg.validate("command line")
    cfg.check_code_allowed()  # before the run folder is made
    return cfg


def check_out_folder(out: Path) -> None:
    """--out must be new, empty or an earlier run folder: a run never writes its files into another folder.

    An earlier run folder holds the run lock (its first file), ``units/`` or ``manifest.json`` (its last).
    """
    from bench.engine.run_folder import layout

    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder", fix="give a new folder name")
    try:
        entries = [p.name for p in out.iterdir()]
    except OSError as exc:
        raise UserError(f"--out {out}: cannot list it ({exc.strerror or exc})") from exc
    if entries and not {layout.LOCK, layout.UNITS, layout.MANIFEST} & set(entries):
        raise UserError(f"--out {out}: holds other files ({', '.join(sorted(entries)[:3])}"
                        f"{', ...' if len(entries) > 3 else ''}) and is not a bfrbench run folder",
                        fix="give a new or empty folder, or an earlier run folder to resume it")


def present(outcome: RunOutcome, cfg: RunConfig) -> None:
    """Print the ranked tables and write the HTML report (a bare index.html where the report cannot be built).

    With --quiet only the tables and progress are left out: bad input files, failures and the
    run folder's path are always printed.
    """
    import sys

    from bench.engine.results import format_ranked_tables, sampling_tags, write_minimal_index

    if not cfg.quiet:
        print(format_ranked_tables(outcome.summary, outcome.per_image, outcome.gains, sampling_tags(outcome.methods)))
    for line in bad_file_lines(outcome):
        print(line, file=sys.stderr)
    if cfg.report:
        try:
            from reports.render import render_report

            path = render_report(outcome.run_dir, trust_manifest_roots=True)  # this run's own folders, given here
        except ImportError:
            path = write_minimal_index(outcome.run_dir, outcome.summary)
        if not cfg.quiet:
            print(f"report: {path}")
    print(f"run folder: {outcome.run_dir}")


def bad_file_lines(outcome: RunOutcome, show: int = 5) -> list[str]:
    """A short console summary of each dataset's unusable input files and validation problems."""
    lines = []
    for ds, info in (outcome.datasets or {}).items():
        bad = info.get("bad_files") or []
        if bad:
            lines.append(f"bad input files: {len(bad)} of {info.get('n', '?')} in {ds} could not be used:")
            lines += [f"  {b['file']}: {str(b['reason'])[:160]}" for b in bad[:show]]
            more = f"  ... and {len(bad) - show} more; " if len(bad) > show else "  "
            lines.append(f"{more}full list: {outcome.run_dir / 'manifest.json'} (datasets > {ds} > bad_files)")
        validation = info.get("validation") or {}
        problems = validation.get("problems", []) if isinstance(validation, dict) else []
        named = {b["file"] for b in bad}
        other = [p for p in problems if p.get("severity") == "error"
                 and not any(Path(p["path"]).stem == n or Path(p["path"]).name == n for n in named)]
        if other:  # errors the run's own rows do not show (unpaired files, a missing folder); warnings stay in the file
            lines.append(f"dataset check of {ds}: {len(other)} more error(s), e.g. "
                         f"{Path(other[0]['path']).name}: {str(other[0]['reason'])[:120]}; "
                         f"all in {outcome.run_dir / 'manifest.json'} (datasets > {ds} > validation)")
    return lines


def main(args: argparse.Namespace) -> int:
    import sys

    from bench.cli.exit_codes import run_status
    from bench.core.crashlog import note_run_folder
    from bench.engine.runner import Runner

    cfg = config_from_args(args)
    runner = Runner(cfg)
    note_run_folder(runner.run_dir)  # an unexpected error's log goes beside the results
    try:
        outcome = runner.run()
    finally:
        runner.dist.close()
    if not runner.dist.is_main:
        return 0
    suite_rows = None
    if cfg.suite:  # the suite's score and gate (suite.json) before anything presents the run
        import pandas as pd

        from bench.suites import load_suite
        from bench.suites.scoring import apply_suite

        suite_rows = pd.DataFrame(apply_suite(outcome.run_dir, load_suite(cfg.suite), quiet=cfg.quiet)["rows"])
    present(outcome, cfg)
    status = run_status(outcome.summary, outcome.units, strict=cfg.strict, suite_rows=suite_rows)
    if status.code:
        print(f"bfrbench: exit status {status.code}:", file=sys.stderr)
        for reason in status.reasons[:10]:
            print(f"  {reason}", file=sys.stderr)
        if len(status.reasons) > 10:
            print(f"  ... and {len(status.reasons) - 10} more", file=sys.stderr)
    return status.code
