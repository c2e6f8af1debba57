#!/usr/bin/env bash
# GPU check of the evaluation engine (issue #9): the end-to-end table (model alone vs engine vs
# official-style loop), compiled codeformer images/s, the gfpgan channels_last profile, and niqe's
# device path against its host reference (NIQECHECK=0 skips it).
#
# Prepare once on a machine with the asset cache (copies the NIQE/BRISQUE parameters and the demo
# faces into .gpu_assets/, about 10 MB):
#     PYTHONPATH=. BFRBENCH_HOME=/work/cache/home bash scripts/gpu_check.sh --prepare
# Run on the GPU machine (carry .gpu_assets; results go to $OUT):
#     PYTHONPATH=. bash scripts/gpu_check.sh
# The host pool (CPU metrics scored in worker processes, overlapping the GPU; issue #9) shows with
# NTIRE's CPU metrics added, the other two steps skipped:
#     PYTHONPATH=. COMPILE=0 GFPGAN=0 EXTRA_METRICS="niqe-pyiqa brisque piqe" bash scripts/gpu_check.sh
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
    "$PY" scripts/gpu_check.py prepare "$ASSETS/faces"
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
"$PY" scripts/gpu_check.py standins "$STANDIN" "$OUT/metrics.txt" 2>&1 | tee -a "$LOG"
read -r -a METRICS < "$STANDIN/usable"
if [ -n "${ONLY_METRICS:-}" ]; then  # e.g. ONLY_METRICS="psnr ssim niqe" for a quick CPU smoke test
    KEEP=()
    for m in "${METRICS[@]}"; do
        for w in $ONLY_METRICS; do [ "${m%%:*}" = "$w" ] && KEEP+=("$m"); done
    done
    METRICS=("${KEEP[@]}")
fi
if [ -n "${EXTRA_METRICS:-}" ]; then  # e.g. EXTRA_METRICS="niqe-pyiqa brisque piqe": NTIRE's CPU (host-pool) metrics
    read -r -a EXTRA <<< "$EXTRA_METRICS"
    METRICS+=("${EXTRA[@]}")
fi
DATA="folder:$ASSETS/faces/lq::$ASSETS/faces/gt"
COMMON=(--weights random --device "$DEVICE" --size "$SIZE" --dataset "$DATA" --images "$IMAGES")

say "1/4 end to end: $METHOD $DTYPE b$BS, $IMAGES faces, metrics ${METRICS[*]}"
timeout 240 "$PY" -m bench.cli profile --methods "$METHOD" "${COMMON[@]}" --metrics "${METRICS[@]}" \
    --batch-sizes "$BS" --dtype "$DTYPE" --iters 2 --warmup 1 --e2e --out "$OUT/e2e" 2>&1 | tee -a "$LOG" | tail -25
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "2/4 compiled codeformer $DTYPE b$BS"
[ "${COMPILE:-1}" = 0 ] && echo "skipped (COMPILE=0)" | tee -a "$LOG" || timeout 180 "$PY" -m bench.cli profile --methods codeformer "${COMMON[@]}" --metrics \
    --batch-sizes "$BS" --dtype "$DTYPE" --compile --iters 6 --warmup 2 --out "$OUT/compile" 2>&1 | tee -a "$LOG" | tail -8
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "3/4 gfpgan channels_last on"
[ "${GFPGAN:-1}" = 0 ] && echo "skipped (GFPGAN=0)" | tee -a "$LOG" || timeout 80 "$PY" -m bench.cli profile --methods gfpgan "${COMMON[@]}" --metrics --channels-last on \
    --batch-sizes "1,$BS" --dtype "$DTYPE" --iters 4 --warmup 1 --out "$OUT/gfpgan" 2>&1 | tee -a "$LOG" | tail -8
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "4/4 niqe: device path against the host reference, per image"
[ "${NIQECHECK:-1}" = 0 ] && echo "skipped (NIQECHECK=0)" | tee -a "$LOG" || timeout 120 "$PY" scripts/niqe_device_check.py \
    "$ASSETS/faces" --device "$DEVICE" --batch "$BS" --out "$OUT/niqe_device.json" 2>&1 | tee -a "$LOG" | tail -8
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

say "summary"
"$PY" scripts/gpu_check.py summary "$OUT" 2>&1 | tee "$OUT/summary.md" | tee -a "$LOG"
say "done: $OUT"
