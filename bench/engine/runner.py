"""The benchmark runner: datasets x methods, streamed load -> restore -> metrics, resumable.

Every batch goes through the engine's one step (:class:`bench.engine.step.Engine`): restore under
the run's precision policy, quantise to uint8 levels, every metric's update, on the device. Methods
and metrics (and their networks) are built once per run and reused across units; a set's decoded
images are kept in memory (:class:`bench.engine.loading.DecodedCache`) for the next method over it.

Each (dataset, method, method-config, metrics) is a *unit* named by a content hash. A unit
writes one shard per finished batch (per-image values + that batch's metric states, which
are mergeable), so a rerun skips finished units and resumes an interrupted unit from its
last finished batch; the merged result equals an uninterrupted run's exactly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config import MethodSpec, RunConfig, content_hash
from bench.core.device import dtype_support, run_dtype
from bench.core.errors import UserError
from bench.core.registry import METHODS, METRICS, UnknownNameError
from bench.engine import distributed, results, reuse
from bench.engine.loading import default_workers as loader_workers
from bench.engine.run_folder import layout
from bench.engine.run_folder import shards as shard_io
from bench.engine.run_plan import RunPlan
from bench.engine.step import Engine, PreparedMethod
from bench.engine.unit_work import UnitWork
from bench.metrics.base import FACTS, Metric, MetricUnavailable
from bench.weights import MissingWeightsError, WeightsFileError

log = logging.getLogger("bfrbench")

#: the lock file in a run folder (see :func:`bench.core.locks.file_lock`)
LOCK_NAME = layout.LOCK

#: bump when a change alters the numbers a unit produces (invalidates cached units)
RESULTS_VERSION = 1





@dataclass
class UnitResult:
    dataset: str
    label: str
    method_name: str
    config_hash: str
    metric_values: dict[str, float]
    metric_n: dict[str, int]
    per_image: list[dict[str, Any]]
    status: str  # computed | resumed | reused
    batches_computed: int = 0
    seconds: float = 0.0
    #: per metric: images whose value is +-inf (e.g. PSNR of an output equal to its GT), kept out of the mean
    metric_inf: dict[str, int] = field(default_factory=dict)
    #: per metric: why it failed (the first error met), for metrics that failed on some image
    metric_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class RunOutcome:
    run_dir: Path
    summary: Any  # pandas.DataFrame
    #: gains.csv's rows (conditioned vs base); empty when the run has no conditioned pair
    gains: Any = None
    units: list[UnitResult] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: per dataset: n, root, bad_files, conversions, validation (as in manifest.json)
    datasets: dict[str, Any] = field(default_factory=dict)
    #: per method label: its manifest.json record (name, params, weights, standin ...)
    methods: dict[str, Any] = field(default_factory=dict)

    @property
    def per_image(self) -> Any:
        """One row per dataset, method and image, one column per metric (a pandas DataFrame, as per_image.parquet)."""
        return results.build_per_image(self.units)


class Runner(RunPlan, UnitWork):
    """Runs a :class:`RunConfig`; see module docstring."""

    def __init__(self, config: RunConfig, *, image_size: int = 512) -> None:
        from bench.core import plugins

        plugins.load_all()
        config.validate()  # fields set one by one after construction (the API) are checked too
        self.cfg = config
        self.image_size = int(image_size)
        self.engine = Engine(distributed.pick_device(config.device), "fp32", compile=config.compile,
                             channels_last=config.channels_last)
        self.device = self.engine.device
        self.engine.dtype = self.dtype
        self.engine.seed = config.seed  # a stochastic method's per-image noise (with each image's key)
        #: DataLoader worker processes (``--workers``, or sized to the machine and the device)
        self.loader_workers = loader_workers(self.device.type) if config.workers is None else config.workers
        if self.device.type == "cuda":  # host metrics (NIQE...) in a process pool while the GPU works; serial on CPU
            from bench.engine.hostpool import default_workers

            self.engine.host_workers = default_workers(self.loader_workers)
        self.dist = distributed.init(self.device)  # a no-op unless torchrun started this process
        distributed.check_same_settings(self.dist, config.work_settings())  # before any work, on every rank
        distributed.refuse_in_process_user_code(self.dist, config.methods)
        ok, why = dtype_support(self.device, self.dtype)
        if not ok:
            raise UserError(f"--dtype {config.dtype}: {why}")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(self.dist.broadcast(str(Path(config.out or Path("runs") / stamp).resolve())))
        self.skipped: list[dict[str, Any]] = []
        self.metric_infos: dict[str, dict[str, Any]] = {}
        #: metrics built once per run: name -> instance, or the reason it could not be built
        self._metrics: dict[str, Metric | tuple[str, str]] = {}
        self._prepared: dict[str, PreparedMethod] = {}
        #: recorded methods built for real on first use (see _materialize)
        self._materialized: dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------------
    def _say(self, msg: str) -> None:
        """Progress and information: dropped by --quiet."""
        if not self.cfg.quiet and self.dist.is_main:
            print(msg, flush=True)


    def _warn(self, msg: str) -> None:
        """Warnings (a skip, a unit computed afresh): shown even with --quiet, on stderr."""
        if self.dist.is_main:
            print(msg, file=sys.stderr, flush=True)

    def _skip(self, kind: str, name: str, reason: str, fix: str = "", dataset: str = "", failed: bool = False) -> None:
        """Leave out a method or metric (``failed``: it could not run although it should have)."""
        entry = {"kind": kind, "name": name, "dataset": dataset, "reason": reason, "fix": fix}
        if failed:
            entry["failed"] = True
        if entry not in self.skipped:
            self.skipped.append(entry)
            short = reason.split(";")[0].split(": ", 1)[-1] if kind == "metric" else reason
            what = "failed" if failed else "skipped"
            self._warn(f"  {what} {kind} {name}{' on ' + dataset if dataset else ''}: {short[:300]}")

    def _build_metric(self, name: str, dataset: str) -> Metric | None:
        """The run's one instance of metric ``name`` (built on first use), or None when it cannot run here."""
        if name not in self._metrics:
            try:
                metric = METRICS.create(name)
            except (MetricUnavailable, MissingWeightsError) as exc:
                self._metrics[name] = (str(exc), getattr(exc, "fix", ""))
            except UnknownNameError as exc:
                raise UserError(str(exc)) from exc
            except (TypeError, ValueError) as exc:  # an option it lacks, or a value it refuses
                raise UserError(f"metric {name}: bad option ({exc})",
                                f"see `bfrbench list metrics --verbose` for {name.split(':')[0]}'s options") from exc
            except ImportError as exc:
                self._metrics[name] = (f"a package it needs is missing ({exc})", "pip install it")
            else:
                self._metrics[name] = metric.to(self.device)
                # the instance's label (options can change it) and, where it has several, the implementation
                # that runs on this device (impl='auto' resolved)
                self.metric_infos[name] = metric.info()
        built = self._metrics[name]
        if isinstance(built, tuple):
            self._skip("metric", name, built[0], built[1], dataset)
            return None
        return built

    def prepare(self, label: str, method) -> PreparedMethod:
        """The method in its fast form (channels_last, compile), prepared once per run."""
        if label not in self._prepared:
            prepared = self.engine.prepare(method, self.cfg.batch_size, self.image_size)
            for note in prepared.notes:
                self._say(f"  {label}: {note}")
            self._prepared[label] = prepared
        return self._prepared[label]

    def _build_method(self, spec: MethodSpec):
        kwargs = spec.kwargs()
        if spec.weights is not None:
            kwargs["weights"] = spec.weights
        try:
            method = METHODS.create(spec.name, **kwargs)
        except MissingWeightsError as exc:
            self._skip("method", spec.label, str(exc), exc.fix)
            return None
        except WeightsFileError as exc:  # a weights file that cannot be used: this method fails, the rest run
            self._skip("method", spec.label, str(exc), exc.fix, failed=True)
            return None
        except UnknownNameError as exc:
            raise UserError(str(exc)) from exc
        except TypeError as exc:
            raise UserError(f"method {spec.label}: bad parameter ({exc})") from exc
        return self.adopt_method(method)

    def _record_method(self, spec: MethodSpec, method) -> None:
        if self.dist.is_main and not method.binds_dataset:  # its info depends on the set it is bound to
            reuse.record(self.run_dir, spec, method)

    def _materialize(self, spec: MethodSpec):
        """The real method behind a recorded one, built once when a unit has batches to compute."""
        built = self._materialized
        if spec.label not in built:
            method = self._build_method(spec)
            if method is None:
                raise UserError(f"method {spec.label}: its recorded weights can no longer be loaded (see above)")
            self.prepare(spec.label, method)
            self._record_method(spec, method)
            built[spec.label] = method
        return built[spec.label]

    def adopt_method(self, method):
        """A built method, in eval mode on the run's device (a stochastic one bound to the run seed: its key has it)."""
        if getattr(method, "stochastic", False):
            method.bind_noise(self.cfg.seed)
        return method.eval().to(self.device)

    def build_metrics(self, names: list[str], dataset: str) -> dict[str, Metric]:
        """The run's instances of ``names`` (built once per run), leaving out those that cannot run here."""
        built = {n: self._build_metric(n, dataset) for n in names}
        return {n: m for n, m in built.items() if m is not None}

    def evaluate(self, dataset: str, spec: MethodSpec, method, metric_names: list[str], pairs) -> UnitResult:
        """One unit (``method`` over ``pairs`` with ``metric_names``) outside a full run, e.g. for ``profile --e2e``."""
        import types

        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self._run_unit(types.SimpleNamespace(name=dataset), spec, method, metric_names, pairs)

    @property
    def dtype(self) -> str:
        """The autocast dtype methods run in: --dtype on GPU; fp32 on CPU (as the unit key records)."""
        return run_dtype(self.device, self.cfg.dtype)

    # -- one unit -----------------------------------------------------------------
    def _unit_key(self, dataset, spec: MethodSpec, method, metric_names: list[str], pairs) -> tuple[str, dict]:
        info = method.info()
        key = {
            "version": RESULTS_VERSION,
            "dataset": dataset.name,
            "data": reuse.data_fingerprint(pairs),
            "method": spec.name,
            "params": info.params,
            "weights": [dataclasses.asdict(w) for w in info.weights],
            "metrics": sorted(metric_names),
            # the arithmetic each metric runs where it has several (impl='auto' picks per device; e.g. BasicSR's
            # own SSIM on a CPU, the batched torch path on a GPU): a unit is resumed only with the same paths
            "impls": self._metric_impls(metric_names, dataset.name),
            "dtype": self.dtype,
            "limit": self.cfg.limit,
        }
        return content_hash(key), key

    def _metric_impls(self, metric_names: list[str], dataset: str) -> dict[str, str]:
        """Per metric with several implementations: the one it runs on this run's device."""
        built = self.build_metrics(metric_names, dataset)
        return {n: m.active_impl for n, m in sorted(built.items()) if m.active_impl}

    def _run_unit(self, dataset, spec: MethodSpec, method, metric_names: list[str], pairs) -> UnitResult | None:
        """Compute this rank's share of a unit's missing batches; rank 0 merges every shard (None elsewhere)."""
        t0 = time.perf_counter()
        with self.engine.phases("setup"):  # the unit's key, its folder, the shards already there
            unit = self._open_unit(dataset, spec, method, metric_names, pairs)
        if unit.again:  # the materialised method has another key: that unit instead
            return self._run_unit(dataset, spec, unit.method, metric_names, pairs)
        batches = self._compute_shards(dataset, spec, unit.method, unit.metrics, pairs, unit.todo, unit.unit_dir,
                                       unit.shards) if unit.todo else 0
        gathered = self.dist.gather((unit.shards, batches))
        if gathered is None:
            return None
        all_shards: dict[str, dict] = {}
        for part, _ in gathered:
            all_shards.update(part)
        per_image, values, counts, n_inf, errors = self._merge_unit(dataset.name, unit.metrics, all_shards)
        if not shard_io.is_done(unit.unit_dir) and not any(r.get("retry") for r in per_image):
            shard_io.mark_done(unit.unit_dir, len(per_image))
        return UnitResult(
            dataset=dataset.name, label=spec.label, method_name=spec.name, config_hash=unit.chash,
            metric_values=values, metric_n=counts, per_image=per_image,
            status="reused" if unit.reused else ("resumed" if len(unit.todo) < len(pairs) else "computed"),
            batches_computed=sum(n for _, n in gathered), seconds=time.perf_counter() - t0,
            metric_inf=n_inf, metric_errors=errors,
        )


    # -- the run ------------------------------------------------------------------
    def run(self) -> RunOutcome:
        """Run everything holding the run folder's lock: a second run on one folder waits its turn.

        Rank 0 holds the lock for all ranks of a distributed run (they start once it has it).
        """
        from bench.core.locks import file_lock

        self.run_dir.mkdir(parents=True, exist_ok=True)

        def waiting(holder: str) -> None:
            # said even with --quiet: a silent wait looks like a hang
            print(f"bfrbench: run folder {self.run_dir} is in use by another bfrbench run ({holder}); "
                  "waiting for it to finish (Ctrl-C to stop, or pass another --out)", file=sys.stderr, flush=True)

        lock = file_lock(self.run_dir / layout.LOCK, on_wait=waiting) if self.dist.is_main else contextlib.nullcontext()
        with lock:
            self.dist.barrier()
            try:
                return self._run_locked()
            finally:
                self.engine.close()  # the host pool's processes, if any

    def _run_locked(self) -> RunOutcome:
        """Plan the methods, run every dataset's units, write the run folder (rank 0)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        ranks = f", {self.dist.world_size} ranks ({self.dist.backend})" if self.dist.active else ""
        self._say(f"bfrbench run -> {self.run_dir} (device {self.device}{ranks})")
        methods, methods_info = self._plan_methods(cfg.method_specs())
        units: list[UnitResult] = []
        datasets_info: dict[str, Any] = {}
        metrics_info: dict[str, Any] = {}
        for ds_name in cfg.datasets:
            dataset, all_pairs, pairs = self._open_dataset(ds_name)
            metric_names = self._dataset_metrics(ds_name, dataset, metrics_info)
            self._say(f"dataset {ds_name}: {len(pairs)} images")
            ds_units = []
            for label, (spec, method) in methods.items():
                if method.binds_dataset:  # e.g. an outputs folder: match its files to this dataset
                    self._bind(label, method, ds_name, dataset, pairs, all_pairs, methods_info[label])
                unit = self._run_unit(dataset, spec, method, metric_names, pairs)
                if unit is None:  # another rank than 0: its share is done, rank 0 writes the results
                    continue
                ds_units.append(unit)
                self._say(f"  {label}: {unit.status} ({unit.seconds:.1f}s)")
            units += ds_units
            datasets_info[ds_name] = self._dataset_record(ds_name, dataset, pairs, len(all_pairs), ds_units)
        for name, built in self.metric_infos.items():  # the built instances' own values win
            metrics_info[name] = {**metrics_info.get(name, {}), **{k: built[k] for k in (*FACTS, "impl") if k in built}}
        if not self.dist.is_main:  # rank 0 alone writes the run folder
            return RunOutcome(run_dir=self.run_dir, summary=results.build_summary([], {}, {}, []), skipped=self.skipped)
        summary, gains = results.write_run(self.run_dir, cfg, self.device, self.skipped, units, methods_info,
                                           metrics_info, datasets_info, distributed=self.dist.info())
        return RunOutcome(run_dir=self.run_dir, summary=summary, gains=gains, units=units, skipped=self.skipped,
                          datasets=datasets_info, methods=methods_info)


















def run(config: RunConfig | None = None, **kwargs: Any) -> RunOutcome:
    """Python API: ``bench.engine.runner.run(RunConfig(...))`` or ``run(datasets=[...], methods=[...])``."""
    cfg = config or RunConfig(**kwargs)
    return Runner(cfg).run()
