"""The golden render: the seed blueprint with the dev stack, committed under tests/golden/.

`make golden` (= `python tests/golden.py`) re-renders it and refreshes the diagram in the
README and the configuration reference (docs/configuration.md); tests/test_golden.py and
tests/test_reference.py fail on any difference, so every change to what the program deploys
or accepts shows up in a PR as a diff a reviewer can read.
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from components.__main__ import ARCHITECTURE, main  # noqa: E402
from components.reference import PAGE, page  # noqa: E402

GOLDEN = os.path.join(HERE, "golden")
SEED = os.path.join(ROOT, "blueprints", "b2b-platform.json")
STACK = os.path.join(ROOT, "Pulumi.dev.yaml")
README = os.path.join(ROOT, "README.md")
CONFIG_REFERENCE = os.path.join(ROOT, PAGE)
BEGIN, END = "<!-- architecture:begin (make golden) -->", "<!-- architecture:end -->"
REFRESH = "make golden"


def render_into(out: str) -> None:
    # Relative paths, so the render does not depend on where the checkout lives.
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(
            ["render", os.path.relpath(SEED, ROOT), "--stack-config", os.path.relpath(STACK, ROOT), "--out", out]
        )
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(code)


def tree(directory: str) -> dict[str, bytes]:
    found = {}
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, directory)] = fh.read()
    return found


def mermaid_block(architecture: str) -> str:
    return architecture[architecture.index("```mermaid") :].rstrip() + "\n"


def readme_block(readme: str) -> str:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), readme, re.S)
    if not match:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    return match.group(1)


def with_readme_block(readme: str, block: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN) + 1, readme.index(END)
    return readme[:start] + block + readme[end:]


def refresh() -> None:
    render_into(GOLDEN)
    with open(os.path.join(GOLDEN, ARCHITECTURE), encoding="utf-8") as fh:
        block = mermaid_block(fh.read())
    with open(README, encoding="utf-8") as fh:
        readme = fh.read()
    with open(README, "w", encoding="utf-8") as fh:
        fh.write(with_readme_block(readme, block))
    with open(CONFIG_REFERENCE, "w", encoding="utf-8") as fh:
        fh.write(page())
    print(
        f"refreshed {os.path.relpath(GOLDEN, ROOT)}/, the README diagram and {PAGE}; review `git diff` before "
        "committing"
    )


if __name__ == "__main__":
    refresh()
