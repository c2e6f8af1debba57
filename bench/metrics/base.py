"""The metric interface, in the style of torchmetrics.

A metric keeps named states (reduced by ``sum`` or by ``cat``), takes batches with
:meth:`Metric.update` and reports with :meth:`Metric.compute`. States are mergeable:
``a.merge_state(b.state())`` gives exactly what one metric fed both streams would
hold, so sharded, resumed and distributed runs add up to the same number.

Images reach a metric as float tensors (B, 3, H, W), RGB, values in [0, 1] that are
exact multiples of 1/255 (the uint8 image a paper would have saved to disk), on the
metric's device.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

import torch

from bench.core.errors import MetricUnavailable  # noqa: F401 - re-exported: metrics raise it from here
from bench.core.registry import METRICS

#: the facts every number of a metric carries into the manifest, the summary and the report
FACTS: tuple[str, ...] = ("protocol", "higher_better", "standard", "needs_gt")

#: a metric's arithmetic where it has two giving the same numbers: batched torch on its device, the stock tool's
#: own per image on the host, or the faster of the two where the metric is (:attr:`Metric.fastest_impl`)
Impl = Literal["auto", "device", "reference"]
IMPLS: tuple[str, ...] = get_args(Impl)


def check_impl(metric: str, impl: str) -> None:
    """One clear error for an ``impl`` option that is none of :data:`IMPLS`."""
    if impl not in IMPLS:
        raise ValueError(f"{metric}: impl must be one of {IMPLS}, not {impl!r} (e.g. {metric}:impl=reference)")


def metric_facts(name: str) -> dict[str, Any]:
    """What a run records about metric ``name`` before it is built: its registered facts and description.
    A name with options has no protocol here: the built instance's (:meth:`Metric.info`) is the answer."""
    meta = METRICS.entry(name).meta
    return {k: meta.get(k) for k in (*FACTS, "description")}


class _Direction:
    """``higher_better`` under another library's name, on the class and on an instance (options may flip it)."""

    def __init__(self, invert: bool) -> None:
        self.invert = invert

    def __get__(self, obj: Any, owner: type) -> bool:
        return bool((obj if obj is not None else owner).higher_better) != self.invert


