#!/usr/bin/env bash
# GPU check of the evaluation engine (issue #9): the end-to-end table (model alone vs engine vs
# official-style loop), compiled codeformer images/s, and the gfpgan channels_last profile.
#
# Prepare once on a machine with the asset cache (copies the NIQE/BRISQUE parameters and the demo
# faces into .gpu_assets/, about 10 MB):
#     PYTHONPATH=. BFRBENCH_HOME=/work/cache/home bash scripts/gpu_check.sh --prepare
# Run on the GPU machine (carry .gpu_assets; results go to $OUT):
#     PYTHONPATH=. bash scripts/gpu_check.sh
# CPU smoke test of the same steps (small):
#     PYTHONPATH=. DEVICE=cpu METHOD=lq IMAGES=3 BS=2 DTYPE=fp32 COMPILE=0 GFPGAN=0 ONLY_METRICS="psnr ssim niqe" \
#         bash scripts/gpu_check.sh
# LPIPS (VGG), FID (Inception + FFHQ statistics), ArcFace (ids) and AWing (lmd) run on random
# stand-in checkpoints made here (the real ones are not carried), so their timings are real and
# their values are not results; a metric that still cannot be built is skipped and listed in
# $OUT/metrics.txt.
set -u
ROOT=$(pwd)
ASSETS=${ASSETS:-$ROOT/.gpu_assets}
PY=${PY:-python3}
export PYTHONPATH=${PYTHONPATH:-$ROOT}

if [ "${1:-}" = "--prepare" ]; then
    set -e
    SRC=${BFRBENCH_HOME:?set BFRBENCH_HOME to the asset cache (e.g. /work/cache/home)}
    mkdir -p "$ASSETS/home/weights" "$ASSETS/faces/lq" "$ASSETS/faces/gt"
    for f in niqe_pris_params.npz brisque_live_allmodel; do
        [ -e "$SRC/weights/$f" ] && cp -r "$SRC/weights/$f" "$ASSETS/home/weights/"
    done
    [ -f "$SRC/weights/pins.json" ] && cp "$SRC/weights/pins.json" "$ASSETS/home/weights/" || true
    "$PY" - "$ASSETS/faces" <<'EOF'
import shutil, sys
from pathlib import Path

import bench

out = Path(sys.argv[1])
for p in bench.create_dataset("demo").pairs():
    shutil.copy(p.lq_path, out / "lq" / f"{p.name}.png")
    shutil.copy(p.gt_path, out / "gt" / f"{p.name}.png")
print(f"prepared {len(list((out / 'lq').iterdir()))} faces and the NIQE/BRISQUE parameters in {out.parent}")
EOF
    du -sh "$ASSETS"
    exit 0
fi

DEVICE=${DEVICE:-cuda}
METHOD=${METHOD:-codeformer}
IMAGES=${IMAGES:-96}
SIZE=${SIZE:-512}
BS=${BS:-16}
DTYPE=${DTYPE:-bf16}
OUT=${OUT:-$ROOT/gpu_check_out}
STANDIN=${STANDIN:-/tmp/bfrbench_standin}
export BFRBENCH_HOME=$ASSETS/home BFRBENCH_OFFLINE=1
mkdir -p "$OUT" "$STANDIN"
LOG=$OUT/log.txt
: > "$LOG"
say() { echo "== $* ($(date -u +%H:%M:%S))" | tee -a "$LOG"; }

if [ ! -d "$ASSETS/faces/lq" ]; then
    echo "no $ASSETS/faces: run 'bash scripts/gpu_check.sh --prepare' where the asset cache is, and carry .gpu_assets" | tee -a "$LOG"
    exit 2
fi

say "environment"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  for m in cv2 pandas pyarrow jinja2 skimage scipy yaml tqdm lpips pytorch_fid platformdirs; do
      "$PY" -c "import $m" 2>/dev/null && echo "package $m: yes" || echo "package $m: MISSING"
  done; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >> "$LOG"

say "stand-in ArcFace / AWing checkpoints and the usable metrics"
"$PY" - "$STANDIN" "$OUT/metrics.txt" <<'EOF' 2>&1 | tee -a "$LOG"
import sys
from pathlib import Path

import bench
from bench.metrics.arcface_arch import ResNetArcFace
from bench.metrics.awing_arch import FAN
from tests.learned_helpers import save_random

standin, report = Path(sys.argv[1]), Path(sys.argv[2])
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
EOF
read -r -a METRICS < "$STANDIN/usable"
if [ -n "${ONLY_METRICS:-}" ]; then  # e.g. ONLY_METRICS="psnr ssim niqe" for a quick CPU smoke test
    KEEP=()
    for m in "${METRICS[@]}"; do
        for w in $ONLY_METRICS; do [ "${m%%:*}" = "$w" ] && KEEP+=("$m"); done
    done
    METRICS=("${KEEP[@]}")
fi
DATA="folder:$ASSETS/faces/lq::$ASSETS/faces/gt"
COMMON=(--weights random --device "$DEVICE" --size "$SIZE" --dataset "$DATA" --images "$IMAGES")

say "1/3 end to end: $METHOD $DTYPE b$BS, $IMAGES faces, metrics ${METRICS[*]}"
timeout 300 "$PY" -m bench.cli profile --methods "$METHOD" "${COMMON[@]}" --metrics "${METRICS[@]}" \
    --batch-sizes "$BS" --dtype "$DTYPE" --iters 2 --warmup 1 --e2e --out "$OUT/e2e" 2>&1 | tee -a "$LOG" | tail -25
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "2/3 compiled codeformer $DTYPE b$BS"
[ "${COMPILE:-1}" = 0 ] && echo "skipped (COMPILE=0)" | tee -a "$LOG" || timeout 240 "$PY" -m bench.cli profile --methods codeformer "${COMMON[@]}" --metrics \
    --batch-sizes "$BS" --dtype "$DTYPE" --compile --iters 6 --warmup 2 --out "$OUT/compile" 2>&1 | tee -a "$LOG" | tail -8
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "3/3 gfpgan channels_last on"
[ "${GFPGAN:-1}" = 0 ] && echo "skipped (GFPGAN=0)" | tee -a "$LOG" || timeout 120 "$PY" -m bench.cli profile --methods gfpgan "${COMMON[@]}" --metrics --channels-last on \
    --batch-sizes "1,$BS" --dtype "$DTYPE" --iters 4 --warmup 1 --out "$OUT/gfpgan" 2>&1 | tee -a "$LOG" | tail -8
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "summary"
"$PY" - "$OUT" <<'EOF' 2>&1 | tee "$OUT/summary.md" | tee -a "$LOG"
import json, sys
from pathlib import Path

out = Path(sys.argv[1])


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
        print(f"| engine (bfrbench run's unit) | {e['engine_s']:.2f} |")
        print(f"| official-style loop | {e['official_style_s']:.2f} |")
        print(f"\nengine / model = {e['engine_over_model']:.2f}x; official / engine = {e['official_over_engine']:.2f}x")
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
              f"channels_last={r['channels_last']}: {r['images_per_s']:.1f} images/s ({r['status']}) {r['note'][:200]}")
EOF
say "done: $OUT"
