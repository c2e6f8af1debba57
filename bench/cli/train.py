"""``bfrbench train CONFIG.yaml``: train one stage of the IQP method (or plug-and-play fine-tuning)."""
from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "train"
HELP = "train an IQP stage (1: VQGAN, 2: code lookup, 3: CFT + quality optimisation, finetune: plug-and-play)"
DESCRIPTION = (
    "Train one stage from a YAML config: a shipped config's name (tiny_stage1, tiny_stage2, tiny_stage3, "
    "stage1, stage2, stage3, finetune_codeformer ...) or a file. The stage writes config.yaml, log.csv and "
    "net_g_latest.pth to <--out root>/<config name>; the next stage finds it there when given the same "
    "--out (or --from RUN_FOLDER). Re-run with --resume after an interruption to continue from the last "
    "checkpoint with identical state."
)


def shipped_config_names() -> list[str]:
    """The shipped configs' names, read from the files without importing the training code (and torch)."""
    import importlib.util

    spec = importlib.util.find_spec("methods")
    roots = list(spec.submodule_search_locations or []) if spec else []
    return sorted({p.stem for root in roots for p in (Path(root) / "iqp_bfr" / "configs").glob("*.yaml")})


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = ", ".join(shipped_config_names())
    p.add_argument("config", help=f"a shipped config name ({names}) or a YAML file")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of this stage")
    p.add_argument("--out", default=None,
                   help="root folder of the training chain; this stage writes <out>/<config name> (default: runs/train)")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="the previous stage's run folder (stage 2: a stage-1 run; stage 3: a stage-2 run)")
    p.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by its dotted path, e.g. --set train.total_iter=1000 (repeatable)",
    )


def main(args: argparse.Namespace) -> int:
    from methods.iqp_bfr.train.chain import DEFAULT_ROOT, apply_from, check_inputs, find_config, substitute_root
    from methods.iqp_bfr.train.config import apply_set, read_yaml, resolve
    from methods.iqp_bfr.train.trainer import train

    path = find_config(args.config)
    root = Path(args.out) if args.out else DEFAULT_ROOT
    raw = apply_set(read_yaml(path), args.assignments)
    if args.from_run:
        raw = apply_from(raw, Path(args.from_run))
    cfg = resolve(substitute_root(raw, root))
    out = root / str(cfg["name"])
    check_inputs(cfg, root)
    summary = train(cfg, out, resume=args.resume)
    last = summary.get("log") or {}
    shown = ", ".join(f"{k}={float(v):.4g}" for k, v in last.items() if k not in ("step",) and _is_number(v))
    print(f"stage {cfg['stage']}: {summary['iter']} iterations -> {out}")
    if shown:
        print(f"last log: {shown}")
    if summary.get("eval"):
        what = "held-out" if summary.get("held_out") else "evaluation (training faces)"
        print(f"{what}: " + ", ".join(f"{k}={float(v):.4g}" for k, v in summary["eval"].items() if k != "step"))
    return 0


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
