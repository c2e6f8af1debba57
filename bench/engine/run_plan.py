"""What a run is made of, below the Runner: its methods (built once or recorded) with their manifest
records, each dataset opened with its metrics, per-dataset binding, and each dataset's manifest record.

:class:`RunPlan` is mixed into :class:`bench.engine.runner.Runner`, which runs the units it plans.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from bench.config import MethodSpec
from bench.core.errors import UserError
from bench.core.names import folder_name
from bench.core.registry import DATASETS, METHODS, METRICS, UnknownNameError
from bench.data.fingerprint import check_entry, dataset_fingerprint
from bench.engine import reuse
from bench.engine.run_folder import layout
from bench.engine.sizes import COMPARE_INTERPOLATION, size_record
from bench.engine.unit_work import _absolute
from bench.metrics.base import metric_facts

#: default metrics, in display order; unregistered names are ignored, GT metrics need GT
DEFAULT_METRICS = [
    "psnr", "ssim", "lpips", "ids", "lmd", "fid",
    "niqe", "brisque", "piqe",
    "fid-mobilenet", "ids-dlib", "lmd-5pt",
]


def default_metrics(has_gt: bool) -> list[str]:
    """The default metrics, in display order (GT metrics only where the dataset has GT; pyiqa's set when installed)."""
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


class RunPlan:
    """Planning a run's methods and datasets (mixed into :class:`bench.engine.runner.Runner`)."""

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

    def _plan_methods(self, specs: list[MethodSpec]) -> tuple[dict[str, tuple[MethodSpec, Any]], dict[str, Any]]:
        """Every method that can run, built once (or recorded), with its manifest record; the others are skipped."""
        methods: dict[str, tuple[MethodSpec, Any]] = {}
        methods_info: dict[str, Any] = {}
        for spec in specs:
            if spec.name not in METHODS:
                raise UserError(str(_unknown(METHODS, spec.name)))
            # a rerun whose units are all finished never builds the network (bench/engine/reuse.py)
            m = reuse.recorded(self.run_dir, spec, self.cfg.seed) if not self.dist.active else None
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
                        ds_units: list) -> dict[str, Any]:
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


def _unknown(registry, name: str) -> Exception:
    try:
        registry.entry(name)
    except UnknownNameError as exc:
        return exc
    return UnknownNameError(name)


def _create_prefixed(name: str):
    return DATASETS.entry(name).factory()
