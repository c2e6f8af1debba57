"""bench.weights imports only go downwards: spec -> catalogue -> cache -> url -> index -> pypi -> resolve -> lightning, standin."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bench.weights

PKG = Path(bench.weights.__file__).parent
ORDER = ["spec", "catalogue", "cache", "url", "index", "pypi", "resolve", "lightning", "standin"]


def _project_imports(path: Path) -> set[str]:
    """Every module of the project (bench, methods, reports, datasets) that ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in ("bench", "methods", "reports", "datasets")}
    return found


def test_layers_import_only_downwards():
    for i, layer in enumerate(ORDER):
        imports = _project_imports(PKG / f"{layer}.py")
        inner = {n.split(".")[2] for n in imports if n.startswith("bench.weights.")}
        above = inner & set(ORDER[i:])
        assert not above, f"bench/weights/{layer}.py imports its own or a higher layer: {above}"
        outside = {n for n in imports if not n.startswith("bench.weights")}
        assert not any(n.split(".")[0] in ("methods", "reports") for n in outside), (layer, outside)
        assert "bench.core.plugins" not in outside, f"{layer} loads plugins"
    spec_outside = {n for n in _project_imports(PKG / "spec.py") if not n.startswith("bench.weights")}
    assert spec_outside <= {"bench.core.errors", "bench.core.errors.UserError"}, spec_outside
    assert {p.stem for p in PKG.glob("*.py")} == set(ORDER) | {"__init__"}, "a new module needs its place in ORDER"


def test_lookup_needs_no_plugins_and_no_torch():
    """Every asset is known from the catalogue alone: a name lookup imports no plugin and no torch."""
    code = (
        "import sys, bench.weights as W\n"
        "for n in ('brisque-live-allmodel', 'vgg16_imagenet_torchvision', 'retinaface_mnet025_onnx', 'fid-ffhq512-stats'):\n"
        "    W.canonical_name(n)\n"
        "bad = [m for m in sys.modules if m.startswith(('bench.metrics', 'methods', 'torch', 'bench.core.plugins'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
