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
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config import MethodSpec, RunConfig, content_hash
from bench.core.device import dtype_support, run_dtype, to_uint8, to_uint8_levels
from bench.core.errors import UserError
from bench.core.names import folder_name
from bench.core.progress import progress as progress_bar
from bench.core.registry import DATASETS, METHODS, METRICS, UnknownNameError
from bench.data.fingerprint import check_entry, dataset_fingerprint
from bench.engine import distributed, results, reuse
from bench.engine.loading import DecodedCache, LoadedBatch, iter_batches
from bench.engine.phases import timed_iter
from bench.engine.run_folder import RunFolder, layout
from bench.engine.run_folder import shards as shard_io
from bench.engine.sizes import COMPARE_INTERPOLATION, size_record, to_benchmark_size
from bench.engine.step import Engine, PreparedMethod, values_to_host
from bench.metrics.base import FACTS, Metric, MetricUnavailable, metric_facts
from bench.weights import MissingWeightsError, WeightsFileError

log = logging.getLogger("bfrbench")

#: the lock file in a run folder (see :func:`bench.core.locks.file_lock`)
LOCK_NAME = layout.LOCK

#: bump when a change alters the numbers a unit produces (invalidates cached units)
RESULTS_VERSION = 1

#: default metrics, in display order; unregistered names are ignored, GT metrics need GT
DEFAULT_METRICS = [
    "psnr", "ssim", "lpips", "ids", "lmd", "fid",
    "niqe", "brisque", "piqe",
    "fid-mobilenet", "ids-dlib", "lmd-5pt",
]


def default_metrics(has_gt: bool) -> list[str]:
    names = []
    for name in DEFAULT_METRICS:
        if name not in METRICS:
            continue
        if METRICS.entry(name).meta.get("needs_gt", False) and not has_gt:
            continue
        names.append(name)
    import importlib.util

    if importlib.util.find_spec("pyiqa") is not None:  # the field's NR-IQA set, when pyiqa is installed
        names += [n for n in ("musiq", "maniqa", "clipiqa", "topiq-face") if n in METRICS]
    return names


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

    @property
    def per_image(self) -> Any:
        """One row per dataset, method and image, one column per metric (a pandas DataFrame, as per_image.parquet)."""
        return results.build_per_image(self.units)


