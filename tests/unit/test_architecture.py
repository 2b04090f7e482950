"""The package's layering, checked from its source: data flows one way.

- No import cycle of any kind: imports at the top, inside functions and
  under ``TYPE_CHECKING`` all count, since each is a dependency a reader
  must hold in mind.
- No module reads another module's private names: ``obj._name`` (and
  ``getattr(obj, "_name")``) is allowed only where ``_name`` is defined in
  the same module (an attribute set on ``self``, a method, a class
  attribute, an attrs field or a slot), and ``from x import _name`` not at
  all; the few exceptions are listed with their reason.  Imports by string
  (``importlib.import_module``) are refused too: the import graph could
  not see them.  Without types, a read of another class's ``_name`` that
  this module also defines for itself cannot be told apart; the code keeps
  such names distinct.
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


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _slots(node: ast.ClassDef) -> set[str]:
    """The names a class lists in ``__slots__``."""
    found: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in statement.targets
        ):
            for item in ast.walk(statement.value):
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    found.add(item.value)
    return found


def _own_private_names(tree: ast.Module) -> set[str]:
    """Private names this module defines: functions, classes, attributes it
    assigns (``self._x = ...``), module names, annotated fields (attrs) and
    slots.  A string that merely looks like a name does not count."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= _slots(node)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if _private(name)}


#: Calls that reach a name or a module by a string, out of the import graph's
#: and the private-read check's sight.
_BY_STRING = {"getattr", "setattr", "hasattr", "delattr"}
_DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _called(node: ast.Call) -> str | None:
    function = node.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def _private_reads(module: str) -> list[str]:
    tree = TREES[module]
    own = _own_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append(
                        f"{module}:{node.lineno}: from {_target(module, node)} import {alias.name}"
                    )
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and node.attr not in own
            and (module, node.attr) not in ALLOWED
        ):
            found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call):
            called = _called(node)
            if called in _DYNAMIC_IMPORTS:
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
            elif called in _BY_STRING and len(node.args) >= 2:
                name = node.args[1]
                if (
                    isinstance(name, ast.Constant)
                    and isinstance(name.value, str)
                    and _private(name.value)
                    and name.value not in own
                    and (module, name.value) not in ALLOWED
                ):
                    found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    reads = [read for module in MODULES for read in _private_reads(module)]
    assert reads == []


PROBES = {
    "def f(g):\n    return g._partition\n": "g._partition",
    # A string that looks like the name does not make it the module's own.
    "X = '_partition'\ndef f(g):\n    return g._partition\n": "g._partition",
    "def f(g):\n    return getattr(g, '_ledger')\n": "getattr(g, '_ledger')",
    "import importlib\ndef f():\n    return importlib.import_module('x')\n": (
        "importlib.import_module('x')"
    ),
}


def test_the_private_read_check_can_fail() -> None:
    for source, read in PROBES.items():
        TREES["identity_graph._probe"] = ast.parse(source)
        MODULES["identity_graph._probe"] = PACKAGE / "_probe.py"
        try:
            found = _private_reads("identity_graph._probe")
        finally:
            del TREES["identity_graph._probe"], MODULES["identity_graph._probe"]
        assert [line.split(": ", 1)[1] for line in found] == [read], source
    # What a module defines itself stays its own to read.
    own = "class A:\n    __slots__ = ('_x',)\n    def same(self, other):\n        return other._x\n"
    TREES["identity_graph._probe"] = ast.parse(own)
    MODULES["identity_graph._probe"] = PACKAGE / "_probe.py"
    try:
        assert _private_reads("identity_graph._probe") == []
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
