"""The training chain: configs named or given as files, one ``--out`` root, each stage finding the last.

A stage's output folder is ``<out root>/<config name>``. Config values may say ``${out}`` for the
root, so ``init.vqgan: ${out}/tiny_stage1/net_g_latest.pth`` finds stage 1's export when both
stages share one ``--out``. ``--from RUN`` names the previous stage's folder instead: stage 2
takes RUN's export as its VQGAN; stage 3 takes RUN's export as the stage-2 network and RUN's
recorded VQGAN. Missing inputs fail before any work, with the command that makes them.
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

from bench.core.errors import BfrBenchError, UserError

#: the default --out root of ``bfrbench train``
DEFAULT_ROOT = Path("runs") / "train"
EXPORT = "net_g_latest.pth"
OUT_TOKEN = "${out}"


def shipped_configs() -> dict[str, Path]:
    """Config name -> file for the configs shipped with the package (by file stem and by ``name:``)."""
    folder = Path(str(resources.files("methods.iqp_bfr.configs")))
    out: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        out.setdefault(path.stem, path)
    for path in sorted(folder.glob("*.yaml")):
        name = _name_field(path)
        if name:
            out.setdefault(name, path)
    return out


def _name_field(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].split("#")[0].strip() or None
    return None


def find_config(spec: str) -> Path:
    """A config file: an existing path, else a shipped config's name (``tiny_stage1``, ``stage2`` ...)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    known = shipped_configs()
    key = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if key in known:
        return known[key]
    stems = sorted({p.stem for p in known.values()})
    raise UserError(f"{spec}: no such config file or shipped config name (shipped: {', '.join(stems)})")


def substitute_root(cfg: dict[str, Any], root: Path) -> dict[str, Any]:
    """Every ``${out}`` in a string value replaced by the --out root."""

    def sub(v: Any) -> Any:
        if isinstance(v, str) and OUT_TOKEN in v:
            return v.replace(OUT_TOKEN, root.as_posix())
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v

    return sub(copy.deepcopy(cfg))


def _recorded_config(run: Path) -> dict[str, Any]:
    from bench.core.options import yaml_load

    path = run / "config.yaml"
    if not path.is_file():
        raise UserError(f"--from {run}: not a training run folder (no config.yaml); give the folder `bfrbench train` wrote")
    return yaml_load(path.read_text(encoding="utf-8")) or {}


def apply_from(raw: dict[str, Any], run: Path) -> dict[str, Any]:
    """Set the ``init`` checkpoints of a stage-2/3 config from the previous stage's run folder."""
    raw = copy.deepcopy(raw)
    stage = str(raw.get("stage"))
    prev = _recorded_config(run)
    want = {"2": "1", "3": "2"}.get(stage)
    if want is None:
        raise UserError(f"--from: stage {stage} does not start from an earlier stage's run (stages 2 and 3 do)")
    if str(prev.get("stage")) != want:
        raise UserError(f"--from {run}: a stage-{prev.get('stage')} run; stage {stage} starts from a stage-{want} run")
    init = raw.setdefault("init", {}) or {}
    raw["init"] = init
    if stage == "2":
        init["vqgan"] = str(run / EXPORT)
    else:
        init["stage2"] = str(run / EXPORT)
        init["vqgan"] = (prev.get("init") or {}).get("vqgan")
    return raw


def _maker(path: Path, root: Path) -> str:
    """The command that writes ``path``: ``bfrbench train NAME --out ROOT`` when it is a shipped stage's export."""
    name = path.parent.name
    if path.name == EXPORT and path.parent.parent == root and name in shipped_configs():
        return f"`bfrbench train {name} --out {root}`"
    return "the stage that exports it"


def unfinished(export: Path) -> tuple[int, int] | None:
    """(iteration written, iterations configured) when ``export`` is the export of a training run that has
    not reached its ``train.total_iter`` (its folder's ``config.yaml`` says how many); else None."""
    from bench.core.options import yaml_load

    recorded = export.parent / "config.yaml"
    if not recorded.is_file():
        return None  # a checkpoint from elsewhere: nothing recorded to compare with
    try:
        total = int(((yaml_load(recorded.read_text(encoding="utf-8")) or {}).get("train") or {}).get("total_iter"))
    except (TypeError, ValueError, AttributeError, BfrBenchError):
        return None
    import torch

    try:
        state = torch.load(export, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - an unreadable export is reported by the loader that reads it
        return None
    it = state.get("iter") if isinstance(state, dict) else None
    return (it, total) if isinstance(it, int) and it < total else None


def check_inputs(cfg: dict[str, Any], root: Path) -> None:
    """Fail before any work when a checkpoint or score file the stage reads is missing or comes from an
    unfinished stage, naming the command that makes (or finishes) it."""
    init = cfg.get("init") or {}
    for key, stage in (("vqgan", "1"), ("stage2", "2")):
        path = init.get(key)
        if path and not Path(path).is_file():
            raise UserError(
                f"init.{key}: {path} does not exist; it is a stage-{stage} export: run {_maker(Path(path), root)} "
                f"first (same --out), or pass --from THE_STAGE_{stage}_RUN_FOLDER"
            )
        early = unfinished(Path(path)) if path else None
        if early:
            name = Path(path).parent.name
            how = (f"`bfrbench train {name} --out {Path(path).parent.parent} --resume`" if name in shipped_configs()
                   else f"`bfrbench train ITS_CONFIG --out {Path(path).parent.parent} --resume`")
            raise UserError(
                f"init.{key}: {path} was written at iteration {early[0]} of {early[1]}: stage {name} has not "
                f"finished; finish it with {how} (or pass --from a finished stage-{stage} run)"
            )
    data = cfg.get("data") or {}
    scores = data.get("scores")
    if scores and not Path(scores).is_file():
        raise UserError(
            f"data.scores: {scores} does not exist; make it with "
            f"`bfrbench score-dataset {data.get('root', 'FOLDER')} --iqa brisque --out {scores}`"
        )
    ft = cfg.get("finetune") or {}
    weights = ft.get("weights")
    if cfg.get("stage") == "finetune" and weights and str(weights).endswith((".pth", ".pt", ".ckpt")):
        if not Path(str(weights)).is_file():
            p = Path(str(weights))
            how = (f"run {_maker(p, root)} (after its stage 1, `bfrbench train {p.parent.name}_stage1 --out {root}`)"
                   if p.parent.name in shipped_configs() else "give a checkpoint path or a managed name such as codeformer")
            raise UserError(
                f"finetune.weights: {weights} does not exist; fine-tuning needs a trained, unconditioned "
                f"{ft.get('base')} network: {how}"
            )
