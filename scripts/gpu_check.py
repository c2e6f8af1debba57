"""Helpers of scripts/gpu_check.sh: demo faces for the carried folder, stand-in metric checkpoints, the summary.

    python scripts/gpu_check.py prepare FACES_DIR
    python scripts/gpu_check.py standins STANDIN_DIR METRICS_REPORT
    python scripts/gpu_check.py summary OUT_DIR
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

#: FLOPs per 512 image (torch FlopCounterMode) and the H100 dense bf16 peak, from shared/notes/gpu-baseline.md
CODEFORMER_GFLOP = 810
BF16_PEAK_TFLOPS = 790


def prepare(out: Path) -> None:
    """Copy the demo benchmark's faces (LQ and GT) into ``out``/lq and ``out``/gt."""
    import bench

    for p in bench.create_dataset("demo").pairs():
        shutil.copy(p.lq_path, out / "lq" / f"{p.name}.png")
        shutil.copy(p.gt_path, out / "gt" / f"{p.name}.png")
    print(f"prepared {len(list((out / 'lq').iterdir()))} faces and the NIQE/BRISQUE parameters in {out.parent}")


def standins(standin: Path, report: Path) -> None:
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
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    (standin / "usable").write_text(" ".join(usable))


def summary(out: Path) -> None:
    """The markdown table of the three profiles (print)."""

    def load(name):
        path = out / name / "profile.json"
        return json.loads(path.read_text()) if path.exists() else None

    e2e = load("e2e")
    if e2e:
        env = e2e["environment"]
        print(f"device: {env.get('gpu', env['device'])}, torch {env['torch']}")
        for e in e2e.get("e2e", []):
            print(f"\n## {e['method']}: {e['images']} images, {e['dtype']} b{e['batch_size']}, metrics {', '.join(e['metrics'])}")
            print("| path | seconds |\n|---|---|")
            print(f"| model forward alone | {e['model_only_s']:.2f} |")
            print(f"| model + metrics alone (pre-decoded, on the device) | {e['floor_s']:.2f} |")
            print(f"| engine (bfrbench run's unit) | {e['engine_s']:.2f} |")
            print(f"| official-style loop | {e['official_style_s']:.2f} |")
            print(f"\nengine / model = {e['engine_over_model']:.2f}x; engine / (model + metrics) = "
                  f"{e['engine_over_floor']:.2f}x; official / engine = {e['official_over_engine']:.2f}x")
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
    for name in ("compile", "gfpgan"):
        data = load(name)
        if not data:
            print(f"\n{name}: no profile.json (see log.txt)")
            continue
        print(f"\n## {name}")
        for r in data["rows"]:
            print(f"{r['kind']} {r['name']} b{r['batch_size']} {r['dtype']} compile={r['compile']} "
                  f"channels_last={r['channels_last']}: {r['images_per_s']:.1f} images/s "
                  f"(device-busy {r['compute_images_per_s']:.1f}) ({r['status']}) {r['note'][:200]}")
            if r["name"].startswith("codeformer") and r["dtype"] == "bf16" and r["images_per_s"] == r["images_per_s"]:
                share = r["images_per_s"] * CODEFORMER_GFLOP / BF16_PEAK_TFLOPS / 1e3
                print(f"  = {100 * share:.1f}% of the bf16 roofline ({CODEFORMER_GFLOP} GFLOP/image, "
                      f"{BF16_PEAK_TFLOPS} TFLOP/s peak)")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"prepare": prepare, "standins": standins, "summary": summary}[command](*map(Path, args))
