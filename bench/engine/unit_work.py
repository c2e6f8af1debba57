"""A unit's work, below the Runner: open it (key, folder, shards checked and loaded), compute its
missing batches through the engine's step (one shard per finished batch), merge its shards.

:class:`UnitWork` is the Runner's half that touches shards and batches; the Runner plans the units
and writes the run folder (:mod:`bench.engine.runner`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config import MethodSpec
from bench.core.device import to_uint8, to_uint8_levels
from bench.core.names import folder_name
from bench.core.progress import progress as progress_bar
from bench.engine import distributed, reuse
from bench.engine.loading import DecodedCache, LoadedBatch, iter_batches
from bench.engine.phases import timed_iter
from bench.engine.run_folder import RunFolder, layout
from bench.engine.run_folder import shards as shard_io
from bench.engine.sizes import to_benchmark_size
from bench.engine.step import PreparedMethod, values_to_host
from bench.metrics.base import Metric

log = logging.getLogger("bfrbench")


class UnitWork:
    """Opening, computing and merging one unit (mixed into :class:`bench.engine.runner.Runner`)."""

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
            [pairs[i] for b in mine for i in b], self.cfg.batch_size, self.loader_workers,
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
                return self.engine.restore(prepared, batch.lq, batch.names), None, batch
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


def _absolute(path: Any) -> str | None:
    """A dataset file's absolute path (the run folder stores it relative to its dataset folder)."""
    return None if path is None else os.path.abspath(os.path.expanduser(str(path)))
