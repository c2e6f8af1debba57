"""``bfrbench compare RUN --against TABLE``: a run's numbers beside a paper's, within the table's tolerances."""
from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "compare"
HELP = "check a run against a paper table (paper value, ours, difference, within tolerance)"
DESCRIPTION = (
    "For each (dataset, method, metric) of TABLE, print the paper's value, the run's, the difference and whether "
    "it is within the table's tolerance; write RUN/comparison.csv and refresh the report's reproduction section. "
    "Exit status 1 when a value is outside its tolerance. Built-in tables: codeformer-paper, dmdp-fr-reeval."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="the run folder `bfrbench run` wrote")
    p.add_argument("--against", required=True, metavar="TABLE", help="a built-in table name or a table YAML file")
    p.add_argument("--map", action="append", default=[], metavar="PAPER_METHOD=RUN_METHOD",
                   help="compare the table's method with another run label (e.g. codeformer=outputs_cf)")
    p.add_argument("--no-report", action="store_true", help="do not re-render RUN/index.html")


def main(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench.compare import compare, format_comparison, load_table, write_comparison
    from bench.core.errors import UserError
    from bench.core.options import parse_assignments

    run_dir = Path(args.run_dir)
    summary_path = run_dir / "summary.csv"
    if not summary_path.is_file():
        raise UserError(f"{summary_path}: missing; pass the folder `bfrbench run` wrote")
    table = load_table(args.against)
    method_map = {k: str(v) for k, v in parse_assignments(args.map, "--map").items()}
    df = compare(pd.read_csv(summary_path), table, method_map)
    path = write_comparison(run_dir, df)
    print(format_comparison(df, table))
    print(f"wrote {path}")
    if not args.no_report and (run_dir / "index.html").is_file():
        try:
            from reports.render import render_report

            print(f"report: {render_report(run_dir)}")
        except ImportError:
            pass
    return 1 if (df["within"] == "no").any() else 0
