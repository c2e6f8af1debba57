#!/usr/bin/env bash
# One-GPU check of issue #10: `torchrun --nproc_per_node=1 -m bench.cli run --device cuda` end to end
# (NCCL process group, device from LOCAL_RANK, rank-0 merge over NCCL, run folder, manifest), then the
# same run as one plain process; the two must give the same numbers. Offline, < 1 minute on an H100.
#
#   PYTHONPATH=. OUT=/tmp/out bash scripts/gpu_torchrun_check.sh      # DEVICE=cpu to try it without a GPU
set -euo pipefail
OUT=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=${PYTHONPATH:-.} BFRBENCH_HOME="$OUT/home" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"

# 12 smooth random 512x512 image pairs (GT and a noisy LQ): no download needed
python - "$OUT/data" <<'EOF'
import sys
from pathlib import Path
import cv2
import numpy as np
root = Path(sys.argv[1])
rng = np.random.default_rng(0)
for sub in ("lq", "gt"):
    (root / sub).mkdir(parents=True, exist_ok=True)
for i in range(12):
    gt = cv2.GaussianBlur(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), (0, 0), 6)
    lq = np.clip(gt.astype(int) + rng.integers(-25, 25, gt.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(root / "gt" / f"face{i:02d}.png"), gt)
    cv2.imwrite(str(root / "lq" / f"face{i:02d}.png"), lq)
EOF

ARGS=(run --datasets "folder:$OUT/data/lq::$OUT/data/gt" --methods lq classical --metrics psnr ssim
      --device "$DEVICE" --batch-size 5 --workers 2 --no-report --quiet)
t0=$(date +%s)
torchrun --standalone --nproc_per_node=1 -m bench.cli "${ARGS[@]}" --out "$OUT/run_torchrun"
t1=$(date +%s)
python -m bench.cli "${ARGS[@]}" --out "$OUT/run_plain"
t2=$(date +%s)
echo "torchrun run: $((t1 - t0)) s; plain run: $((t2 - t1)) s"

python - "$OUT" "$DEVICE" <<'EOF'
import json, sys
from pathlib import Path
import numpy as np
import pandas as pd
out, device = Path(sys.argv[1]), sys.argv[2]
tr, plain = out / "run_torchrun", out / "run_plain"
m = json.loads((tr / "manifest.json").read_text())
print("torchrun manifest: distributed", m["distributed"], "| device", m["device"])
want_backend = "nccl" if device.startswith("cuda") else "gloo"
assert m["distributed"] == {"world_size": 1, "backend": want_backend}, m["distributed"]
assert json.loads((plain / "manifest.json").read_text())["distributed"]["world_size"] == 1
if device.startswith("cuda"):
    assert m["device"].startswith("cuda:0"), m["device"]  # picked from LOCAL_RANK
a, b = pd.read_csv(tr / "summary.csv"), pd.read_csv(plain / "summary.csv")
print(a[["method", "metric", "value", "n"]].to_string(index=False))
assert (a["status"] == "ok").all() and len(a) == 4 and (a["n"] == 12).all()
np.testing.assert_allclose(a["value"], b["value"], rtol=1e-9, atol=0)
pa, pb = pd.read_parquet(tr / "per_image.parquet"), pd.read_parquet(plain / "per_image.parquet")
assert len(pa) == 24
pd.testing.assert_frame_equal(pa, pb, check_exact=True)
print("GPU TORCHRUN CHECK OK: torchrun rank-0 results equal the plain process's")
EOF
