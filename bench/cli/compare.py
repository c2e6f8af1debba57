"""``bfrbench compare RUN --against TABLE``: a run's numbers beside a paper's, within the table's tolerances."""
from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "compare"
HELP = "check a run against a paper table (paper value, ours, difference, within tolerance)"
DESCRIPTION = (
    "For each (dataset, method, metric) of TABLE, print the paper's value, the run's, the difference and whether "
    "it is within the table's tolerance; write RUN/comparison.csv and refresh the report's reproduction section. "
    "Exit status 1 when a value is outside its tolerance, 2 when none of the table's entries is in the run. "
    "Built-in tables: codeformer-paper, dmdp-fr-reeval."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="the run folder `bfrbench run` wrote")
    p.add_argument("--against", required=True, metavar="TABLE", help="a built-in table name or a table YAML file")
    p.add_argument("--map", action="append", default=[], metavar="PAPER_METHOD=RUN_METHOD",
                   help="compare the table's method with another run label (e.g. codeformer=outputs_cf); taken as text")
    p.add_argument("--map-dataset", action="append", default=[], metavar="TABLE_DATASET=RUN_DATASET",
                   help="compare the table's dataset with another run dataset (e.g. celeba-test=folder:data/celeba)")
    p.add_argument("--no-report", action="store_true", help="do not re-render RUN/index.html")


def _per_image(run_dir: Path) -> object:
    """per_image.parquet (how many images each value is over), or None where it is absent or unreadable."""
    try:
        import pandas as pd

        return pd.read_parquet(run_dir / "per_image.parquet")
    except (OSError, ImportError, ValueError):
        return None


def main(args: argparse.Namespace) -> int:
    from bench.compare import compare, format_comparison, load_table, parse_map, read_summary, write_comparison
    from bench.core.errors import UserError

    run_dir = Path(args.run_dir)
    summary_path = run_dir / "summary.csv"
    if not summary_path.is_file():
        raise UserError(f"{summary_path}: missing; pass the folder `bfrbench run` wrote")
    method_map, dataset_map = parse_map(args.map, "--map"), parse_map(args.map_dataset, "--map-dataset")
    table = load_table(args.against)
    df = compare(read_summary(summary_path), table, method_map, dataset_map, _per_image(run_dir))
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
