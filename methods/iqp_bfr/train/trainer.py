"""One entry point for the three IQP training stages and plug-and-play fine-tuning.

``Trainer(config, out_dir).run()`` trains stage 1 (dual-codebook VQGAN), 2 (quality-conditioned
code lookup), 3 (CFT + discrete quality optimisation) or ``finetune`` (a score embedding bolted
onto an existing code-lookup network), as ``config['stage']`` says. The output folder holds::

    config.yaml            the resolved configuration
    log.csv                training scalars every log.every iterations (+ TensorBoard if asked)
    eval.csv               held-out figures every eval.every iterations (if eval.root is set)
    net_g_latest.pth       params / params_ema / net_config (release layout), for the next stage
                           (fine-tuning: embedding.pth, the score table for the ``+iqp`` methods)
    checkpoints/state_*.pt full training state (networks, optimizers, scalers, EMA, RNG)

Resuming (``resume=True``) loads the newest readable training state and continues; batches are
a pure function of (seed, iteration), so a resumed run reproduces an uninterrupted one.
"""
from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from bench.core.atomic import atomic_open, atomic_write_text
from bench.core.device import resolve_device
from bench.core.errors import UserError
from methods.iqp_bfr.train.data import DataConfig, FaceTrainSet, iterate_batches
from methods.iqp_bfr.train.monitor import CSVLog, TensorBoard
from methods.iqp_bfr.train.stages import Precision, Stage

_STATE_RE = re.compile(r"state_(\d+)\.pt$")
#: log.csv columns of the adversarial terms (present from the first row, empty until gan.start_iter)
GAN_COLUMNS = ("l_g_gan", "d_weight", "l_d_real", "l_d_fake")


def stage_class(stage: str) -> type[Stage]:
    if stage == "1":
        from methods.iqp_bfr.train.stages import Stage1

        return Stage1
    if stage == "2":
        from methods.iqp_bfr.train.stages import Stage2

        return Stage2
    if stage == "3":
        from methods.iqp_bfr.train.stage3 import Stage3

        return Stage3
    from methods.iqp_bfr.train.finetune import FineTune

    return FineTune


def resolve_data_root(root: str) -> str:
    """A data folder, or ``demo`` / ``demo:gt``: the HQ faces of the embedded demo set (built on first use)."""
    if root.split(":")[0] != "demo":
        return root
    try:
        from bench.data.demo import build_demo
    except ImportError as exc:
        raise UserError("data.root 'demo' needs bench.data.demo, which is not available here") from exc
    base = Path(build_demo())  # the demo folder itself (never Path.root, its anchor)
    subs = [root.split(":", 1)[1]] if ":" in root else ["gt", "hq"]
    for sub in subs:
        if (base / sub).is_dir():
            return str(base / sub)
    return str(base)


def lr_at(sched: dict[str, Any], base: float, it: int, total: int) -> float:
    """Learning rate at iteration ``it`` (1-based): constant, cosine (base -> eta_min) or multistep.

    Stateless (a function of the iteration), so resuming needs no scheduler state.
    """
    kind = sched.get("type", "constant")
    if kind == "constant":
        return base
    if kind == "cosine":  # CodeFormer: CosineAnnealingRestartLR with one period of total_iter
        lo = float(sched.get("eta_min", 0.0))
        return lo + 0.5 * (base - lo) * (1.0 + math.cos(math.pi * min(it - 1, total) / total))
    if kind == "multistep":
        passed = sum(1 for m in sched.get("milestones", []) if it > int(m))
        return base * float(sched.get("gamma", 0.5)) ** passed
    raise UserError(f"train.scheduler.type {kind!r}: use constant, cosine or multistep")


