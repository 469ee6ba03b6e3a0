"""Imports flow one way through the layers of the developers' guide.

:data:`LAYERS` is the table (one place): each top-level module or package of ``csbrain`` and its
layer. The test parses every file of ``csbrain/`` (function-local imports count, and so do the
names a lazy facade maps in its ``_LAZY`` table or loads by ``importlib.import_module``) and
checks that

- no module imports a module of a higher layer;
- packages of one layer never import each other both ways (no cycle among them);
- the facade ``csbrain/__init__.py`` imports nothing of csbrain when imported, and re-exports
  (lazily) only names of layers up to ``models``; other modules import from it only
  :data:`FACADE_NAMES`;
- every module of ``csbrain`` has a row in the table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "csbrain"

#: Layer of each top-level module / package (lower layers never import higher ones).
LAYERS: dict[str, int] = {
    "csbrain._checks": 0, "csbrain.units": 0, "csbrain._io": 0,
    "csbrain._montage_geometry": 1, "csbrain.montage": 1, "csbrain.config": 1,
    "csbrain.configio": 1,
    "csbrain.models": 2, "csbrain.data": 2, "csbrain.report": 2, "csbrain.baselines": 2,
    "csbrain.engine": 3,
    "csbrain.train": 4, "csbrain.eval": 4, "csbrain.explain": 4,
    "csbrain.demo": 5, "csbrain.sklearn": 5, "csbrain.benchmark": 5,
    "csbrain.cli": 6, "csbrain.__main__": 6,
}
#: The package facade (``csbrain/__init__.py``) and what other modules may import from it.
FACADE = "csbrain"
FACADE_NAMES = {"__version__"}
#: The highest layer the facade re-exports from (the model API: no training stack on import).
FACADE_MAX_LAYER = LAYERS["csbrain.models"]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    """The row of :data:`LAYERS` a module belongs to (its longest listed prefix)."""
    best = None
    for unit in LAYERS:
        if (module == unit or module.startswith(unit + ".")) and (best is None
                                                                 or len(unit) > len(best)):
            best = unit
    return best


def _lazy_targets(tree: ast.Module) -> list[tuple[str, int]]:
    """Modules named by a module-level ``_LAZY = {name: "module"}`` table."""
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets):
                out += [(v.value, v.lineno) for v in node.value.values
                        if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return out


def imports_of(module: str, source: str, is_package: bool, known: set[str]
               ) -> list[tuple[str, int, str]]:
    """``(target module, line, kind)`` of every csbrain import in ``source``.

    ``kind`` is ``"import"`` (an import statement, at module level or in a function),
    ``"lazy"`` (a ``_LAZY`` table entry or an ``importlib.import_module`` literal) or
    ``"facade:NAME"`` (``from csbrain import NAME`` of a name that is not a module).
    """
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    out: list[tuple[str, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, "import") for a in node.names
                    if a.name.split(".")[0] == FACADE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if src.split(".")[0] != FACADE:
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                if sub in known:
                    out.append((sub, node.lineno, "import"))
                elif src == FACADE:
                    out.append((FACADE, node.lineno, f"facade:{a.name}"))
                else:
                    out.append((src, node.lineno, "import"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant)
              and str(node.args[0].value).startswith(FACADE + ".")):
            out.append((node.args[0].value, node.lineno, "lazy"))
    out += [(t, line, "lazy") for t, line in _lazy_targets(tree)]
    return out


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every breach of the layering by ``{module: (source, is_package)}``."""
    known = set(sources)
    problems: list[str] = []
    edges: dict[str, set[str]] = {}
    for module, (source, is_package) in sorted(sources.items()):
        if module == FACADE:
            for target, line, kind in imports_of(module, source, is_package, known):
                unit = unit_of(target)
                if kind == "import":
                    problems.append(f"{module}:{line} imports {target} when imported; the "
                                    f"facade re-exports lazily")
                elif unit is None or LAYERS[unit] > FACADE_MAX_LAYER:
                    problems.append(f"{module}:{line} re-exports from {target}, above layer "
                                    f"{FACADE_MAX_LAYER}")
            continue
        unit = unit_of(module)
        if unit is None:
            problems.append(f"{module} has no row in LAYERS")
            continue
        for target, line, kind in imports_of(module, source, is_package, known):
            if kind.startswith("facade:"):
                name = kind.split(":", 1)[1]
                if name not in FACADE_NAMES:
                    problems.append(f"{module}:{line} imports {name!r} through the facade "
                                    f"{FACADE}; import it from its module")
                continue
            other = unit_of(target)
            if other is None:
                problems.append(f"{module}:{line} imports {target}, which has no row in LAYERS")
            elif other != unit:
                if LAYERS[other] > LAYERS[unit]:
                    problems.append(f"{module}:{line} (layer {LAYERS[unit]}) imports {target} "
                                    f"(layer {LAYERS[other]})")
                elif LAYERS[other] == LAYERS[unit]:
                    edges.setdefault(unit, set()).add(other)
    problems += [f"{' -> '.join(c)}: packages of one layer import each other"
                 for c in _cycles(edges)]
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of ``edges`` (depth-first search)."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycle = path[path.index(nxt):] + [nxt]
                if frozenset(cycle) not in done:
                    done.add(frozenset(cycle))
                    found.append(cycle)
            else:
                visit(nxt, path + [nxt])

    for start in sorted(edges):
        visit(start, [start])
    return found


