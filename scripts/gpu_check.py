"""Helpers of scripts/gpu_check.sh: demo faces for the carried folder, stand-in metric checkpoints, FLOPs, the
compiled-model timings, the CelebA-Test-sized folder, the summary.

    python scripts/gpu_check.py prepare FACES_DIR
    python scripts/gpu_check.py standins STANDIN_DIR METRICS_REPORT
    python scripts/gpu_check.py flops OUT_JSON DEVICE [METHOD_SPEC]
    python scripts/gpu_check.py compile OUT_JSON DEVICE DTYPE BATCH MODE [METHOD_SPEC]
    python scripts/gpu_check.py paperset FACES_DIR N DEST_DIR
    python scripts/gpu_check.py registered NAME...        (prints the NAMEs registered as methods here)
    python scripts/gpu_check.py summary OUT_DIR
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

#: the dense bf16 peak the roofline share is taken against (H100/H200 tensor cores, about 790 TFLOP/s measured
#: as the device notes give it); BF16_PEAK_TFLOPS overrides
BF16_PEAK_TFLOPS = float(os.environ.get("BF16_PEAK_TFLOPS", 790))
#: issue #26's targets: engine over floor, official over engine, compiled share of the roofline, paper table seconds
TARGETS = {"engine_over_floor": 1.2, "official_over_engine": 10.0, "roofline_share": 0.35, "paper_table_s": 300.0}


def _method(spec: str, device: str):
    """A stand-in (random weights) method from ``NAME[:key=value,...]``, in eval mode on ``device``."""
    import bench

    name, _, opts = spec.partition(":")
    kwargs = dict(kv.split("=", 1) for kv in opts.split(",") if kv)
    kwargs.setdefault("weights", "random")
    return bench.create_method(name, **kwargs).eval().to(device)


def flops(out: Path, device: str, spec: str = "codeformer") -> None:
    """FLOPs of one 512 image through the method (torch's FlopCounterMode, a multiply-add counted as 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    method = _method(spec, device)
    side = int(getattr(method, "input_size", 512))
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        method.restore(x)
    total = int(counter.get_total_flops())
    out.write_text(json.dumps({"method": spec, "size": side, "flops_per_image": total}, indent=1))
    print(f"{spec}: {total / 1e9:.1f} GFLOP per {side}x{side} image")


def compiled(out: Path, device: str, dtype: str, batch: str, mode: str, spec: str = "codeformer") -> None:
    """Images/s of the method at ``batch`` on the engine's fast path, eager or ``torch.compile(mode=MODE)``.

    MODE: eager, default, reduce-overhead (CUDA graphs), max-autotune (autotuned kernels and CUDA graphs) or
    max-autotune-no-cudagraphs. Compile time is measured apart (the first batches), then 10 batches timed.
    """
    import torch

    from bench.core.device import synchronize
    from bench.engine.step import Engine

    bs = int(batch)
    engine = Engine(device, dtype, compile=mode != "eager", compile_mode=None if mode in ("eager", "default") else mode)
    method = _method(spec, device)
    side = int(getattr(method, "input_size", 512))
    t0 = time.perf_counter()
    prepared = engine.prepare(method, bs, side)
    lq = (torch.rand(bs, 3, side, side, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8).to(device)
    for _ in range(3):  # compile, autotuning and graph capture happen in the first calls
        engine.restore(prepared, lq)
    synchronize(engine.device)
    warm_s = time.perf_counter() - t0
    iters = 10 if engine.device.type == "cuda" else 2
    t0 = time.perf_counter()
    for _ in range(iters):
        engine.restore(prepared, lq)
    synchronize(engine.device)
    ips = iters * bs / (time.perf_counter() - t0)
    row = {"method": spec, "mode": mode, "dtype": prepared.dtype, "batch": bs, "images_per_s": ips,
           "compiled": prepared.fast.compiled, "warmup_s": warm_s, "notes": prepared.notes, "device": str(engine.device)}
    out.write_text(json.dumps(row, indent=1))
    print(f"{spec} {mode} {prepared.dtype} b{bs}: {ips:.1f} images/s (compiled={prepared.fast.compiled}, "
          f"compile and warm-up {warm_s:.0f} s) {'; '.join(prepared.notes)}")


def paperset(faces: Path, n: str, dest_dir: str) -> None:
    """A CelebA-Test-sized folder: ``n`` LQ/GT pairs named apart, cycling the carried faces (symbolic links,
    so each is decoded like a distinct file)."""
    count, dest = int(n), Path(dest_dir)
    names = sorted(p.name for p in (faces / "lq").iterdir())
    for sub in ("lq", "gt"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        src = names[i % len(names)]
        for sub in ("lq", "gt"):
            link = dest / sub / f"{i:05d}_{src}"
            if not link.exists():
                link.symlink_to((faces / sub / src).resolve())
    print(f"{count} pairs in {dest} ({len(names)} distinct faces)")


def prepare(out: Path) -> None:
    """Copy the demo benchmark's faces (LQ and GT) into ``out``/lq and ``out``/gt."""
    import bench

    for p in bench.create_dataset("demo").pairs():
        shutil.copy(p.lq_path, out / "lq" / f"{p.name}.png")
        shutil.copy(p.gt_path, out / "gt" / f"{p.name}.png")
    print(f"prepared {len(list((out / 'lq').iterdir()))} faces and the NIQE/BRISQUE parameters in {out.parent}")


def standins(standin: Path, report: str) -> None:
    """Random checkpoints for the learned metrics (timings real, values not results); writes the usable specs."""
    import bench
    from bench.metrics.arcface_arch import ResNetArcFace
    from bench.metrics.awing_arch import FAN
    from tests._helpers.learned_helpers import save_random

    arc, fan = standin / "arcface_resnet18.pth", standin / "alignment_WFLW_4HG.pth"
    if not arc.exists():
        save_random(ResNetArcFace(), arc, seed=5, prefix="module.")
    if not fan.exists():
        save_random(FAN(), fan, seed=2, wrap="state_dict")

    def lpips_standin() -> str:
        """Random VGG16 features + random LPIPS linear layers (the real ones are 553 MB and not carried)."""
        from bench.metrics.lpips_metric import LPIPSNet

        vgg, lin = standin / "vgg16_random.pth", standin / "lpips_vgg_lin_random.pth"
        if not vgg.exists():
            net = LPIPSNet("vgg")
            save_random(net.features, vgg, seed=7, prefix="features.")
            state = {f"lin{k}.model.1.weight": m.weight.detach().abs() for k, m in enumerate(net.lins)}
            import torch

            torch.save(state, lin)
        return f"lpips:weights={vgg},linear={lin}"

    def fid_standin() -> str:
        """Random FID Inception weights and random 2048-d reference statistics (same cost as the real ones)."""
        import numpy as np

        from bench.metrics.fid import save_stats
        from bench.metrics.inception import FIDInceptionV3

        net, stats = standin / "pt_inception_random.pth", standin / "random_ffhq_512_stats.npz"
        if not net.exists():
            save_random(FIDInceptionV3(), net, seed=8)
            rng = np.random.default_rng(0)
            a = rng.standard_normal((2048, 2304)) / 48
            save_stats(stats, rng.standard_normal(2048) * 0.1, a @ a.T)
        return f"fid:weights={net},stats={stats}"

    wanted = ["psnr", "ssim"]
    for build in (lpips_standin, fid_standin):
        try:
            wanted.append(build())
        except Exception as exc:  # noqa: BLE001 - report, never stop the check
            print(f"no stand-in for {build.__name__}: {type(exc).__name__}: {exc}")
    wanted += [f"ids:weights={arc}", f"lmd:weights={fan}", "niqe"]
    usable, lines = [], []
    for spec in wanted:
        try:
            bench.create_metric(spec)
        except Exception as exc:  # missing package or weights: skipped, noted
            lines.append(f"skipped {spec}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        else:
            usable.append(spec)
            lines.append(f"usable {spec}")
    Path(report).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    (standin / "usable").write_text(" ".join(usable))


def registered(*names: str) -> None:
    """Print the ``names`` that are registered methods in this checkout (the throughput step skips the others)."""
    from bench.core import plugins
    from bench.core.registry import METHODS

    plugins.load_all()
    known = set(METHODS.names())
    print(" ".join(n for n in names if n in known))


def throughput_rows(out: Path) -> list[dict]:
    """The throughput step's rows (one per method and batch size) from each ``throughput_NAME/profile.json``."""
    rows = []
    for path in sorted(out.glob("throughput_*/profile.json")):
        data = json.loads(path.read_text())
        device = data["environment"].get("gpu", data["environment"]["device"])
        rows += [{k: r.get(k) for k in ("name", "batch_size", "dtype", "images_per_s", "compute_images_per_s",
                                         "latency_p50_ms", "peak_mem_mb", "channels_last", "status", "note")}
                 | {"device": device, "torch": data["environment"]["torch"]} for r in data["rows"]]
    return rows


def _verdict(value: float, target: float, at_most: bool) -> str:
    if value != value:
        return "not measured"
    ok = value <= target if at_most else value >= target
    return f"{'met' if ok else 'NOT met'} (target {'<=' if at_most else '>='} {target:g})"


def summary(out: Path) -> None:
    """The markdown tables of every step, each issue #26 target with met / NOT met (print)."""

    def load(name):
        path = out / name / "profile.json"
        return json.loads(path.read_text()) if path.exists() else None

    e2e = load("e2e")
    if e2e:
        env = e2e["environment"]
        print(f"device: {env.get('gpu', env['device'])}, torch {env['torch']}")
        for e in e2e.get("e2e", []):
            print(f"\n## {e['method']}: {e['images']} images, {e['dtype']} b{e['batch_size']} "
                  f"({e.get('images_per_call', e['batch_size'])} per method call), metrics {', '.join(e['metrics'])}")
            print("| path | seconds |\n|---|---|")
            print(f"| model forward alone | {e['model_only_s']:.2f} |")
            print(f"| model + metrics alone (pre-decoded, on the device) | {e['floor_s']:.2f} |")
            print(f"| engine (bfrbench run's unit) | {e['engine_s']:.2f} |")
            print(f"| official-style loop | {e['official_style_s']:.2f} |")
            print(f"\nengine / model = {e['engine_over_model']:.2f}x; engine / (model + metrics) = "
                  f"{e['engine_over_floor']:.2f}x {_verdict(e['engine_over_floor'], TARGETS['engine_over_floor'], True)}; "
                  f"official / engine = {e['official_over_engine']:.2f}x "
                  f"{_verdict(e['official_over_engine'], TARGETS['official_over_engine'], False)}")
            if e.get("metric_impls"):
                print("metric implementations: " + ", ".join(f"{k.split(':')[0]}={v}" for k, v in e["metric_impls"].items()))
            if e.get("phases"):  # where the engine's time goes (timed with a device sync at each phase boundary)
                print("\n| engine phase | seconds | share |\n|---|---|---|")
                for phase, sec in e["phases"].items():
                    share = sec / e["engine_s"] if e["engine_s"] else float("nan")
                    print(f"| {phase} | {sec:.2f} | {share:.0%} |")
            print("\n| metric | engine | official | max per-image diff |\n|---|---|---|---|")
            for name, a in e["agreement"].items():
                print(f"| {name.split(':')[0]} | {a['engine']:.4f} | {a['official']:.4f} | {a.get('max_abs_diff_per_image', float('nan')):.4g} |")
        print("\n| kind | name | bs | images/s | note |\n|---|---|---|---|---|")
        for r in e2e["rows"]:
            print(f"| {r['kind']} | {r['name'].split(':')[0]} | {r['batch_size']} | {r['images_per_s']:.1f} | {r['note'][:80]} |")
    else:
        print("e2e: no profile.json (see log.txt)")
    fl = out / "flops.json"
    gflop = json.loads(fl.read_text())["flops_per_image"] / 1e9 if fl.exists() else float("nan")
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("compile_*.json"))]
    unfinished = [json.loads(p.read_text()) for p in sorted(out.glob("unfinished_compile_*.json"))]
    best = float("nan")
    if rows or unfinished:
        print(f"\n## compiled codeformer ({gflop:.1f} GFLOP per image, {BF16_PEAK_TFLOPS:g} TFLOP/s bf16 peak)")
        print("| mode | dtype | batch | images/s | roofline share | compile + warm-up s |\n|---|---|---|---|---|---|")
        for r in rows:
            share = r["images_per_s"] * gflop / BF16_PEAK_TFLOPS / 1e3
            best = share if best != best or share > best else best
            print(f"| {r['mode']}{'' if r['compiled'] or r['mode'] == 'eager' else ' (fell back to eager)'} | "
                  f"{r['dtype']} | {r['batch']} | {r['images_per_s']:.1f} | {100 * share:.1f}% | {r['warmup_s']:.0f} |")
        for u in unfinished:  # stopped at its time limit (exit 124) or failed: no figure, said so
            print(f"| {u['mode']} | - | - | did not finish (exit {u['exit']} after {u['seconds']} s) | - | - |")
        print(f"\nbest share {100 * best:.1f}%: {_verdict(best, TARGETS['roofline_share'], False)}")
    paper = out / "paper.json"
    if paper.exists():
        p = json.loads(paper.read_text())
        print(f"\n## paper table: {p['images']} faces x {len(p['methods'])} methods ({', '.join(p['methods'])}), "
              f"metrics {p['metrics']}")
        # a run stopped at its time limit has no end-to-end time: only "more than" it
        paper_s = p["seconds"] if p["exit"] == 0 else float("inf")
        print(f"end to end (bfrbench run, exit {p['exit']}): {p['seconds']:.0f} s"
              f"{'' if p['exit'] == 0 else ' (did not finish)'} {_verdict(paper_s, TARGETS['paper_table_s'], True)}")
    thr = throughput_rows(out)
    if thr:
        (out / "throughput.json").write_text(json.dumps(thr, indent=1))
        print("\n## throughput (no metrics)\n| method | batch | dtype | images/s | device-busy images/s | p50 ms | peak MB | status |")
        print("|---|---|---|---|---|---|---|---|")
        for r in thr:
            print(f"| {r['name']} | {r['batch_size']} | {r['dtype']} | {r['images_per_s']:.2f} | "
                  f"{r['compute_images_per_s']:.2f} | {r['latency_p50_ms']:.1f} | {r['peak_mem_mb']:.0f} | {r['status']} |")
    _targets(e2e, best, json.loads(paper.read_text()) if paper.exists() else None)
    for name in ("gfpgan",):
        data = load(name)
        if not data:
            continue
        print(f"\n## {name}")
        for r in data["rows"]:
            print(f"{r['kind']} {r['name']} b{r['batch_size']} {r['dtype']} compile={r['compile']} "
                  f"channels_last={r['channels_last']}: {r['images_per_s']:.1f} images/s "
                  f"(device-busy {r['compute_images_per_s']:.1f}) ({r['status']}) {r['note'][:200]}")


def _targets(e2e: dict | None, best_share: float, paper: dict | None) -> None:
    """Issue #26's four GPU targets in one table, each met / NOT met / not measured."""
    nan = float("nan")
    e = next(iter(e2e.get("e2e", [])), {}) if e2e else {}
    paper_s = nan if paper is None else paper["seconds"] if paper["exit"] == 0 else float("inf")
    print("\n## issue #26 targets\n| target | value | verdict |\n|---|---|---|")
    for what, value, key, at_most in (
            ("engine / floor (codeformer bf16, 96 faces, 7 metrics)", e.get("engine_over_floor", nan),
             "engine_over_floor", True),
            ("official / engine", e.get("official_over_engine", nan), "official_over_engine", False),
            ("compiled codeformer, share of the bf16 roofline", best_share, "roofline_share", False),
            ("paper table end to end, seconds", paper_s, "paper_table_s", True)):
        print(f"| {what} | {value:.3g} | {_verdict(value, TARGETS[key], at_most)} |")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {"prepare": prepare, "standins": standins, "summary": summary, "flops": flops, "compile": compiled,
                "paperset": paperset}
    if command == "registered":
        registered(*args)
    else:
        commands[command](Path(args[0]), *args[1:])  # the first argument is a path; the rest as given