class Trainer:
    """Runs one training stage from a resolved config (see :mod:`methods.iqp_bfr.train.config`)."""

    def __init__(self, cfg: dict[str, Any], out_dir: str | Path, resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        existing = self.states()
        if existing and not resume:
            raise UserError(f"{self.out} already holds a training run; pass --resume to continue it or --out NEW_DIR")
        self.device = resolve_device(cfg["device"])
        self.prec = Precision(cfg["precision"], self.device, float(cfg["train"]["fp16_init_scale"]))
        if cfg["precision"] != "fp32" and self.device.type == "cpu":
            warnings.warn(f"precision {cfg['precision']} on CPU: autocast works but is slower than fp32", stacklevel=2)
        torch.manual_seed(int(cfg["seed"]))
        data_cfg = DataConfig.from_dict({**cfg["data"], "root": resolve_data_root(str(cfg["data"].get("root", "")))})
        self.stage: Stage = stage_class(cfg["stage"])(cfg, self.device, self.prec)
        img = getattr(self.stage.net_config, "img_size", None)
        if img and data_cfg.size != img:
            raise UserError(f"data.size {data_cfg.size} differs from the network's img_size {img}; set data.size: {img}")
        if cfg["stage"] == "1":
            data_cfg.degrade = False
        self.data = FaceTrainSet(data_cfg, seed=int(cfg["seed"]), need_scores=self.stage.needs_scores)
        self.eval_batches = self._eval_set(data_cfg)
        self.start = 0
        if resume and existing:
            self._load_state(existing)
        self.log = CSVLog(self.out / "log.csv", resume_step=self.start, columns=self._log_columns())
        self.eval_log = CSVLog(self.out / "eval.csv", resume_step=self.start)
        self.tb = TensorBoard(self.out / "tb", bool(cfg["log"]["tensorboard"]))
        self._write_config()

    def _log_columns(self) -> list[str]:
        """log.csv columns known before the first row: learning rates, and the GAN's once it starts later."""
        cols = list(self.stage.current_lr())
        if getattr(self.stage, "net_d", None) is not None:
            cols += list(GAN_COLUMNS)
        return cols

    # -- files ------------------------------------------------------------------------------
    def states(self) -> list[Path]:
        """Saved training states, newest first."""
        if not self.ckpt_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.ckpt_dir.iterdir() if (m := _STATE_RE.search(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def _write_config(self) -> None:
        import yaml

        atomic_write_text(self.out / "config.yaml", yaml.safe_dump(self.cfg, sort_keys=False))

    def _load_state(self, states: list[Path]) -> None:
        for path in states:  # newest readable state wins: a kill during a save leaves the older ones
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                self.stage.load_state_dict(state["stage"])
            except Exception as exc:  # noqa: BLE001 - a truncated file: fall back to the previous one
                warnings.warn(f"{path}: unreadable training state ({type(exc).__name__}); trying an older one", stacklevel=2)
                continue
            torch.set_rng_state(state["rng"])
            if torch.cuda.is_available() and "cuda_rng" in state:
                torch.cuda.set_rng_state_all(list(state["cuda_rng"]))
            self.start = int(state["iter"])
            return
        raise UserError(f"no readable training state in {self.ckpt_dir}; start a new run without --resume")

    def save_state(self, it: int) -> Path:
        """Full training state + the release-style export of the networks."""
        state: dict[str, Any] = {"iter": it, "stage": self.stage.state_dict(), "rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.stack(torch.cuda.get_rng_state_all())
        path = self.ckpt_dir / f"state_{it:08d}.pt"
        with atomic_open(path, "wb") as fh:
            torch.save(state, fh)
        with atomic_open(self.out / self.stage.export_name, "wb") as fh:
            torch.save({**self.stage.export(), "iter": it}, fh)
        keep = max(1, int(self.cfg["checkpoint"]["keep"]))
        for old in self.states()[keep:]:
            old.unlink(missing_ok=True)
        return path

    def _eval_set(self, data_cfg: DataConfig) -> list[dict[str, Any]]:
        e = self.cfg["eval"]
        self.held_out = False
        if not e.get("root"):
            return []
        holdout = str(e["root"]) == "holdout"
        root = data_cfg.root if holdout else resolve_data_root(str(e["root"]))
        self.held_out = holdout or Path(root).resolve() != Path(data_cfg.root).resolve()
        if not self.held_out:
            warnings.warn(f"eval.root {e['root']} is the training folder: these figures are not held out "
                          "(set data.holdout: N and eval.root: holdout)", stacklevel=2)
        ecfg = DataConfig(
            root=root,
            holdout=data_cfg.holdout if holdout else 0,
            split="holdout" if holdout else "train",
            scores=e.get("scores"),
            default_score=float(e.get("score", 0.9)),
            size=data_cfg.size,
            degrade_size=data_cfg.degrade_size,
            degradation=e.get("degradation") or data_cfg.degradation,
            hflip=False,
            batch_size=data_cfg.batch_size,
            degrade=self.cfg["stage"] != "1",
        )
        return FaceTrainSet(ecfg, seed=int(e["seed"]), need_scores=False).fixed_batches(data_cfg.batch_size, int(e["max_images"]))

    # -- the loop -----------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Mean held-out figures over the evaluation set (empty without eval.root)."""
        if not self.eval_batches:
            return {}
        sums: dict[str, float] = {}
        n = 0
        for b in self.eval_batches:
            k = len(b["name"])
            for key, v in self.stage.evaluate(b).items():
                sums[key] = sums.get(key, 0.0) + v * k
            n += k
        return {key: v / n for key, v in sums.items()}

    def run(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train from the current iteration to ``train.total_iter`` (or ``stop_at``); returns a summary."""
        t = self.cfg["train"]
        total = int(t["total_iter"])
        end = min(total, stop_at) if stop_at else total
        log_every = max(1, int(self.cfg["log"]["every"]))
        ckpt_every = max(1, int(self.cfg["checkpoint"]["every"]))
        eval_every = int(self.cfg["eval"]["every"])
        if self.start == 0 and self.eval_batches:
            self._record_eval(0)
        window: dict[str, list[float]] = {}
        tic, last = time.perf_counter(), self.start
        it = self.start
        workers = int(self.cfg["data"].get("num_workers", 0) or 0)
        bar = progress_bar(self.start, end, f"stage {self.cfg['stage']}")
        for it, batch in enumerate(iterate_batches(self.data, self.start, end, workers), start=self.start + 1):
            self.stage.set_lr(lambda base, it=it: lr_at(t["scheduler"], base, it, total))
            values = self.stage.step(it, batch)
            for k, v in values.items():
                window.setdefault(k, []).append(float(v))
            if it % log_every == 0 or it == total:
                row: dict[str, Any] = {"step": it, **self.stage.current_lr()}
                row.update({k: sum(v) / len(v) for k, v in window.items()})
                row.update(self.stage.log_summary())
                row["sec_per_iter"] = (time.perf_counter() - tic) / (it - last)
                self.log.add(row)
                self.log.flush()
                self.tb.add(row, it)
                bar.set_postfix_str(loss_summary(row), refresh=False)
                window, tic, last = {}, time.perf_counter(), it
            bar.update(1)
            if eval_every and it % eval_every == 0 and self.eval_batches:
                self._record_eval(it)
            if it % ckpt_every == 0 or it == end:
                self.save_state(it)
        bar.close()
        self.tb.close()
        return {"iter": it, "out": str(self.out), "log": self.log.rows[-1] if self.log.rows else {},
                "eval": self.eval_log.rows[-1] if self.eval_log.rows else {}, "held_out": self.held_out}

    def _record_eval(self, it: int) -> None:
        row = {"step": it, **self.evaluate()}
        self.eval_log.add(row)
        self.eval_log.flush()
        self.tb.add({f"eval/{k}": v for k, v in row.items() if k != "step"}, it)


def progress_bar(start: int, end: int, desc: str):
    """A tqdm bar over iterations on a terminal; silent when stderr is a file or pipe (no redraws in logs)."""
    import sys

    from tqdm import tqdm

    quiet = not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    return tqdm(total=end, initial=start, desc=desc, unit="it", disable=quiet, dynamic_ncols=True, leave=True)


def loss_summary(row: dict[str, Any], limit: int = 4) -> str:
    """The first few losses of a log row, for the progress bar (``l_pix=0.42 l_percep=1.8``)."""
    shown = [f"{k}={float(v):.3g}" for k, v in row.items() if k.startswith(("l_", "ce_", "reward")) and v is not None]
    return " ".join(shown[:limit])


def train(cfg: dict[str, Any], out_dir: str | Path, resume: bool = False, stop_at: int | None = None) -> dict[str, Any]:
    """Build a :class:`Trainer` and run it (the ``bfrbench train`` entry point)."""
    return Trainer(cfg, out_dir, resume=resume).run(stop_at=stop_at)