def package_sources() -> dict[str, tuple[str, bool]]:
    return {module_name(p, PACKAGE): (p.read_text("utf-8"), p.name == "__init__.py")
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_follows_the_layers():
    sources = package_sources()
    assert len(sources) > 50 and "csbrain.engine.rundata" in sources
    assert violations(sources) == []


def test_every_top_level_module_has_a_layer():
    tops = {module_name(p, PACKAGE) for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py")
            or (p.is_dir() and (p / "__init__.py").is_file())}
    assert tops == set(LAYERS)


@pytest.mark.parametrize("module,source,message", [
    ("csbrain.engine.x", "from csbrain.train.loop import train_loop\n",
     "csbrain.engine.x:1 (layer 3) imports csbrain.train.loop (layer 4)"),
    ("csbrain.engine.x", "def f():\n    from ..eval import predict\n",
     "csbrain.engine.x:2 (layer 3) imports csbrain.eval"),
    ("csbrain.models.x", "import csbrain.cli\n", "(layer 2) imports csbrain.cli (layer 6)"),
    ("csbrain.data", "_LAZY = {'f': 'csbrain.train.runs'}\n",
     "csbrain.data:1 (layer 2) imports csbrain.train.runs (layer 4)"),
    ("csbrain.train.x", "from csbrain import CSBrain\n", "'CSBrain' through the facade"),
    ("csbrain", "from csbrain import units\n", "imports csbrain.units when imported"),
    ("csbrain", "_LAZY = {'finetune': 'csbrain.train.runs'}\n",
     "re-exports from csbrain.train.runs, above layer 2"),
    ("csbrain.newpkg.x", "import os\n", "csbrain.newpkg.x has no row in LAYERS"),
])
def test_the_checker_finds_breaches(module, source, message):
    known = {"csbrain.units", "csbrain.train.loop", "csbrain.train.runs", "csbrain.eval",
             "csbrain.cli"}
    found = violations({module: (source, module.count(".") == 0 or module == "csbrain.data")}
                       | {k: ("", False) for k in known})
    assert any(message in v for v in found), found


def test_the_checker_finds_packages_of_one_layer_importing_each_other():
    found = violations({"csbrain.train.a": ("from csbrain.eval.b import f\n", False),
                        "csbrain.eval.b": ("def g():\n    import csbrain.train.a\n", False)})
    assert found == ["csbrain.eval -> csbrain.train -> csbrain.eval: packages of one layer "
                     "import each other"]
