"""The import graph of hfdae: no circle, and no module imports from a floor above its own.

The graph is read from the source (every ``import`` anywhere in a module: function bodies and ``TYPE_CHECKING``
blocks included), so an import hidden in a function cannot hide a circle. Every module must have a floor
here: a new module is placed deliberately.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hfdae"

# floor -> modules, lowest first. A module may import from its own floor and those below, never above.
FLOORS = {
    0: {"configuration_hfdae", "blocks", "modeling_hfdae"},  # the model (uploaded with the weights)
    1: {"processing", "metrics", "degradations", "peers", "classical", "samples", "data", "zoo", "complexity", "plots",
        "image_processing_hfdae", "image_io", "distributed"},
    # running a model: its sources, its inference copy, transformers' pipeline, a whole dataset
    2: {"fusion", "runs", "inference", "export", "pipeline_hfdae", "remote_code", "dataset_restoration"},
    3: {"protocols", "baselines", "evaluation"},  # measuring
    4: {"training_config", "finetuning", "training", "lr_find"},  # training
    5: {"cards", "hub", "demo", "space"},  # sharing and showing
    6: {"cli", "__init__"},  # the interfaces
}
FLOOR = {module: floor for floor, modules in FLOORS.items() for module in modules}


def _imports(path: Path) -> set[str]:
    """The hfdae modules ``path`` imports (relative or absolute), anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
            elif node.level == 0 and node.module and node.module.split(".")[0] == "hfdae":
                parts = node.module.split(".")
                found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("hfdae.")}
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports."""
    modules = {path.stem for path in package.glob("*.py")}
    return {path.stem: (_imports(path) & modules) - {path.stem} for path in sorted(package.glob("*.py"))}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports (``[a, b, ..., a]``), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return stack[stack.index(imported):] + [imported]
            if imported not in state and (circle := visit(imported)):
                return circle
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module)):
            return circle
    return None


GRAPH = import_graph()


def test_every_module_has_a_floor():
    assert set(GRAPH) - set(FLOOR) == set(), "place the new module(s) on a floor in tests/test_architecture.py"
    assert set(FLOOR) - set(GRAPH) == set(), "a module on a floor no longer exists"


def test_no_import_circle():
    assert find_circle(GRAPH) is None, " -> ".join(find_circle(GRAPH))


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_from_a_higher_floor(module):
    upward = {imported for imported in GRAPH[module] if FLOOR[imported] > FLOOR[module]}
    assert not upward, f"{module} (floor {FLOOR[module]}) imports {sorted(upward)} from above"


def test_the_checks_see_function_level_and_relative_imports(tmp_path):
    (tmp_path / "low.py").write_text("def helper():\n    from .high import thing\n")
    (tmp_path / "high.py").write_text("from . import low\n")
    graph = import_graph(tmp_path)
    assert graph == {"high": {"low"}, "low": {"high"}}
    assert find_circle(graph) in (["high", "low", "high"], ["low", "high", "low"])
