"""``bfrbench compare RUN --against TABLE``: a run's numbers beside a paper's, within the table's tolerances."""
from __future__ import annotations

import argparse
import sys
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


def main(args: argparse.Namespace) -> int:
    from bench.compare import compare, dataset_warnings, format_comparison, load_table, parse_map, write_comparison
    from bench.engine.run_folder import RunFolder, layout

    method_map, dataset_map = parse_map(args.map, "--map"), parse_map(args.map_dataset, "--map-dataset")
    table = load_table(args.against)  # the arguments first: a bad table is refused before the run is read
    run_dir = Path(args.run_dir)
    folder = RunFolder(run_dir)
    summary = folder.summary()
    df = compare(summary, table, method_map, dataset_map, folder.per_image())
    path = write_comparison(run_dir, df)
    print(format_comparison(df, table))
    compared = set(df.loc[df["within"].isin(["yes", "no"]), "dataset"])
    for line in dataset_warnings(folder.results().get("datasets") or {}, compared):
        print(line, file=sys.stderr)
    print(f"wrote {path}")
    if not args.no_report and (run_dir / layout.INDEX).is_file():
        try:
            from reports.render import render_report

            print(f"report: {render_report(run_dir)}")
        except ImportError:
            pass
    return 1 if (df["within"] == "no").any() else 0
