"""``bfrbench train CONFIG.yaml``: train one stage of the IQP method (or plug-and-play fine-tuning)."""
from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "train"
HELP = "train an IQP stage (1: VQGAN, 2: code lookup, 3: CFT + quality optimisation, finetune: plug-and-play)"
DESCRIPTION = (
    "Train one stage from a YAML config (methods/iqp_bfr/configs/). Checkpoints, log.csv and "
    "net_g_latest.pth go to --out (default: runs/train/<name>). Re-run with --resume after an "
    "interruption to continue from the last checkpoint with identical state."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="training config (YAML), e.g. methods/iqp_bfr/configs/stage1.yaml")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--out", help="output folder (default: runs/train/<config name>)")
    p.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by its dotted path, e.g. --set train.total_iter=1000 (repeatable)",
    )


def main(args: argparse.Namespace) -> int:
    from bench.errors import UserError
    from methods.iqp_bfr.train.config import load_config
    from methods.iqp_bfr.train.trainer import train

    if not Path(args.config).is_file():
        raise UserError(f"{args.config}: no such config file (see methods/iqp_bfr/configs/ for examples)")
    cfg = load_config(args.config, args.assignments)
    out = Path(args.out) if args.out else Path("runs") / "train" / str(cfg["name"])
    summary = train(cfg, out, resume=args.resume)
    last = summary.get("log") or {}
    shown = ", ".join(f"{k}={float(v):.4g}" for k, v in last.items() if k not in ("step",) and _is_number(v))
    print(f"stage {cfg['stage']}: {summary['iter']} iterations -> {out}")
    if shown:
        print(f"last log: {shown}")
    if summary.get("eval"):
        print("held-out: " + ", ".join(f"{k}={float(v):.4g}" for k, v in summary["eval"].items() if k != "step"))
    return 0


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
