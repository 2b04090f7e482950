"""The examples in docs/ and in the docstrings run, and say what they print."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import identity_graph

DOCS = Path(__file__).resolve().parents[2] / "docs"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_doc_page_examples_run(page: str) -> None:
    result = doctest.testfile(str(DOCS / page), module_relative=False, optionflags=FLAGS)
    assert result.failed == 0, f"{result.failed} example(s) in docs/{page} failed"


MODULES = sorted(
    info.name for info in pkgutil.walk_packages(identity_graph.__path__, "identity_graph.")
)


@pytest.mark.parametrize("name", ["identity_graph", *MODULES])
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed"


def test_model_page_has_examples() -> None:
    # Guards against the page losing its examples and passing vacuously.
    result = doctest.testfile(str(DOCS / "model.md"), module_relative=False, optionflags=FLAGS)
    assert result.attempted >= 30


def test_indicator_table_matches_the_code() -> None:
    # docs/indicators.md ends with a table generated from kpis.INDICATORS and
    # example values the library computes; regenerate it when this fails.
    import importlib.util

    path = DOCS / "tools" / "indicators_table.py"
    spec = importlib.util.spec_from_file_location("indicators_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (DOCS / "indicators.md").read_text(encoding="utf-8")
    table = module.table()
    assert page.endswith(table)
    assert table.count("\n| `") == 69


ROOT = DOCS.parent
#: What a user reads: the project must explain its rules there itself, never
#: point into a specification the repository does not hold.
READ_BY_USERS = ["README.md", "CHANGELOG.md", "docs", "src", "examples", "benchmarks"]


def _texts() -> list[Path]:
    found: list[Path] = []
    for name in READ_BY_USERS:
        path = ROOT / name
        if path.is_file():
            found.append(path)
        else:
            found += [p for p in sorted(path.rglob("*")) if p.suffix in (".md", ".py")]
    return found


def test_the_project_stands_alone() -> None:
    """No section numbers of, or links to, a specification outside the repository."""
    cited = re.compile(r"§\s*\d|SPEC\.md|\bthe spec(ification)?\b", re.IGNORECASE)
    offending = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _texts()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if cited.search(line)
    ]
    assert offending == []


def test_every_help_text_stands_alone() -> None:
    from click.testing import CliRunner

    from identity_graph.cli import cli

    def commands(group: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, command in getattr(group, "commands", {}).items():
            yield from commands(command, [*path, name])

    seen = 0
    for path in commands(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert "§" not in result.output and "SPEC" not in result.output, path
        seen += 1
    assert seen >= 15  # every command and subcommand, not just the top
