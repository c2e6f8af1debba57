"""The one batch step shared by ``run``, ``profile`` and ``restore``.

``restore -> quantise to uint8 levels -> every metric's update``, all on the device: the method
runs under the engine's precision policy (:func:`bench.core.device.method_dtype`), in its
prepared fast form (channels_last, optional ``torch.compile``), and the metrics see the restored
batch without a trip through the host. Per-image values stay on the device; the caller copies
them to the host once per batch (:func:`values_to_host`).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.core import hostmem
from bench.core.device import (
    FastPath,
    autocast,
    method_dtype,
    prepare_fast_path,
    resolve_device,
    to_device_images,
    to_uint8_levels,
    use_channels_last,
)
from bench.engine.phases import OFF

log = logging.getLogger("bfrbench")

#: images per method call on each device type where batching the method is slower than one image at a time
#: (on a 2-core CPU the stand-in codeformer took 31.4 s for 4 faces at batch 2 and 25.5 s one at a time; the
#: classical method gains nothing either); a type not listed runs the whole batch. Results never depend on it.
METHOD_BATCH: dict[str, int] = {"cpu": 1}


@dataclass
class PreparedMethod:
    """A method ready for the batch step: its fast callable, the dtype it runs in, and what was given up."""

    method: torch.nn.Module
    fast: FastPath
    dtype: str
    notes: list[str] = field(default_factory=list)
    #: images per call of the method (a batch is restored in chunks of this size); None: the whole batch
    per_call: int | None = None

    def images_per_call(self, batch_size: int) -> int:
        """How many images each call of the method gets in batches of ``batch_size`` (what the run records)."""
        return min(batch_size, self.per_call) if self.per_call else batch_size


@dataclass
class StepResult:
    """One batch's restored images (uint8 levels, on the device) and each metric's per-image values."""

    out: torch.Tensor
    values: dict[str, torch.Tensor]
    #: metric -> the first error it met in this batch
    errors: dict[str, str]
    #: per image of the batch: metric -> why that image has no value
    image_errors: list[dict[str, str]] = field(default_factory=list)
    #: host-pool work still in flight (``measure(..., defer_host=True)``); :meth:`Engine.finish` collects it
    pending: HostJobs | None = None
    #: per host metric: this batch's state alone, folded from the pool's slices (``finish(..., merge=False)``)
    host_states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


@dataclass
class HostJobs:
    """A batch's host-metric slices in the pool: the metrics, their jobs, and every metric's name in order."""

    pool: Any
    metrics: dict[str, Any]
    jobs: dict[str, list]
    order: tuple[str, ...]


class Engine:
    """Device, precision and fast-path options of one run; builds prepared methods and runs the batch step."""

    def __init__(self, device: str | torch.device = "auto", dtype: str = "fp32", *, compile: bool = False,
                 channels_last: str = "auto", compile_mode: str | None = None, host_workers: int = 0) -> None:
        self.device = resolve_device(device)
        if self.device.type == "cpu":  # freed tensors stay in the heap for reuse (no page faults per tensor)
            hostmem.keep_freed_memory()
        self._host_pool: Any = None
        #: processes scoring ``runs_on_host`` metrics off the device path (0: in this process, serially)
        self.host_workers = host_workers
        self.dtype, self.compile, self.compile_mode = dtype, bool(compile), compile_mode
        self.channels_last = use_channels_last(channels_last, self.device)
        #: images per method call (None: the whole batch); :data:`METHOD_BATCH` picks it per device type
        self.method_batch: int | None = METHOD_BATCH.get(self.device.type)
        #: per-phase timer (:mod:`bench.engine.phases`); OFF in a normal run (no clock, no device sync)
        self.phases = OFF
        #: the run seed a ``stochastic`` method draws each image's noise from (with the image's key)
        self.seed = 0

    def prepare(self, method: torch.nn.Module, batch_size: int, size: int | None = None) -> PreparedMethod:
        """Move ``method`` to the device and try the fast options on one example batch (see ``prepare_fast_path``)."""
        dtype = method_dtype(method, self.dtype)
        if getattr(method, "reads_outputs", False):  # saved outputs read by name: nothing to speed up
            return PreparedMethod(method=method, fast=FastPath(fn=method, channels_last=False, compiled=False),
                                  dtype=dtype)
        side = int(size or getattr(method, "input_size", 512))
        per_call = self.method_batch if self.method_batch and self.method_batch < batch_size else None
        example = torch.rand(per_call or batch_size, 3, side, side, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            fast = prepare_fast_path(method, example, device=self.device, dtype=dtype,
                                     channels_last=self.channels_last, compile=self.compile,
                                     compile_mode=self.compile_mode)
        notes = list(fast.notes)
        if dtype != self.dtype:
            notes.append(f"runs in {dtype}: the method says it needs fp32")
        if per_call:
            notes.append(f"restores {per_call} image(s) per call on {self.device.type}, batch {batch_size} split "
                         "(batching is slower there; the results do not depend on it)")
        return PreparedMethod(method=method, fast=fast, dtype=dtype, notes=notes, per_call=per_call)

    @property
    def host_workers(self) -> int:
        return self._host_workers

    @host_workers.setter
    def host_workers(self, n: int) -> None:
        """Worker processes for the host pool; 0 (with a warning) where starting them would deadlock."""
        n = int(n)
        if n > 0:
            from bench.engine.hostpool import unguarded_main

            why = unguarded_main()
            if why:
                warnings.warn(f"{why}; scoring host metrics in this process instead (put the script's code "
                              "under if __name__ == '__main__': to use the pool)", RuntimeWarning, stacklevel=2)
                n = 0
        self._host_workers = n

    @torch.no_grad()
    def restore(self, prepared: PreparedMethod, lq_u8: torch.Tensor, keys: Sequence[str] | None = None) -> torch.Tensor:
        """uint8 (B, 3, H, W) on any device -> restored float (B, 3, S, S) at uint8 levels, on the device.

        ``keys`` (the images' names) reach a ``stochastic`` method with the run seed before each call."""
        x = to_device_images(lq_u8, self.device, prepared.fast.channels_last)
        step = prepared.per_call or x.shape[0]
        stochastic = getattr(prepared.method, "stochastic", False)
        outs = []
        with autocast(self.device, prepared.dtype):
            for i in range(0, x.shape[0], step):
                if stochastic:
                    prepared.method.bind_noise(self.seed, None if keys is None else keys[i:i + step])
                outs.append(prepared.fast.fn(x[i:i + step]))
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return to_uint8_levels(out.float()).contiguous()

    @torch.no_grad()
    def measure(self, metrics: Mapping[str, Any], out: torch.Tensor, gt: torch.Tensor | None,
                lq: torch.Tensor | None = None, *, defer_host: bool = False) -> StepResult:
        """Every metric's ``update`` on one batch; a failing image loses only its own value (error noted per image).

        A metric's reference is the GT (``needs_gt``), or the LQ input for one that compares with it (``needs_lq``).
        With ``defer_host`` the host pool's metrics are left in flight (``result.pending``) for :meth:`finish`.
        """
        values: dict[str, torch.Tensor] = {}
        errors: dict[str, str] = {}
        image_errors: list[dict[str, str]] = [{} for _ in range(out.shape[0])]
        host = {n: m for n, m in metrics.items() if self.host_workers > 0 and getattr(m, "runs_on_host", False)
                and not m.needs_gt and not getattr(m, "needs_lq", False)}
        jobs = {}
        if host:  # the host pool starts on this batch while the device metrics run below
            with self.phases("host_submit"):
                u8 = out.mul(255.0).round_().to(torch.uint8).cpu()  # one device-to-host copy for every host metric
                pool = self._pool_for(host)
                jobs = {n: pool.submit(n, u8) for n in host}
        pending = []
        for name, m in metrics.items():
            if m.needs_gt and gt is None or name in host:
                continue
            ref = lq if getattr(m, "needs_lq", False) else (gt if m.needs_gt else None)
            with self.phases(f"metric:{name}"):
                before = m._snapshot()
                v, bad = m.try_update(out, ref)
            pending.append((name, m, ref, before, v, bad))
        # one image's failure costs only that image's value, at any batch size (as Metric.update_isolated);
        # whether any batch failed is read back once per batch, not once per metric
        with self.phases("isolation_check"):
            lazy = [bad.to(out.device) for *_, bad in pending if isinstance(bad, torch.Tensor)]
            flags = iter(torch.stack(lazy).tolist() if lazy else [])
        for name, m, ref, before, v, bad in pending:
            failed: dict[int, str] = {}
            if bool(next(flags)) if isinstance(bad, torch.Tensor) else bad:
                with self.phases(f"metric:{name}"):
                    m._restore(before)
                    v, failed = m.update_images(out, ref)
            self._note(name, v, failed, values, errors, image_errors)
        result = StepResult(out=out, values=values, errors=errors, image_errors=image_errors)
        if host:
            result.pending = HostJobs(pool=self._host_pool, metrics=host, jobs=jobs, order=tuple(metrics))
        return result if defer_host else self.finish(result)

    def finish(self, result: StepResult, *, merge: bool = True) -> StepResult:
        """Collect a batch's host-pool metrics into ``result`` (values, errors); a no-op when none is pending.

        Their slice states are folded into the metric instances (``merge``), or else kept in
        ``result.host_states`` as the batch's own states, the instances left untouched.
        """
        pending, result.pending = result.pending, None
        if pending is None:
            return result
        from concurrent.futures.process import BrokenProcessPool

        from bench.engine.hostpool import score_serially

        for name, m in pending.metrics.items():
            with self.phases(f"metric:{name}"):  # waiting for the pool (its work overlapped the device work)
                try:
                    v, failed, state = pending.pool.collect(name, pending.jobs[name], into=m if merge else None)
                except BrokenProcessPool as exc:  # a worker was killed (OOM killer...): this batch here, a new pool next
                    if self._host_pool is pending.pool:
                        log.warning("host pool broken (%s): scoring the batch in this process, a new pool next", exc)
                        self.close()
                    v, failed, state = score_serially(m, result.out)
                    if merge:
                        m.merge_state(state)
                        state = None
            if state is not None:
                result.host_states[name] = state
            self._note(name, v, failed, result.values, result.errors, result.image_errors)
        # the metrics' order, whichever finished first
        result.values = {n: result.values[n] for n in pending.order if n in result.values}
        return result

    @staticmethod
    def _note(name: str, v: torch.Tensor | None, failed: dict[int, str], values: dict[str, torch.Tensor],
              errors: dict[str, str], image_errors: list[dict[str, str]]) -> None:
        for i, why in failed.items():
            image_errors[i][name] = why
            errors.setdefault(name, why)
            log.warning("metric %s failed on image %d of a batch (%s)", name, i, why)
        if v is not None:
            values[name] = v.detach()

    def _pool_for(self, host: Mapping[str, Any]) -> Any:
        """The host pool holding exactly these metric instances (started again if the set changed)."""
        from bench.engine.hostpool import HostPool

        key = tuple((n, id(m)) for n, m in host.items())
        if self._host_pool is None or self._host_pool.key != key:
            self.close()
            self._host_pool = HostPool(host, self.host_workers)
            self._host_pool.key = key
        return self._host_pool

    def close(self) -> None:
        """Stop the host pool, if one was started."""
        if self._host_pool is not None:
            self._host_pool.close()
            self._host_pool = None

    def to_device(self, u8: torch.Tensor) -> torch.Tensor:
        """A uint8 batch as float [0, 1] on the engine's device (async copy)."""
        return to_device_images(u8, self.device)

    def step(self, prepared: PreparedMethod, metrics: Mapping[str, Any], lq_u8: torch.Tensor,
             gt_u8: torch.Tensor | None) -> StepResult:
        """The batch step: restore, quantise, every metric's update; nothing leaves the device."""
        out = self.restore(prepared, lq_u8)
        gt = to_device_images(gt_u8, self.device) if gt_u8 is not None else None
        lq = to_device_images(lq_u8, self.device) if any(getattr(m, "needs_lq", False) for m in metrics.values()) else None
        return self.measure(metrics, out, gt, lq)


def values_to_host(values: Mapping[str, torch.Tensor]) -> dict[str, list[float]]:
    """Per-image values of one batch as Python floats, in one device-to-host copy."""
    if not values:
        return {}
    out: dict[str, list[float]] = {}
    by_device: dict[torch.device, list[str]] = {}
    for n, v in values.items():  # device metrics and host-pool metrics (already on the CPU) mixed
        by_device.setdefault(v.device, []).append(n)
    for names in by_device.values():
        flat = [values[n].reshape(-1).to(torch.float64) for n in names]
        host = torch.cat(flat).cpu().tolist()
        i = 0
        for n, v in zip(names, flat):
            out[n] = host[i:i + v.numel()]
            i += v.numel()
    return {n: out[n] for n in values}

