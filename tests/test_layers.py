"""The layers are visible and imports only go downwards: walks the import graph with ``ast``.

Layers, lowest first (docs/design.md draws them): ``bench.core`` < ``bench.weights`` < ``bench.data``
< ``bench.metrics`` < ``methods`` < the engine (``bench.engine``, ``bench.config``, ``bench.suites``,
``bench.compare``) < ``reports`` < ``bench.cli`` and the API (``bench``). A module may import its own
layer or lower ones; a lazy import (inside a function) may not reach up either. Module-level imports
must form no circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "methods", "reports")

#: (module prefix, layer); the longest matching prefix wins
LAYERS: tuple[tuple[str, int], ...] = (
    ("bench.core", 0),
    ("bench.weights", 1),
    ("bench.data", 2),
    ("bench.metrics", 3),
    ("methods", 4),
    ("bench.engine", 5), ("bench.config", 5), ("bench.suites", 5), ("bench.compare", 5), ("bench.paper_tables", 5),
    ("reports", 6),
    ("bench.cli", 7), ("bench", 7),
)


def layer_of(module: str) -> int | None:
    best = None
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return None if best is None else best[1]


def project_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(module: str, path: Path, known: set[str]) -> list[tuple[str, bool, int]]:
    """(imported project module, at module level, line) for each import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: list[tuple[str, bool, int]] = []

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only: no import at run time
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (m := resolve(alias.name)) is not None:
                        found.append((m, top, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = module if is_pkg else module.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    m = full if full in known else resolve(base)
                    if m is not None:
                        found.append((m, top, child.lineno))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            else:
                visit(child, top)

    visit(tree, True)
    return found


def graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, bool, int]]]]:
    mods = project_modules()
    known = set(mods)
    return mods, {m: imports(m, p, known) for m, p in mods.items()}


def test_every_module_has_a_layer() -> None:
    mods, _ = graph()
    assert [m for m in mods if layer_of(m) is None] == []


def test_no_import_reaches_up_a_layer() -> None:
    mods, edges = graph()
    upward = []
    for mod, targets in edges.items():
        for target, _top, line in targets:
            if target == "bench" or target.startswith(mod + "."):
                continue  # the package itself (``from bench import weights``) / a module's own children
            if layer_of(target) > layer_of(mod):
                upward.append(f"{mods[mod].relative_to(ROOT)}:{line} imports {target}")
    assert upward == [], "imports reaching up a layer:\n" + "\n".join(upward)


def test_core_weights_and_data_never_import_methods_or_reports() -> None:
    mods, edges = graph()
    low = ("bench.core", "bench.weights", "bench.data")
    bad = [f"{mods[m].relative_to(ROOT)}:{line} imports {t}" for m, ts in edges.items() if m.startswith(low)
           for t, _top, line in ts if t.split(".")[0] in ("methods", "reports")]
    assert bad == []


def test_module_level_imports_form_no_circle() -> None:
    _, edges = graph()
    top = {m: sorted({t for t, is_top, _ in ts if is_top and t != m}) for m, ts in edges.items()}
    # a package importing its own submodules (re-exports) is no circle of layers: keep it, it is the common case
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in top.get(m, []):
            if state.get(t) == 1:
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(top):
        if m not in state:
            dfs(m)
    real = [c for c in circles if not all(x == c[0] or x.startswith(c[0] + ".") or c[0].startswith(x + ".")
                                          for x in c)]
    assert real == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in real)


def test_the_walker_sees_a_planted_upward_import(tmp_path: Path) -> None:
    """The check can fail: a core module importing methods is reported with its line."""
    fake = tmp_path / "bench" / "core" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("import os\n\ndef f():\n    from methods.base import RestorationMethod\n")
    found = imports("bench.core.bad", fake, {"bench.core.bad", "methods.base", "methods"})
    assert found == [("methods.base", False, 4)]
    assert layer_of("methods.base") > layer_of("bench.core.bad")


def test_baselines_never_import_the_iqp_method() -> None:
    mods, edges = graph()
    baselines = ("methods.codeformer", "methods.codeformer_family", "methods.codeformer_arch", "methods.gfpgan",
                 "methods.restoreformer", "methods.simple", "methods.base", "methods.gpen", "methods.vqfr",
                 "methods.daefr", "methods.pmrf")
    bad = [f"{mods[m].relative_to(ROOT)}:{line} imports {t}" for m, ts in edges.items()
           if m == "methods.codeformer" or m.startswith(baselines) for t, _top, line in ts
           if t.startswith("methods.iqp_bfr")]
    assert bad == []


#: the engine layer (runs, config, suites, compare): it knows methods only through their interface
ENGINE = ("bench.engine", "bench.config", "bench.suites", "bench.compare")


def engine_imports_of_methods(edges: dict[str, list[tuple[str, bool, int]]]) -> list[tuple[str, str, int]]:
    """(module, imported method module, line) for every import of a particular method by the engine layer."""
    return [(m, t, line) for m, ts in edges.items() if m.startswith(ENGINE) for t, _top, line in ts
            if (t == "methods" or t.startswith("methods.")) and t != "methods.base"]


def methods_importing_the_api(edges: dict[str, list[tuple[str, bool, int]]]) -> list[tuple[str, str, int]]:
    """(module, "bench", line) for every import of the top-level API (``import bench``) by a method."""
    return [(m, t, line) for m, ts in edges.items() if m == "methods" or m.startswith("methods.")
            for t, _top, line in ts if t == "bench"]


def test_the_engine_knows_methods_only_through_methods_base() -> None:
    mods, edges = graph()
    bad = [f"{mods[m].relative_to(ROOT)}:{line} imports {t}" for m, t, line in engine_imports_of_methods(edges)]
    assert bad == [], "the engine layer imports a particular method:\n" + "\n".join(bad)


def test_no_method_imports_the_top_level_api() -> None:
    mods, edges = graph()
    bad = [f"{mods[m].relative_to(ROOT)}:{line} imports the API" for m, _t, line in methods_importing_the_api(edges)]
    assert bad == [], "\n".join(bad)


def test_the_method_and_api_checks_see_planted_imports(tmp_path: Path) -> None:
    """Both checks can fail: an engine module importing a method, a method importing ``bench``."""
    engine = tmp_path / "bench" / "engine" / "bad.py"
    engine.parent.mkdir(parents=True)
    engine.write_text("from methods.base import RestorationMethod\n\ndef f():\n    from methods.outputs_folder import X\n")
    method = tmp_path / "methods" / "bad.py"
    method.parent.mkdir(parents=True)
    method.write_text("def g():\n    import bench\n    from bench import create_metric\n")
    known = {"bench", "bench.engine.bad", "methods", "methods.base", "methods.outputs_folder", "methods.bad"}
    edges = {"bench.engine.bad": imports("bench.engine.bad", engine, known),
             "methods.bad": imports("methods.bad", method, known)}
    assert engine_imports_of_methods(edges) == [("bench.engine.bad", "methods.outputs_folder", 4)]
    assert methods_importing_the_api(edges) == [("methods.bad", "bench", 2), ("methods.bad", "bench", 3)]
