"""One run over many processes with torch.distributed (launched by torchrun, also under Slurm).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; this module reads them,
opens the process group (NCCL on GPUs, gloo on CPU), picks each process's GPU from LOCAL_RANK,
splits a unit's batches over the ranks by image index and moves finished batches to rank 0 with
collectives. Without those variables every call is a no-op for one plain process.

Batches are cut from the unit's to-do list in image order, whatever the world size, and rank r
takes batches r, r + W, r + 2W, ...; so a shard (one finished batch) is the same file for any
number of ranks and rank 0 merges the same shards in the same order as one process would.
"""
from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from bench.core.errors import UserError

T = TypeVar("T")

#: the variables torchrun (and ``srun torchrun``) sets for every worker
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: how long a collective waits for the slowest rank (a unit's share of work can take hours)
DEFAULT_TIMEOUT_MIN = 360


def launched() -> bool:
    """True inside a process started by torchrun (or anything that sets its variables)."""
    return all(v in os.environ for v in LAUNCH_VARS)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def pick_device(requested: str) -> str:
    """``cuda``/``auto`` under torchrun -> ``cuda:LOCAL_RANK`` (one process per GPU); else unchanged."""
    if not launched():
        return requested
    wants_cuda = requested == "cuda" or (requested == "auto" and torch.cuda.is_available())
    if not wants_cuda or not torch.cuda.is_available():
        return requested
    lr = local_rank()
    if lr >= torch.cuda.device_count():
        raise UserError(
            f"LOCAL_RANK {lr} but only {torch.cuda.device_count()} GPU(s) visible; "
            "start at most one process per GPU (torchrun --nproc_per_node)"
        )
    return f"cuda:{lr}"


@dataclass(frozen=True)
class Dist:
    """This process's place in the run; ``Dist()`` is one plain process (no process group)."""

    rank: int = 0
    world_size: int = 1
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return bool(self.backend)

    def info(self) -> dict[str, Any]:
        """What the manifest records."""
        return {"world_size": self.world_size, "backend": self.backend or None}

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def gather(self, obj: T) -> list[T] | None:
        """Every rank's ``obj`` in rank order on rank 0; None elsewhere."""
        if not self.active:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init(device: torch.device) -> Dist:
    """Join the process group torchrun describes (NCCL for a CUDA device, gloo otherwise)."""
    if not launched():
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # object collectives over NCCL use the current device
    if not dist.is_initialized():
        minutes = float(os.environ.get("BFRBENCH_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
        kwargs: dict[str, Any] = {"backend": backend, "timeout": _dt.timedelta(minutes=minutes)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    else:
        backend = dist.get_backend()
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), backend=str(backend))


def plan_batches(indices: Sequence[int], batch_size: int) -> list[list[int]]:
    """Cut image indices (in order) into batches; the same cut for any world size."""
    idx = list(indices)
    return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]


def my_batches(batches: Sequence[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """Batches r, r + W, r + 2W, ... of a plan: rank ``rank``'s share."""
    return list(batches[rank::world_size])


def assign_owners(names_by_rank: Sequence[Sequence[str]]) -> dict[str, int]:
    """Each shard file to one rank that sees it, spread evenly (on a shared disk every rank sees all)."""
    seen: dict[str, list[int]] = {}
    for rank, names in enumerate(names_by_rank):
        for name in names:
            seen.setdefault(name, []).append(rank)
    return {name: ranks[pos % len(ranks)] for pos, (name, ranks) in enumerate(sorted(seen.items()))}


def check_same(dist: Dist, what: str, value: Any) -> None:
    """Every rank must see the same ``value`` (e.g. a unit's data fingerprint); else a clear error."""
    values = dist.all_gather(value)
    bad = [r for r, v in enumerate(values) if v != values[0]]
    if bad:
        raise UserError(
            f"{what} differs between rank 0 and rank(s) {bad}: every node must see the same files "
            "(put datasets and the run folder on a shared filesystem)"
        )


def refuse_in_process_user_code(dist: Dist, methods: Sequence[str]) -> None:
    """Refuse, in one line, a method that runs the user's code in this process (``ntire:``) under world size > 1.

    Its team function writes one outputs folder inside the run folder: every rank would run it into
    the same folder at once. Each rank raises the same line before any work.
    """
    if dist.world_size <= 1:
        return
    from bench.core import plugins
    from bench.core.registry import METHODS

    plugins.load_all()
    for name in methods:
        if METHODS.resolves(name) and METHODS.resolve(name).meta.get("runs_user_code"):
            raise UserError(f"method {name} runs its team's code in this process: under torchrun each of the "
                            f"{dist.world_size} ranks would run it into the same folder; refused",
                            fix="run it without torchrun (one process), or score its saved outputs with outputs:DIR")


def check_same_settings(dist: Dist, settings: dict[str, Any]) -> None:
    """Every rank must run with the same settings (batch size, limit, methods...) before any work starts.

    Each rank raises the same one-line error naming the settings that differ, so no rank computes
    a share of a run that the others cut differently.
    """
    values = dist.all_gather(settings)
    differ = sorted({k for v in values for k in set(v) | set(values[0]) if v.get(k) != values[0].get(k)})
    if differ:
        ranks = [r for r, v in enumerate(values) if v != values[0]]
        shown = ", ".join(f"{k}: rank 0 {values[0].get(k)!r}, rank {ranks[0]} {values[ranks[0]].get(k)!r}"
                          for k in differ[:3])
        raise UserError(f"torchrun ranks started with different settings ({shown}); rank(s) {ranks} differ from "
                        "rank 0", fix="start every rank with the same command line and config")
