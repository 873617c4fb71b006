"""The product's imports go one way, down the layers, and never in a circle (DESIGN.md section 1).

The graph is read from the source with `ast`: every `import` counts, at module level or inside a
function (a deferred import is still a dependency, and a circle through one only waits for its
call). Layers, lowest first: reasoner, strategies, controllers, evals, then the entry points (the
console script's module and every other product package, `server/` among them) on top. A module
may import its own layer or one below; nothing imports an entry point but another entry point.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from importlib.metadata import distribution
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("reasoner", "strategies", "controllers", "evals")
ENTRY_POINT_RANK = len(LAYERS)
Edge = tuple[str, str]


def product_packages() -> list[str]:
    """The repository's top-level packages: everything but the tests is product code."""
    return sorted(init.parent.name for init in ROOT.glob("*/__init__.py") if init.parent.name != "tests")


def console_script_modules() -> set[str]:
    """The modules the installed console scripts run (an entry point wherever it lives)."""
    return {entry.module for entry in distribution("reasoner").entry_points if entry.group == "console_scripts"}


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name (a package by its `__init__`)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name `module` imports anywhere in its file (`from a import b` gives a.b)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path, packages: Iterable[str]) -> nx.DiGraph:
    """Module -> product module it imports: a name is the module it names, else the one it is defined in.

    `from evals import wire` depends on `evals.wire` only; `from reasoner import Session` on `reasoner`.
    """
    modules = module_files(root, packages)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for name in imported_names(module, path):
            target = name if name in modules else name.rpartition(".")[0]
            if target in modules and target != module:
                graph.add_edge(module, target)
    return graph


def rank(module: str, entry_points: set[str]) -> int:
    top = module.split(".")[0]
    if module in entry_points or top not in LAYERS:
        return ENTRY_POINT_RANK
    return LAYERS.index(top)


def layer_violations(graph: nx.DiGraph, entry_points: set[str]) -> set[Edge]:
    """Every edge in an import circle, and every import of a higher layer than the importer's."""
    circular = {
        (source, target)
        for component in nx.strongly_connected_components(graph)
        if len(component) > 1
        for source, target in graph.subgraph(component).edges
    }
    upward = {
        (source, target) for source, target in graph.edges if rank(target, entry_points) > rank(source, entry_points)
    }
    return circular | upward


def violations_of_the_product() -> set[Edge]:
    return layer_violations(import_graph(ROOT, product_packages()), console_script_modules())


def test_product_imports_go_down_the_layers_without_a_circle() -> None:
    assert not violations_of_the_product(), "imports in a circle or up a layer: " + ", ".join(
        f"{a} -> {b}" for a, b in sorted(violations_of_the_product())
    )


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "strategies/__init__.py": "",
            "strategies/a.py": "from strategies.b import B\n",
            "strategies/b.py": "def f():\n    from . import a\n",
        },
    )
    graph = import_graph(tmp_path, ["strategies"])
    assert layer_violations(graph, set()) == {("strategies.a", "strategies.b"), ("strategies.b", "strategies.a")}


def test_an_import_up_a_layer_or_of_an_entry_point_is_found(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "reasoner/__init__.py": "",
            "reasoner/core.py": "import strategies.plan\n",
            "strategies/__init__.py": "",
            "strategies/plan.py": "from reasoner.core import x\n",
            "evals/__init__.py": "",
            "evals/cli.py": "from evals import runner\n",
            "evals/runner.py": "from reasoner import core\n",
            "evals/report.py": "from evals.cli import main\n",
            "server/__init__.py": "",
            "server/app.py": "from evals.cli import main\nfrom strategies import plan\n",
        },
    )
    graph = import_graph(tmp_path, ["reasoner", "strategies", "evals", "server"])
    assert layer_violations(graph, {"evals.cli"}) == {
        ("reasoner.core", "strategies.plan"),
        ("strategies.plan", "reasoner.core"),
        ("evals.report", "evals.cli"),
    }


def test_a_submodule_imported_from_its_package_is_no_circle_but_a_name_from_the_package_is(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "evals/__init__.py": "from evals.runner import run\n",
            "evals/runner.py": "from evals import wire\n",
            "evals/wire.py": "",
            "evals/report.py": "from evals import run\n",
            "evals/render.py": "from . import report\n",
        },
    )
    graph = import_graph(tmp_path, ["evals"])
    assert set(graph.edges) == {
        ("evals", "evals.runner"),
        ("evals.runner", "evals.wire"),
        ("evals.report", "evals"),
        ("evals.render", "evals.report"),
    }
    assert layer_violations(graph, set()) == set()
    write_package(tmp_path, {"evals/runner.py": "from evals import report\n"})
    assert layer_violations(import_graph(tmp_path, ["evals"]), set()) == {
        ("evals", "evals.runner"),
        ("evals.runner", "evals.report"),
        ("evals.report", "evals"),
    }
