"""One-time conversion of a training checkpoint that holds foreign Python objects into plain tensors.

PyTorch-Lightning ``.ckpt`` files keep, beside ``state_dict``, objects such as the ``callbacks`` dict
keyed by callback *classes* (``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint``), which
``torch.load(weights_only=True)`` refuses. This reads such a file with the same weights-only unpickler,
standing an inert placeholder class in for every foreign name (so no foreign code is imported or run:
a placeholder only records its arguments), and writes the ``state_dict`` tensors alone.

    python -m bench.weights.lightning DAEFR_model.ckpt DAEFR_model.pth
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch

from bench.core.atomic import atomic_open
from bench.weights.resolve import CONVERT_COMMAND as COMMAND
from bench.weights.spec import WeightsFileError


class Foreign:
    """Inert stand-in for a class or function named in a checkpoint: it records, never runs, anything."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.items, self.entries = args, kwargs, [], {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    # a stand-in for a dict or list subclass (Lightning's AttributeDict) receives its items
    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries[key] = value

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)


def foreign_globals(path: str | os.PathLike[str]) -> list[str]:
    """The names a checkpoint references that the weights-only unpickler does not know (read, never imported)."""
    return list(torch.serialization.get_unsafe_globals_in_checkpoint(os.fspath(path)))


def load_with_placeholders(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)`` with every foreign name replaced by its own :class:`Foreign` subclass."""
    stand_ins = [(type(name.rsplit(".", 1)[-1], (Foreign,), {}), name) for name in foreign_globals(path)]
    with torch.serialization.safe_globals(stand_ins):
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True)


def extract_tensors(obj: Any, path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a loaded training checkpoint (or the dict itself), tensors only."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        top = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise WeightsFileError(path, f"no 'state_dict' of tensors in it (top level: {top})",
                               "pass the training checkpoint (.ckpt) the method's README names")
    return dict(state)


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Write ``src``'s ``state_dict`` to ``dst`` as a plain ``{"state_dict": tensors}`` file; the tensor count."""
    if Path(src).resolve() == Path(dst).resolve():
        raise WeightsFileError(dst, "the output would overwrite the input", "name another output file")
    try:
        obj = load_with_placeholders(src)
    except Exception as exc:  # not a zip checkpoint, damaged, or an opcode the weights-only unpickler refuses
        raise WeightsFileError(src, f"cannot be read with the weights-only unpickler ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:160]})",
                               "pass the released .ckpt file (download it again if it is truncated)") from exc
    state = extract_tensors(obj, src)
    with atomic_open(dst, "wb") as fh:
        torch.save({"state_dict": state}, fh)
    return len(state)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    ap.add_argument("src", help="the training checkpoint (e.g. DAEFR_model.ckpt)")
    ap.add_argument("dst", help="the plain tensor file to write (e.g. DAEFR_model.pth)")
    args = ap.parse_args(argv)
    try:
        n = convert(args.src, args.dst)
    except (WeightsFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} tensors to {args.dst}; pass it with --weights")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
