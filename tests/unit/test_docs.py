"""The examples in docs/ and in the docstrings run, and say what they print."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

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
