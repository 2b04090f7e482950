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