class Runner:
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
        if self.device.type == "cuda":  # host metrics (NIQE...) in a process pool while the GPU works; serial on CPU
            from bench.engine.hostpool import default_workers
            from bench.engine.loading import default_workers as loader_workers

            busy = loader_workers() if config.workers is None else config.workers
            self.engine.host_workers = default_workers(busy)
        self.dist = distributed.init(self.device)  # a no-op unless torchrun started this process
        distributed.check_same_settings(self.dist, config.work_settings())  # before any work, on every rank
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

    def _fingerprint(self, ds_name: str, dataset: Any, pairs: list, n_all: int) -> dict[str, Any]:
        """manifest.json's ``dataset_fingerprint`` of the scored files and how it compares with the published one."""
        if getattr(dataset, "lq_dir", None) is None:
            return {}
        fp = dataset_fingerprint(dataset, pairs)
        if len(pairs) < n_all:
            return {"dataset_fingerprint": fp.digest, "published_fingerprint": "subset",
                    "published_note": f"{len(pairs)} of {n_all} images (--limit): not compared with a published set"}
        check = check_entry(ds_name, fp)
        if check.differs:
            self._warn(f"WARNING dataset {ds_name}: {check.message}")
        return {"dataset_fingerprint": fp.digest, "published_fingerprint": check.status,
                "published_note": check.message}

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
        """A built method, in eval mode on the run's device."""
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
            "dtype": self.dtype,
            "limit": self.cfg.limit,
        }
        return content_hash(key), key

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

    def _open_unit(self, dataset, spec: MethodSpec, method, metric_names: list[str], pairs) -> _OpenUnit:
        """The unit's key and folder, its shards checked and loaded, and the images still to compute."""
        chash, key = self._unit_key(dataset, spec, method, metric_names, pairs)
        # the unit hash covers the dataset and method names: a readable prefix is enough here
        folder = RunFolder(self.run_dir)
        unit_dir = folder.unit_dir(dataset.name, spec.label, chash)
        if isinstance(method, reuse.RecordedMethod) and not shard_io.is_done(unit_dir):
            method = self._materialize(spec)  # batches to compute: now the network is needed
            chash, key = self._unit_key(dataset, spec, method, metric_names, pairs)
            unit_dir = folder.unit_dir(dataset.name, spec.label, chash)
        distributed.check_same(self.dist, f"the data of {dataset.name} (unit {chash})", chash)
        metrics = self.build_metrics(metric_names, dataset.name)
        unit_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            self._drop_untrustworthy_shards(unit_dir)
        self.dist.barrier()
        reused = shard_io.is_done(unit_dir)
        if self.dist.is_main and not reused:
            shard_io.write_unit_key(unit_dir, key)
        shards = self._load_shards(unit_dir)
        done_names: set[str] = set()
        for names in self.dist.all_gather(sorted(r["image"] for s in shards.values() for r in s["rows"])):
            done_names.update(names)
        todo = [i for i, p in enumerate(pairs) if p.name not in done_names]
        again = False
        if todo and isinstance(method, reuse.RecordedMethod):  # shards were dropped after all: build it now
            method = self._materialize(spec)
            again = self._unit_key(dataset, spec, method, metric_names, pairs)[0] != chash
        return _OpenUnit(method, chash, unit_dir, metrics, reused, shards, todo, again)

    def _merge_unit(self, dataset: str, metrics: dict[str, Metric], all_shards: dict[str, dict]) -> tuple:
        """Every shard merged in file order (the same for any number of ranks): per-image rows, and per metric
        its value, n, infinite count and first error."""
        per_image: list[dict[str, Any]] = []
        for m in metrics.values():
            m.reset()
        with self.engine.phases("merge"):
            for shard_name in sorted(all_shards, key=layout.shard_order):
                shard = all_shards[shard_name]
                for name, m in metrics.items():
                    if name in shard["states"]:
                        m.merge_state(shard["states"][name])
                per_image.extend(shard["rows"])
        values, counts, n_inf, errors = {}, {}, {}, {}
        for name, m in metrics.items():
            values[name], counts[name], n_inf[name] = self._metric_value(dataset, name, m, per_image)
            why = next((r["metric_errors"][name] for r in per_image if name in r.get("metric_errors", {})), "")
            if why:
                errors[name] = why
        return per_image, values, counts, n_inf, errors

    def _metric_value(self, dataset: str, name: str, m: Metric, per_image: list[dict]) -> tuple[float, int, int]:
        """A merged metric's (value, n, images with an infinite value); see results.INF_RULE."""
        try:
            with self.engine.phases(f"compute:{name}"):  # the metric's finalisation (e.g. FID's matrix square root)
                value = float(m.compute())
        except Exception as exc:  # e.g. FID with too few images
            self._skip("metric", name, f"could not compute: {exc}", dataset=dataset)
            value = float("nan")
        vals = np.array([r["values"].get(name, np.nan) for r in per_image], dtype=np.float64)
        n_inf = int(np.isinf(vals).sum())
        if not m.per_image:
            return value, sum(1 for r in per_image if r["status"] == "ok" and name not in r.get("metric_errors", {})), n_inf
        n = int(np.isfinite(vals).sum())
        if n == 0 and n_inf and np.isnan(value):
            value = float(vals[np.isinf(vals)].max())  # every value infinite: the value is inf
        return value, n, n_inf

    def _geometry(self) -> dict[str, Any]:
        """How a unit's images are cut into batches; shards of another geometry are never merged."""
        return {"batch_size": int(self.cfg.batch_size)}

    def _drop_untrustworthy_shards(self, unit_dir: Path) -> None:
        """Remove shards that cannot be merged as they are; the unit then computes those batches again.

        A shard that cannot be read (truncated, foreign) is dropped alone. The whole unit is
        dropped when an unfinished unit was started with another batch geometry, its shards mix
        geometries, or two shards hold the same image (two writers, before run folders were
        locked): its result never mixes geometries.
        """
        paths = shard_io.shard_paths(unit_dir)
        if not paths:
            return
        readable, unreadable = [], []
        for path in paths:
            shard = shard_io.read_shard(path)
            (unreadable if shard is None else readable).append((path, shard))
        if unreadable:
            names = ", ".join(p.name for p, _ in unreadable)
            self._warn(f"  {unit_dir.name}: {len(unreadable)} unreadable shard(s) ({names}); computing them again")
            shard_io.remove_unit_files([p for p, _ in unreadable], unit_dir)
        problem = self._shard_problem([s for _, s in readable], shard_io.is_done(unit_dir))
        if not problem:
            return
        log.warning("%s: %s; computing it afresh", unit_dir.name, problem)
        self._warn(f"  {unit_dir.name}: {problem}; computing it afresh")
        shard_io.remove_unit_files([p for p, _ in readable], unit_dir)

    def _shard_problem(self, loaded: list[dict], done: bool) -> str:
        """Why a unit's readable shards cannot be merged as they are ("" when they can)."""
        seen: set[str] = set()
        geometries = [shard.get("geometry") for shard in loaded]
        for shard, geometry in zip(loaded, geometries):
            names = [r["image"] for r in shard["rows"]]
            if geometry != geometries[0]:
                return f"its shards mix batch geometries ({geometries[0]}, {geometry})"
            if not done and geometry != self._geometry():
                return f"it was started with another batch geometry ({geometry})"
            if seen.intersection(names) or len(set(names)) != len(names):
                return "two shards hold the same image"
            seen.update(names)
        return ""

    def _load_shards(self, unit_dir: Path) -> dict[str, dict]:
        """The finished shards this rank owns (each file is owned by one rank); failed batches are deleted."""
        names = [p.name for p in shard_io.shard_paths(unit_dir)]
        owners = distributed.assign_owners(self.dist.all_gather(names))
        shards: dict[str, dict] = {}
        for name in names:
            if owners[name] != self.dist.rank:
                continue
            shard = shard_io.read_shard(unit_dir / name)
            if shard is None or any(r.get("retry") for r in shard["rows"]):
                # a batch the method failed on (e.g. out of memory), or a shard gone bad: compute it again
                shard_io.remove_unit_files([unit_dir / name], unit_dir)
                continue
            shards[name] = shard
        return shards

    def _compute_shards(
        self, dataset, spec, method, metrics, pairs, todo: list[int], unit_dir: Path, shards: dict[str, dict]
    ) -> int:
        """Run this rank's batches of ``todo`` (image indices), writing one shard per finished batch."""
        plan = distributed.plan_batches(todo, self.cfg.batch_size)
        mine = distributed.my_batches(plan, self.dist.rank, self.dist.world_size)
        if not mine:
            return 0
        need_gt = any(m.needs_gt for m in metrics.values())
        prepared = self.prepare(spec.label, method)
        # only the last batch of the plan can be short, so batching this rank's images gives its planned batches
        loader = iter_batches(
            [pairs[i] for b in mine for i in b], self.cfg.batch_size, self.cfg.workers,
            pin_memory=self.device.type == "cuda", need_gt=need_gt, size=self.image_size,
            cache=self._cache(dataset.name),
        )
        images_dir = self.run_dir / "images" / folder_name(dataset.name) / folder_name(spec.label)
        quiet = self.cfg.quiet or not self.dist.is_main
        progress = progress_bar(sum(map(len, mine)), f"{dataset.name} | {spec.label}", quiet)
        phases = self.engine.phases
        # with a host pool, batch k's host metrics are still scored while batch k+1 is loaded, restored and
        # measured on the device; batch k's shard is completed and written after that (a lag of one batch)
        lag = self.engine.host_workers > 0  # the serial path (no pool) writes each batch at once, as before
        written: list[int] = []

        def write(work: _BatchWork) -> None:
            """Complete a batch (its host metrics' values and states) and write its shard, atomically."""
            self._complete(work, metrics)
            with phases("shard_write"):  # serialised and written atomically
                shard = {"rows": work.rows, "states": work.states, "geometry": self._geometry()}
                name = shard_io.write_shard(unit_dir, work.planned[0], shard)
            shards[name] = shard
            written.append(len(work.rows))
            progress.update(len(work.rows))

        pending: _BatchWork | None = None
        try:
            for planned, batch in zip(mine, timed_iter(loader, phases, "data_wait")):
                work = self._process_batch(batch, prepared, metrics, images_dir, defer_host=lag)
                work.planned = planned
                if sorted(r["image"] for r in work.rows) != sorted(pairs[i].name for i in planned):
                    raise RuntimeError("internal: a loaded batch differs from its planned images")
                if pending is not None:
                    done, pending = pending, None
                    write(done)
                if lag and work.measured is not None and work.measured.pending is not None:
                    pending = work
                else:  # nothing in the pool for this batch: written now
                    write(work)
        except BaseException:
            if pending is not None:  # the batch before the failing one is finished: keep it
                try:
                    write(pending)
                except Exception as exc:  # noqa: BLE001 - the first error is the one to report
                    log.warning("the last finished batch could not be written (%s: %s)", type(exc).__name__, exc)
            raise
        if pending is not None:
            write(pending)
        progress.close()
        return len(written)

    def _complete(self, work: _BatchWork, metrics: dict[str, Metric]) -> None:
        """Fill a deferred batch's rows and states with its host metrics' values, errors and states (from the pool)."""
        measured = work.measured
        if measured is None or measured.pending is None:
            return
        host = list(measured.pending.metrics)
        self.engine.finish(measured, merge=False)  # the batch's own states; the shared instances are untouched
        with self.engine.phases("host_copy"):
            values = values_to_host({n: measured.values[n] for n in host if n in measured.values})
        for i, row in enumerate(work.measured_rows):
            merged = {**row["values"], **{k: v[i] for k, v in values.items()}}
            row["values"] = {n: merged[n] for n in metrics if n in merged}  # the serial path's order
            row["metric_errors"] = measured.image_errors[i]
        work.states.update(measured.host_states)

    @torch.no_grad()
    def _process_batch(self, batch: LoadedBatch, prepared: PreparedMethod, metrics: dict[str, Metric],
                       images_dir: Path, defer_host: bool = False) -> _BatchWork:
        """One batch: its rows and metric states; with ``defer_host`` the host pool's metrics are left in flight."""
        rows: list[dict[str, Any]] = [{"image": name, "status": "error", "error": reason, "values": {}}
                                      for name, reason in batch.errors.items()]
        for m in metrics.values():
            m.reset()  # each shard holds only its own batch's state
        restored = self._restore_batch(batch, prepared, rows) if batch.names else None
        if restored is None:
            for m in metrics.values():
                m.reset()
            return self._batch_work(rows, metrics)
        out, lq, batch = restored
        phases = self.engine.phases
        with phases("upload"):  # resize to the benchmark size; GT (and LQ) to the device
            out = to_benchmark_size(out, self.image_size)  # compared at the benchmark's size (recorded per method)
            gt = self.engine.to_device(batch.gt) if batch.gt is not None else None
            if lq is None and any(getattr(m, "needs_lq", False) for m in metrics.values()):
                lq = self.engine.to_device(batch.lq)
        measured = self.engine.measure(metrics, out, gt, lq, defer_host=defer_host)
        with phases("host_copy"):  # per-image values to the host (one copy per batch)
            values, metric_errors = values_to_host(measured.values), measured.image_errors
        # an outputs folder's images are shown from where they were read (the report's gallery)
        out_paths: list[str | None] = [prepared.method.output_file(n) for n in batch.names]
        if self.cfg.save_images:
            with phases("save_images"):
                self._save_images(out, batch, images_dir, out_paths)
        for i, name in enumerate(batch.names):
            rows.append({"image": name, "status": "ok", "error": "", "lq_path": _absolute(batch.lq_paths[i]),
                         "gt_path": _absolute(batch.gt_paths[i]), "out_path": out_paths[i],
                         "conversions": batch.conversions.get(name, []),
                         "values": {k: v[i] for k, v in values.items()}, "metric_errors": metric_errors[i]})
        work = self._batch_work(rows, metrics)
        work.measured, work.measured_rows = measured, rows[-len(batch.names):]
        return work

    def _restore_batch(self, batch: LoadedBatch, prepared: PreparedMethod,
                       rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor | None, LoadedBatch] | None:
        """(outputs, LQ on the device or None, the images that have an output); None when no image has one.

        A failing batch loses only its own images: they get retryable error rows (a rerun computes them).
        """
        try:
            if prepared.method.reads_outputs:  # saved results read by name: some images may have none
                return self._read_outputs(batch, prepared, rows)
            with self.engine.phases("restore"):
                return self.engine.restore(prepared, batch.lq), None, batch
        except Exception as exc:
            log.warning("restoring a batch failed (%s: %s); its images are marked as errors", type(exc).__name__, exc)
            for name in batch.names:  # retryable: a rerun recomputes this batch (bad files are not retried)
                rows.append({"image": name, "status": "error", "error": f"{type(exc).__name__}: {exc}", "values": {},
                             "retry": True})
            return None

    def _read_outputs(self, batch: LoadedBatch, prepared: PreparedMethod,
                      rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor, LoadedBatch] | None:
        """A method that reads saved results: the images it has a result for; the others are its error rows."""
        lq = self.engine.to_device(batch.lq)
        out, failed, conv = prepared.method.restore_named(batch.names, lq)
        for name, reason in failed.items():
            rows.append({"image": name, "status": "error", "error": reason, "values": {},
                         "method_error": True, "conversions": conv.get(name, [])})
        for name, items in conv.items():
            batch.conversions[name] = batch.conversions.get(name, []) + items
        keep = [i for i, n in enumerate(batch.names) if n not in failed]
        if not keep:
            return None
        return to_uint8_levels(out.float()), lq[keep], batch.subset(keep)

    def _batch_work(self, rows: list[dict], metrics: dict[str, Metric]) -> _BatchWork:
        """A batch's rows with every metric's state as it is now (its own batch's: the instances are reset per batch)."""
        with self.engine.phases("shard_write"):  # metric states to the host
            return _BatchWork(rows=rows, states={name: m.state() for name, m in metrics.items()})

    def _save_images(self, out: torch.Tensor, batch: LoadedBatch, images_dir: Path, out_paths: list) -> None:
        """Each restored image as PNG (--save-images); ``out_paths`` gets its path inside the run folder."""
        from bench.core.imageio import write_image

        arr = to_uint8(out).permute(0, 2, 3, 1).cpu().numpy()
        for i, name in enumerate(batch.names):
            path = images_dir / f"{name}.png"
            write_image(path, arr[i])
            out_paths[i] = path.relative_to(self.run_dir).as_posix()  # relocatable with the run folder

    def _cache(self, dataset: str) -> DecodedCache | None:
        """One decoded-image cache per set, worth keeping only when several methods run over it."""
        if len(self.cfg.methods) < 2:
            return None
        if getattr(self, "_cache_for", None) != dataset:
            self._cache_for, self._decoded = dataset, DecodedCache()
        return self._decoded

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
                          datasets=datasets_info)

    def _plan_methods(self, specs: list[MethodSpec]) -> tuple[dict[str, tuple[MethodSpec, Any]], dict[str, Any]]:
        """Every method that can run, built once (or recorded), with its manifest record; the others are skipped."""
        methods: dict[str, tuple[MethodSpec, Any]] = {}
        methods_info: dict[str, Any] = {}
        for spec in specs:
            if spec.name not in METHODS:
                raise UserError(str(_unknown(METHODS, spec.name)))
            # a rerun whose units are all finished never builds the network (bench/engine/reuse.py)
            m = reuse.recorded(self.run_dir, spec) if not self.dist.active else None
            if m is None:
                m = self._build_method(spec)
                if m is not None:
                    self.prepare(spec.label, m)  # fast path (and compile) before any unit's clock starts
                    self._record_method(spec, m)
            if m is not None:
                if METHODS.entry(spec.name).meta.get("runs_user_code"):
                    self._warn(f"  {spec.label}: runs the Python code in {spec.name.split(':', 1)[1]} "
                               "(allowed by --allow-code)")
                methods[spec.label] = (spec, m)
                methods_info[spec.label] = self._method_record(spec, m)
        return methods, methods_info

    def _method_record(self, spec: MethodSpec, m: Any) -> dict[str, Any]:
        """manifest.json's entry of a method: name, parameters, weights, sizes, how the engine called it."""
        info = m.info()
        record = {
            "name": spec.name,
            "params": info.params,
            "weights": [dataclasses.asdict(w) for w in info.weights],
            "standin": info.standin,
            "takes_quality": METHODS.entry(spec.name).meta.get("takes_quality", False),
            **size_record(m, self.image_size),
        }
        if spec.label in self._prepared:  # how the engine called it (a reused unit never calls it)
            record["images_per_call"] = self._prepared[spec.label].images_per_call(int(self.cfg.batch_size))
        if record["resize"]:
            self._say(f"  {spec.label}: outputs {record['output_size']} px, compared at "
                      f"{self.image_size} px (resized {COMPARE_INTERPOLATION}, recorded in manifest.json)")
        return record

    def _open_dataset(self, ds_name: str) -> tuple[Any, list, list]:
        """The dataset, all its pairs, and the pairs this run uses (--limit)."""
        try:
            dataset = DATASETS.create(ds_name) if ":" not in ds_name else _create_prefixed(ds_name)
        except UnknownNameError as exc:
            raise UserError(str(exc)) from exc
        all_pairs = list(dataset.pairs())
        pairs = all_pairs[: self.cfg.limit] if self.cfg.limit else all_pairs
        if not pairs:
            raise UserError(f"dataset {ds_name}: no images found under {getattr(dataset, 'root', '?')}")
        return dataset, all_pairs, pairs

    def _dataset_metrics(self, ds_name: str, dataset: Any, metrics_info: dict[str, Any]) -> list[str]:
        """The metrics run on this dataset (GT metrics only where it has GT); their facts go to ``metrics_info``."""
        names = self.cfg.metrics if self.cfg.metrics is not None else default_metrics(dataset.has_gt)
        metric_names = []
        for n in names:
            if n not in METRICS:
                raise UserError(str(_unknown(METRICS, n)))
            if METRICS.entry(n).meta.get("needs_gt", False) and not dataset.has_gt:
                self._skip("metric", n, "needs ground truth, and this dataset has none", dataset=ds_name)
                continue
            metric_names.append(n)
            metrics_info[n] = metric_facts(n)
        return metric_names

    def _bind(self, label: str, method: Any, ds_name: str, dataset: Any, pairs: list, all_pairs: list,
              record: dict[str, Any]) -> None:
        """Bind a per-dataset method (an outputs folder) to this dataset; its report goes to the manifest."""
        workdir = self.run_dir / layout.METHOD_OUTPUTS / folder_name(label) / folder_name(dataset.name)
        report = method.bind_dataset(ds_name, pairs, (dataset.name,), known=[p.name for p in all_pairs],
                                     workdir=workdir)
        record.setdefault("outputs", {})[ds_name] = report
        record["content_hash"] = {**record.get("content_hash", {}), ds_name: report["content_hash"]}
        for problem in report["problems"][:20]:
            self._warn(f"  {label}: {problem}")
        if len(report["problems"]) > 20:
            self._warn(f"  {label}: ... {len(report['problems']) - 20} more (manifest.json)")

    def _dataset_record(self, ds_name: str, dataset: Any, pairs: list, n_all: int,
                        ds_units: list[UnitResult]) -> dict[str, Any]:
        """manifest.json's entry of a dataset: size, fingerprint, folders, bad input files, conversions, validation."""
        bad, conversions = {}, {}
        for u in ds_units:
            for r in u.per_image:
                if r["status"] == "error" and not r.get("method_error"):
                    bad[r["image"]] = r["error"]
                elif r.get("conversions"):
                    conversions[r["image"]] = r["conversions"]
        validation = None
        if hasattr(dataset, "validate") and self.dist.is_main:
            with contextlib.suppress(Exception):
                rep = dataset.validate()
                validation = rep.to_dict() if hasattr(rep, "to_dict") else str(rep)
        fingerprint = self._fingerprint(ds_name, dataset, pairs, n_all) if self.dist.is_main else {}
        return {
            "n": len(pairs),
            **fingerprint,
            "root": str(getattr(dataset, "root", "")),
            # per_image.parquet's lq_path / gt_path are relative to these (the run folder can move)
            "lq_dir": _absolute(getattr(dataset, "lq_dir", None)),
            "gt_dir": _absolute(getattr(dataset, "gt_dir", None)),
            "has_gt": bool(dataset.has_gt),
            "bad_files": [{"file": k, "reason": v} for k, v in sorted(bad.items())],
            "conversions": conversions,
            "validation": validation,
        }


