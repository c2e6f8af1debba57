"""Time README's tiny chain as a user runs it: each line of its verbatim block as its own `bfrbench` process,
in an empty folder, on the CPU; prints each line's seconds, the total and the machine's load before and after.

    PYTHONPATH=. python scripts/time_readme_chain.py [--work DIR] [--json OUT.json]

The lines are the ones tests/test_readme_workflows.py runs (its ``readme_commands``), so what is timed is
what README shows. The demo faces are built under DIR/datasets on first use, as for a new user (that
first build is timed apart, as "demo set").
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_readme_workflows import readme_commands  # noqa: E402  (the one parser of README's block)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="an empty folder to run in (default: a new temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="also write the timings here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="readme_chain_"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        print(f"{work} is not empty: give an empty --work folder", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    env.pop("BFRBENCH_DATA", None)
    rows = []
    start_load = _load()
    print(f"cores {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load {start_load}, "
          f"in {work}", flush=True)
    t_all = time.perf_counter()
    steps = [("demo set", [sys.executable, "-c", "import bench; bench.create_dataset('demo').pairs()"])]
    steps += [(shlex.join(["bfrbench", *argv]), [sys.executable, "-m", "bench.cli", *argv]) for argv in readme_commands()]
    for label, cmd in steps:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t0
        rows.append({"command": label, "seconds": round(seconds, 1), "exit": proc.returncode, "load_after": _load()})
        print(f"{seconds:8.1f} s  exit {proc.returncode}  load {rows[-1]['load_after']}  {label}", flush=True)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            break
    total = time.perf_counter() - t_all
    print(f"{total:8.1f} s  total ({total / 60:.1f} min); load at the start {start_load}, at the end {_load()}")
    if args.json:
        args.json.write_text(json.dumps({"total_s": round(total, 1), "load_start": start_load, "load_end": _load(),
                                         "cores": os.cpu_count(), "rows": rows}, indent=1))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