class Metric(torch.nn.Module):
    """Base class. Subclasses set the class attributes and implement ``update`` / ``compute``."""

    #: registry name, e.g. "psnr"
    name: ClassVar[str] = ""
    higher_better: ClassVar[bool] = True
    #: pyiqa's name: ``not higher_better``
    lower_better = _Direction(invert=True)
    #: torchmetrics' name: ``higher_better``
    higher_is_better = _Direction(invert=False)
    needs_gt: ClassVar[bool] = False
    #: protocol label carried by every number, e.g. "basicsr-rgb-crop0"
    protocol: ClassVar[str] = ""
    #: False for a metric that departs from the papers' protocol (stand-in networks, other data)
    standard: ClassVar[bool] = True
    #: True when update() returns one value per image
    per_image: ClassVar[bool] = True
    #: scored on the host CPU (numpy / single-thread torch): the engine runs it in its host pool, off the device path
    runs_on_host: bool = False
    #: True for a metric that compares the output with the degraded input (``update(pred, lq)``)
    needs_lq: ClassVar[bool] = False
    #: catalogue names of the weights / assets it needs (``bfrbench fetch NAME``)
    weights: ClassVar[tuple[str, ...]] = ()
    #: an optional package it needs (e.g. "onnxruntime"); listed as unavailable when missing
    requires: ClassVar[str | None] = None
    #: one line for ``bfrbench list`` and the report
    description: ClassVar[str] = ""
    #: help for its options, by factory argument name
    option_help: ClassVar[dict[str, str]] = {}
    #: a preset of another metric, ``(name, {option: value})``: ``psnr-y`` is ``psnr:test_y_channel=true``,
    #: and that spec is labelled ``psnr-y`` (one protocol, one name)
    alias_of: ClassVar[tuple[str, dict[str, Any]] | tuple[()]] = ()
    #: for a metric with several implementations giving the same numbers (``impl``): the one ``impl='auto'``
    #: (the default) runs on each device type, the fastest there; a type not listed runs ``device``
    fastest_impl: ClassVar[dict[str, str]] = {}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether it can run here (its package importable, its weights present), and why not."""
        from bench.weights import availability

        return availability(*cls.weights, module=cls.requires)()

    def __init__(self) -> None:
        super().__init__()
        self._defaults: dict[str, tuple[Any, str]] = {}
        #: where the states live (followed by :meth:`_apply`; a metric without parameters has no other record)
        self._device = torch.device("cpu")
        #: check every input tensor (float, [0, 1], (B, 3, H, W)); set by bench.create_metric
        self.check_inputs = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("update")
        if fn is not None and not getattr(fn, "__bfrbench_checked__", False):
            from bench.core.inputs import checked

            cls.update = checked(fn, "update", 2)

    # -- state handling ---------------------------------------------------------
    def add_state(self, name: str, default: torch.Tensor | list, reduce: str) -> None:
        """Declare a state: ``reduce='sum'`` for a tensor that adds, ``'cat'`` for a list of tensors."""
        if reduce not in ("sum", "cat"):
            raise ValueError(f"reduce must be 'sum' or 'cat', not {reduce!r}")
        if reduce == "cat" and not isinstance(default, list):
            raise ValueError("a 'cat' state starts as an empty list")
        self._defaults[name] = (default, reduce)
        setattr(self, name, self._fresh(default))

    @staticmethod
    def _fresh(default: torch.Tensor | list) -> torch.Tensor | list:
        return [] if isinstance(default, list) else default.detach().clone()

    def reset(self) -> None:
        device = self.device
        for name, (default, _) in self._defaults.items():
            value = self._fresh(default)
            setattr(self, name, value.to(device) if isinstance(value, torch.Tensor) else value)

    def _snapshot(self) -> dict[str, Any]:
        """A cheap copy of the live states (list copies, tensor clones) for :meth:`_restore`."""
        return {n: list(getattr(self, n)) if r == "cat" else getattr(self, n).clone() for n, (_, r) in self._defaults.items()}

    def _restore(self, snap: dict[str, Any]) -> None:
        for name, value in snap.items():
            setattr(self, name, value)

    def state(self) -> dict[str, torch.Tensor]:
        """A CPU snapshot of every state (``cat`` states concatenated along dim 0)."""
        out: dict[str, torch.Tensor] = {}
        for name, (_default, reduce) in self._defaults.items():
            value = getattr(self, name)
            if reduce == "cat":
                out[name] = torch.cat([v.detach().cpu() for v in value]) if value else torch.empty(0)
            else:
                out[name] = value.detach().cpu().clone()
        return out

    def merge_state(self, other: dict[str, torch.Tensor]) -> None:
        """Fold another metric's :meth:`state` into this one."""
        device = self.device
        for name, (_, reduce) in self._defaults.items():
            if name not in other:
                raise KeyError(f"state {name!r} missing when merging {self.name}")
            value = other[name].to(device)
            if reduce == "cat":
                if value.numel():
                    getattr(self, name).append(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return self._device

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Metric:
        """Every ``.to``, ``.cuda``, ``.cpu``, ``.half``, ``.double`` ... also reaches the states and their
        defaults (as torchmetrics does): ``fn`` is torch's own conversion, applied to each state tensor."""
        out = super()._apply(fn, *args, **kwargs)
        self._device = fn(torch.zeros((), device=self.device)).device
        for name, (default, reduce) in self._defaults.items():
            value = getattr(self, name)
            setattr(self, name, [fn(v) for v in value] if reduce == "cat" else fn(value))
            self._defaults[name] = (default if isinstance(default, list) else fn(default), reduce)
        return out  # type: ignore[return-value]

    # -- the work ---------------------------------------------------------------
    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor | None:
        """Take a batch; return per-image values (B,) or None for a set-level metric."""
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor | None:
        return self.update(pred, gt)

    def update_isolated(
        self, pred: torch.Tensor, gt: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, dict[int, str]]:
        """:meth:`update`, but one image's failure costs only that image: (values or None, {index: error}).

        When the batch raises, or a per-image metric gives NaN for some image, the state is rolled
        back and the images are taken one at a time, so the result never depends on the batch size.
        An image whose own update raises or gives NaN is left out and reported by index.
        """
        before = self._snapshot()
        values, bad = self.try_update(pred, gt)
        if not bool(bad):
            return values, {}
        self._restore(before)
        return self.update_images(pred, gt)

    def try_update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> tuple[torch.Tensor | None, Any]:
        """:meth:`update` on the whole batch without a host sync: (values, bad).

        ``bad`` is True when it raised, else a 0-dim bool tensor on the values' device (some value is
        NaN), or False for a set-level metric; the caller rolls back and calls :meth:`update_images` when it holds.
        """
        try:
            values = self.update(pred, gt)
        except Exception:  # noqa: BLE001 - the caller retries image by image
            return None, True
        if values is None:
            return None, False
        return values, torch.isnan(values.detach()).any()

    def update_images(
        self, pred: torch.Tensor, gt: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, dict[int, str]]:
        """:meth:`update` one image at a time: (values, {index: error}); an image that raises or gives NaN is left out."""
        errors: dict[int, str] = {}
        out: list[float] = []
        for i in range(pred.shape[0]):
            one_gt = gt[i : i + 1] if gt is not None else None
            before = self._snapshot()
            try:
                v = self.update(pred[i : i + 1], one_gt)
            except Exception as exc:  # noqa: BLE001 - this image only
                self._restore(before)
                errors[i] = f"{type(exc).__name__}: {exc}"[:300]
                out.append(float("nan"))
                continue
            if v is not None:
                x = float(v.detach().double().reshape(-1)[0])
                if x != x:
                    errors[i] = "undefined for this image (NaN), e.g. a flat image without texture"
                out.append(x)
        return (torch.tensor(out, dtype=torch.float64) if self.per_image else None), errors

    def impl_on(self, device_type: str) -> str | None:
        """The implementation this instance runs on ``device_type`` (``impl='auto'`` resolved); None: it has one."""
        impl = getattr(self, "impl", None)
        if impl != "auto":
            return impl
        return self.fastest_impl.get(device_type, "device")

    @property
    def active_impl(self) -> str | None:
        """The implementation it runs where it is now (recorded in the manifest and profile.json)."""
        return self.impl_on(self.device.type)

    def reference_options(self) -> dict[str, Any]:
        """Options that switch this instance to the stock tool's own arithmetic where its default is a faster
        equivalent (e.g. ``impl='reference'``); the official-style loop of ``profile --e2e`` builds with them."""
        return {}

    def info(self) -> dict[str, Any]:
        """The facts this instance's numbers carry (options may change its protocol or ``standard``)."""
        impl = self.active_impl
        return {"name": self.name, **{k: getattr(self, k) for k in FACTS}, **({"impl": impl} if impl else {})}


class MeanOfImages(Metric):
    """A per-image metric whose set value is the mean of its per-image values."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), "sum")

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        """Per-image values (B,) for one batch; subclasses implement this."""
        raise NotImplementedError

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        if self.needs_gt and gt is None:
            raise ValueError(f"metric {self.name} needs ground truth")
        values = self.score(pred, gt).to(torch.float64)
        finite = torch.isfinite(values)
        self.total = self.total + values[finite].sum()
        self.count = self.count + finite.sum()
        return values

    def compute(self) -> float:
        if float(self.count) == 0:
            return float("nan")
        return float(self.total / self.count)
METRICS.bind_base(Metric)