@dataclass
class _OpenUnit:
    """A unit ready to run: its (maybe materialised) method, key, folder, metrics, loaded shards and images to do."""

    method: Any
    chash: str
    unit_dir: Path
    metrics: dict[str, Metric]
    reused: bool
    shards: dict[str, dict]
    todo: list[int]
    #: the materialised method has another key than the recorded one: run that unit instead
    again: bool


@dataclass
class _BatchWork:
    """One processed batch before its shard is written: rows and states, maybe host metrics still in the pool."""

    rows: list[dict[str, Any]]
    #: every metric's state for this batch (a deferred host metric's is filled in when collected)
    states: dict[str, dict[str, torch.Tensor]]
    #: the engine's result, when the batch was measured (``pending``: host metrics in flight)
    measured: Any = None
    #: the rows of the measured images, in the batch's order
    measured_rows: list[dict[str, Any]] = field(default_factory=list)
    #: the batch's planned image indices (its shard is named by the first)
    planned: list[int] = field(default_factory=list)


def _unknown(registry, name: str) -> Exception:
    try:
        registry.entry(name)
    except UnknownNameError as exc:
        return exc
    return UnknownNameError(name)


def _absolute(path: Any) -> str | None:
    """A dataset file's absolute path (the run folder stores it relative to its dataset folder)."""
    return None if path is None else os.path.abspath(os.path.expanduser(str(path)))


def _create_prefixed(name: str):
    return DATASETS.entry(name).factory()


def run(config: RunConfig | None = None, **kwargs: Any) -> RunOutcome:
    """Python API: ``bench.engine.runner.run(RunConfig(...))`` or ``run(datasets=[...], methods=[...])``."""
    cfg = config or RunConfig(**kwargs)
    return Runner(cfg).run()
