"""The restoration-method interface every method implements.

A method takes a batch of aligned faces as float tensors (B, 3, H, W), RGB, in [0, 1]
and returns restored faces (B, 3, S, S) in [0, 1] (S = ``output_size``, 512 for the
benchmarks). The runner quantises outputs to uint8 levels (``bench.core.device.to_uint8_levels``:
``(x * 255).round()``, half to even as numpy's and torch's round, as the official scripts do)
before metrics see them.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.core.registry import METHODS
from bench.weights.resolve import state_dict_mismatch  # noqa: F401 - re-exported for the methods
from bench.weights.standin import seeded_normal  # noqa: F401 - re-exported for the methods


def check_unit(method: str, param: str, value: Any, hint: str) -> float:
    """A method parameter that must be a float in [0, 1]; else one ValueError naming ``method``, ``param`` and ``hint``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{method}: {param} must be in [0, 1] ({hint}), got {value}")
    return number


def check_quality(method: str, quality: Any) -> float:
    """IQP's asked-for ``quality`` as a float in [0, 1] (0.9 asks for the best); else one ValueError naming ``method``."""
    return check_unit(method, "quality", quality, "0.9 asks for the best")


def noise_generator(seed: int, key: str) -> torch.Generator:
    """A CPU generator for one image: seeded from SHA-256 of (run seed, image key), so any batching draws the same."""
    digest = hashlib.sha256(f"{int(seed)}\0{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def image_noise(seed: int, keys: Sequence[str], shape: tuple[int, ...]) -> torch.Tensor:
    """(len(keys), *shape) standard normal noise, image i from ``noise_generator(seed, keys[i])``."""
    return torch.stack([torch.randn(shape, generator=noise_generator(seed, k)) for k in keys])


@dataclass
class WeightsInfo:
    """Which weights a method instance runs on, for the manifest and every report."""

    name: str
    path: str | None = None
    sha256: str | None = None
    #: True for random / synthetic / stand-in weights: results must be labelled so
    standin: bool = False
    note: str = ""


@dataclass
class MethodInfo:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: list[WeightsInfo] = field(default_factory=list)

    @property
    def standin(self) -> bool:
        return any(w.standin for w in self.weights)


class RestorationMethod(torch.nn.Module):
    """Base class for restoration methods."""

    name: ClassVar[str] = ""
    #: True when the method takes an IQP quality condition (``quality`` parameter)
    takes_quality: ClassVar[bool] = False
    input_size: ClassVar[int] = 512
    output_size: ClassVar[int] = 512
    #: True for a method that must run in fp32 whatever the engine's ``--dtype`` (the engine decides precision)
    needs_fp32: ClassVar[bool] = False
    #: catalogue names of the checkpoints it loads (``bfrbench fetch NAME``)
    weights: ClassVar[tuple[str, ...]] = ()
    #: the family it belongs to (tables group by it), and one line for ``bfrbench list``
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True for a method that reads saved results by image name instead of restoring (``outputs:DIR``): the
    #: engine calls :meth:`restore_named` (which names the images it has no result for), never ``restore``
    reads_outputs: ClassVar[bool] = False
    #: True for a method bound to each dataset before its unit (:meth:`bind_dataset`): its ``info()`` (the
    #: unit key) then covers what it read for that set, e.g. a content hash; it is not recorded for reuse
    binds_dataset: ClassVar[bool] = False
    #: True for a method whose output depends on random noise: before each call the engine binds the run seed
    #: and the images' keys (:meth:`bind_noise`), and the method draws each image's noise from (seed, key) alone,
    #: so results do not depend on the batch or the ranks
    stochastic: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self.params: dict[str, Any] = dict(params)
        self.weights_info: list[WeightsInfo] = []
        #: check every input tensor (float, [0, 1], (B, 3, H, W)); set by bench.create_method
        self.check_inputs = False
        #: the run seed and the keys (image names) of the next call's images (``stochastic`` methods)
        self.noise_seed: int = 0
        self.noise_keys: list[str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("restore")
        if fn is not None and not getattr(fn, "__bfrbench_checked__", False):
            from bench.core.inputs import checked

            cls.restore = checked(fn, "restore", 1)

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> (B, 3, S, S) float in [0, 1]."""
        raise NotImplementedError

    def bind_noise(self, seed: int, keys: Sequence[str] | None = None) -> None:
        """The run seed and the keys of the images the next :meth:`restore` call gets (None: keys unknown)."""
        self.noise_seed = int(seed)
        self.noise_keys = None if keys is None else [str(k) for k in keys]

    def restore_named(
        self, names: list[str], lq: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, str], dict[str, list[str]]]:
        """The results of the images ``names`` (B', 3, S, S) in [0, 1], the names without one (with why), and
        per-image conversion notes; a method that ``reads_outputs`` implements it (the others restore)."""
        return self.restore(lq), {}, {}

    def output_file(self, name: str) -> str | None:
        """The file a ``reads_outputs`` method read image ``name`` from (the report shows it); None otherwise."""
        return None

    def bind_dataset(self, dataset: str, pairs: list[Any], aliases: tuple[str, ...] = (),
                     known: list[str] | None = None, workdir: Path | None = None) -> dict[str, Any] | None:
        """Prepare for one dataset's unit (``binds_dataset``): ``pairs`` are the images run, ``known`` every image
        of the set (beyond --limit), ``workdir`` its own folder in the run folder; a report for the manifest, or None."""
        return None

    @torch.no_grad()
    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        return self.restore(lq)

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def info(self) -> MethodInfo:
        return MethodInfo(name=self.name, params=dict(self.params), weights=list(self.weights_info))


METHODS.bind_base(RestorationMethod)


def load_release_or_standin(spec_name: str, weights: str | None, build: Callable[[], torch.nn.Module],
                            extract: Callable[[Any, Path], dict[str, torch.Tensor]],
                            standin: Callable[[dict[str, tuple[int, ...]]], dict[str, torch.Tensor]],
                            what: str, fix: str) -> tuple[torch.nn.Module, list[WeightsInfo]]:
    """``build()``'s network in eval mode, its weights loaded strictly, and which they are: ``standin(shapes)`` for
    ``weights="random"``, else the tensors ``extract`` takes from the checkpoint (resolved before building, to fail
    fast); a mismatch is one line naming the file, the tensors and ``fix``."""
    from bench import weights as W

    path = None if weights == "random" else W.resolve(spec_name, weights)
    net = build()
    if path is None:
        net.load_state_dict(standin({k: tuple(v.shape) for k, v in net.state_dict().items()}), strict=True)
        info = WeightsInfo(name=spec_name, standin=True, note="deterministic random stand-in weights")
    else:
        state = extract(W.load_state_dict(path), path)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise W.WeightsFileError(path, f"does not match the {what} ({state_dict_mismatch(net, state)})", fix) from exc
        info = WeightsInfo(name=spec_name, path=str(path), sha256=W.sha256_file(path))
    return net.eval(), [info]
