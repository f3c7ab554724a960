"""The formatter, linter and type checker: `make test` runs them, and their configuration catches
what it is meant to catch (an unformatted line, a lint finding, a type error)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

PYPROJECT = os.path.join(ROOT, "pyproject.toml")
BIN = os.path.dirname(sys.executable)


def tool(name: str, *args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, name), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_make_test_runs_formatter_linter_and_type_checker_before_the_suite():
    out = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    steps = [line for line in out.splitlines() if re.search(r"ruff|mypy|pytest", line)]
    assert [re.sub(r"^\S*/", "", s.split()[0]) + " " + " ".join(s.split()[1:2]) for s in steps[:3]] == [
        "ruff format",
        "ruff check",
        "mypy ",
    ]
    assert "pytest" in steps[3]


@pytest.mark.parametrize(
    ("source", "command", "finding"),
    [
        ("x = {  'a':1 }\n", ("ruff", "format", "--check"), "would be reformatted"),
        ("import os\n", ("ruff", "check"), "F401"),
        ("from typing import Optional\nx: Optional[int] = None\n", ("ruff", "check"), "UP045"),
        ("def f(a, b):\n    return list(zip(a, b))\n", ("ruff", "check"), "B905"),
        ("def f() -> int:\n    return 'one'\n", ("mypy",), "return-value"),
    ],
    ids=["unformatted", "unused-import", "old-optional", "zip-without-strict", "type-error"],
)
def test_the_configuration_rejects(tmp_path, source, command, finding):
    path = tmp_path / "sample.py"
    path.write_text(source)
    flag = "--config-file" if command[0] == "mypy" else "--config"
    result = tool(command[0], *command[1:], flag, PYPROJECT, str(path), cwd=str(tmp_path))
    assert result.returncode != 0, result.stdout + result.stderr
    assert finding in result.stdout + result.stderr
    # Positive control: the same tool accepts a clean file under the same configuration.
    path.write_text("def f(a: list[int]) -> int:\n    return len(a)\n")
    assert tool(command[0], *command[1:], flag, PYPROJECT, str(path), cwd=str(tmp_path)).returncode == 0


def test_every_type_ignore_names_its_error_code_and_reason():
    bare = []
    for folder in ("components", "policy", "benchmarks", "tests"):
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(base, name)
                with open(path, encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        m = re.search(r"#\s*type:\s*ignore(.*)", line)
                        if m and not re.match(r"\[[a-z-]+(,\s*[a-z-]+)*\]\s*#?\s*\S.{2,}", m.group(1)):
                            bare.append(f"{os.path.relpath(path, ROOT)}:{n}")
    assert bare == []
