"""The package's layering, checked from its source: data flows one way.

- No import cycle of any kind: imports at the top, inside functions and
  under ``TYPE_CHECKING`` all count, since each is a dependency a reader
  must hold in mind.
- No module reads another module's private names: ``obj._name`` is allowed
  only where ``_name`` is defined in the same module (an attribute set on
  ``self``, a method, a class attribute or a slot), and ``from x import
  _name`` not at all; the few exceptions are listed with their reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import identity_graph

PACKAGE = Path(identity_graph.__file__).parent
NAME = "identity_graph"

#: ``(module, private name)`` read across modules on purpose, with the reason.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _target(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.ImportFrom):
            target = _target(module, node)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES and name != module}


def test_no_import_cycle() -> None:
    graph = nx.DiGraph()
    for module in MODULES:
        graph.add_node(module)
        graph.add_edges_from((module, other) for other in _imports(module))
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []
    assert graph.number_of_edges() > 30  # the walk found the imports


def _own_private_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries, attrs' private fields
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def _private_reads(module: str) -> list[str]:
    tree = TREES[module]
    own = _own_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(
                        f"{module}:{node.lineno}: from {_target(module, node)} import {alias.name}"
                    )
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in own
            and (module, node.attr) not in ALLOWED
        ):
            found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    reads = [read for module in MODULES for read in _private_reads(module)]
    assert reads == []


def test_the_private_read_check_can_fail() -> None:
    tree = ast.parse("def f(g):\n    return g._partition\n")
    TREES["identity_graph._probe"] = tree
    MODULES["identity_graph._probe"] = PACKAGE / "_probe.py"
    try:
        assert _private_reads("identity_graph._probe") == ["identity_graph._probe:2: g._partition"]
    finally:
        del TREES["identity_graph._probe"], MODULES["identity_graph._probe"]


# --------------------------------------------------------------- docs/architecture.md

PAGE = Path(__file__).parents[2] / "docs" / "architecture.md"


def _unit(module: str) -> str:
    """The name docs/architecture.md gives a module: its package for io, kpis, stores."""
    name = module.removeprefix(f"{NAME}.")
    top = name.split(".")[0]
    if top in ("io", "kpis", "stores"):
        return f"{top}/"
    return name


def _table() -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            imports = {name.strip(" `") for name in cells[2].split(",")} - {"—"}
            rows[cells[0].strip("`")] = imports
    return rows


def _picture() -> dict[str, int]:
    """Each unit's row in the page's picture, counted from the top."""
    text = PAGE.read_text(encoding="utf-8")
    block = text.split("```\n")[1]
    ranks: dict[str, int] = {}
    row = 0
    for line in block.splitlines():
        if line.strip().startswith("─"):
            row += 1
            continue
        names = line.strip().split("  ")[0]
        for name in names.split("·"):
            if name.strip():
                ranks[name.strip()] = row
    return ranks


def _edges() -> set[tuple[str, str]]:
    return {
        (_unit(module), _unit(other))
        for module in MODULES
        for other in _imports(module)
        if _unit(module) != _unit(other)
    }


def test_the_architecture_table_lists_every_module_and_what_it_imports() -> None:
    table = _table()
    assert set(table) == {_unit(module) for module in MODULES}
    undeclared = sorted((a, b) for a, b in _edges() if b not in table[a])
    assert undeclared == []
    assert sum(len(imports) for imports in table.values()) > 50  # the table was read


def test_every_import_goes_down_the_architecture_picture() -> None:
    ranks = _picture()
    assert set(ranks) == {_unit(module) for module in MODULES} - {NAME}
    upward = sorted((a, b) for a, b in _edges() if a != NAME and ranks[b] <= ranks[a])
    assert upward == []
