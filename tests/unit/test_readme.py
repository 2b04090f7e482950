"""The README's commands and example run as a reader runs them, in order."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from identity_graph.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def _run(cwd: Path, argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as exit_,
        ):
            main(argv)
    finally:
        os.chdir(here)
    assert exit_.value.code in (0, None), f"{shlex.join(argv)}: {err.getvalue()}"
    return out.getvalue()


def test_the_commands_after_make_demo_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make demo`` (the demo on the default store), then each command of the
    README's second block, in a copy of the repository's sample folder."""
    monkeypatch.delenv("IDENTITY_GRAPH_DB", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    samples = tmp_path / "src" / "identity_graph" / "samples"
    shutil.copytree(ROOT / "src" / "identity_graph" / "samples", samples)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (demo_line,) = re.findall(r"\$\(BIN\)/identity-graph (demo.*)", makefile)
    _run(tmp_path, shlex.split(demo_line))
    first, after_demo = _blocks("sh")[:2]
    assert "make demo" in first and "make test" in first
    commands = [
        shlex.split(line, comments=True)
        for line in after_demo.splitlines()
        if line.startswith("identity-graph ")
    ]
    assert len(commands) == 5
    outputs = [_run(tmp_path, command[1:]) for command in commands]
    assert "profile C-1001" in outputs[0] and "Loyal Customers" in outputs[0]
    assert outputs[1] == "C-1001\n"
    assert (tmp_path / "kpis.csv").exists() and (tmp_path / "profiles.xlsx").exists()
    assert "imported 0, unchanged 14, rejected 1" in outputs[4]


def test_the_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = _blocks("python")
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(example, "README.md", "exec"), {})
    finally:
        os.chdir(here)
    assert capsys.readouterr().out == "crm-17\n"
    assert (tmp_path / "graph.db").exists()
