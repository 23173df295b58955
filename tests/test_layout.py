"""The package's layers: imports point one way, from commands down to plain torch.

Read from the source with ``ast``, imports inside functions included, so that a shortcut
taken in a hurry (a library module importing a command, a circle through a lazy import)
fails here rather than in a reader's head.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "lit_alexnet"
README = Path(__file__).resolve().parents[1] / "README.md"

# From the top down; a module may import its own layer and the ones below. The package's
# face (its __init__) hands on names from every layer, so it stands on top with the commands.
LAYERS: dict[str, tuple[str, ...]] = {
    "commands": (
        "__init__",
        "train",
        "evaluate",
        "predict",
        "figures",
        "figure1",
        "report",
        "stats",
        "data.prepare",
        "data.verify",
        "bench.*",
    ),
    "job": ("job",),
    "library": (
        "module",
        "callbacks.*",
        "config",
        "runs",
        "wandb_pictures",
        "strategies.*",
        "data.*",
    ),
    "plain torch": ("nn.*", "optim", "checks", "console", "precision", "rng", "plots", "intervals"),
}
MAX_FLOORS = 6


def modules() -> list[str]:
    """Every module of the package, dotted below ``lit_alexnet`` (``data.dali``)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def layer_of(module: str) -> int:
    """The index of ``module``'s layer in :data:`LAYERS`, 0 at the top; the most specific
    pattern wins (``data.prepare`` over ``data.*``)."""
    best: tuple[int, int] | None = None
    for index, patterns in enumerate(LAYERS.values()):
        for pattern in patterns:
            if pattern == module or (
                pattern.endswith(".*") and (module + ".").startswith(pattern[:-1])
            ):
                specificity = len(pattern) + (1 if not pattern.endswith("*") else 0)
                if best is None or specificity > best[0]:
                    best = (specificity, index)
    if best is None:
        raise LookupError(module)
    return best[1]


def _source(module: str) -> Path:
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@cache
def imports_of(module: str) -> frozenset[str]:
    """The package's modules that ``module`` imports anywhere in its file."""
    known = set(modules())
    found: set[str] = set()
    for node in ast.walk(ast.parse(_source(module).read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from lit_alexnet.nn import lrn` imports the module lrn; `from lit_alexnet.nn
            # import AlexNet` a name of the package nn.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name == "lit_alexnet":
                found.add("__init__")
            elif name.startswith("lit_alexnet."):
                dotted = name.removeprefix("lit_alexnet.")
                while dotted and dotted not in known:
                    dotted = dotted.rpartition(".")[0]
                found.add(dotted or "__init__")  # a name of the package's face
    found.discard(module)
    return frozenset(found)


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in modules():
        try:
            layer_of(module)
        except LookupError:
            unplaced.append(module)
    assert not unplaced, f"place these in LAYERS: {unplaced}"


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} -> {target}"
        for module in modules()
        for target in sorted(imports_of(module))
        if layer_of(target) < layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_library_module_imports_a_command() -> None:
    commands = {m for m in modules() if layer_of(m) == 0}
    offenders = [
        f"{module} -> {target}"
        for module in modules()
        if layer_of(module) > 0
        for target in imports_of(module) & commands
    ]
    assert not offenders, "\n".join(offenders)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_circle_of_imports() -> None:
    graph = {module: set(imports_of(module)) for module in modules()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def _rooms() -> dict[str, set[str]]:
    """The import graph with each subpackage as one room (``data``, ``nn``, ...)."""

    def room(module: str) -> str:
        return module.split(".")[0]

    graph: dict[str, set[str]] = {}
    for module in modules():
        targets = {room(t) for t in imports_of(module)} - {room(module)}
        graph.setdefault(room(module), set()).update(targets)
    return graph


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each node's floor: 1 for a node that imports nothing, else one above its highest import."""
    memo: dict[str, int] = {}

    def floor(node: str) -> int:
        if node not in memo:
            memo[node] = 1 + max((floor(t) for t in graph.get(node, ())), default=0)
        return memo[node]

    return {node: floor(node) for node in graph}


def test_the_package_is_at_most_six_floors_high() -> None:
    built = floors(_rooms())
    assert max(built.values()) <= MAX_FLOORS, sorted(built.items(), key=lambda kv: -kv[1])


def test_the_checks_catch_what_they_name() -> None:
    """The checks above, against graphs that break them."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tower = {str(i): {str(i + 1)} for i in range(MAX_FLOORS)} | {str(MAX_FLOORS): set()}
    assert max(floors(tower).values()) == MAX_FLOORS + 1
    assert layer_of("data.prepare") == 0 and layer_of("data.dali") == 2
    assert layer_of("nn.lrn") == 3 and layer_of("bench.timing") == 0


def test_the_readme_tree_names_every_module() -> None:
    """README's "How it is built" lists the package's files as they are."""
    section = README.read_text().split("## How it is built", 1)[1].split("\n## ", 1)[0]
    section = section.split("src/lit_alexnet/", 1)[1]  # the tree, not the prose above it
    named = set(re.findall(r"([\w/]+\.py|[\w]+/)", section))
    files = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    inside = {f for f in files if not f.startswith("bench/")}
    missing = sorted(f for f in inside if f not in named and Path(f).name not in named)
    assert not missing, f"README's tree lacks {missing}"
    stale = sorted(
        n for n in named if n.endswith(".py") and n not in files and not (PACKAGE / n).exists()
    )
    stale = [n for n in stale if not any(f.endswith("/" + n) for f in files)]
    assert not stale, f"README's tree names files that are gone: {stale}"


@pytest.mark.parametrize("module", ["job", "module", "data.backends"])
def test_the_import_reader_sees_real_imports(module: str) -> None:
    # A reader that found nothing would pass every test above.
    assert imports_of(module), module
