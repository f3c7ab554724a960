"""The README and docs/ stay true: their offline commands run, and their links resolve.

Shell blocks fenced as ```sh offline are run line by line in a copy of the repository (so
`make golden` cannot rewrite the checkout under test), each expected to exit 0 or the code a
trailing `# ... exit N` names. Any other line that runs the program's offline tools (`make
validate`, `python -m components ...`, `python -m benchmarks ...`) must appear in such a block,
so nothing shown goes unrun. Links between pages must reach an existing file and heading, and
the files and tests a page cites as evidence must exist.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

PAGES = sorted([os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)])
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.M | re.S)
# Make targets that need nothing but the checkout and its virtualenv.
OFFLINE_TARGETS = {"validate", "render", "policy-config", "golden", "config-reference", "diagram-tools"}
# Offline, but not run here, each for its reason.
NOT_RUN = {
    "make test": "the suite itself",
    "make bench": "takes minutes; its smoke run (python -m benchmarks --sizes 5 ...) is run",
    "make lint": "run by make test before the suite",
    "make fmt": "rewrites the checkout",
}
# Left out of the copy: large, or state of this checkout only (.venv is linked, not copied).
SKIP = {".git", ".venv", ".venv-checkov", "node_modules", "build", ".pulumi-state", ".hypothesis", ".pytest_cache"}


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def blocks() -> list[tuple[str, str, str]]:
    """(page, info string, body) of every fenced block."""
    found = []
    for page in PAGES:
        with open(page, encoding="utf-8") as fh:
            text = fh.read()
        found += [(rel(page), m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]
    return found


def commands(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]


def offline_commands() -> list[tuple[str, str]]:
    return [(page, line) for page, info, body in blocks() if info == "sh offline" for line in commands(body)]


def without_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line)


def runs_offline_tool(line: str) -> bool:
    words = without_comment(line).split()
    if words[:1] == ["make"]:
        return any(w in OFFLINE_TARGETS | {t.split()[1] for t in NOT_RUN} for w in words[1:])
    return bool(re.search(r"python3? -m (components|benchmarks)\b", line))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> str:
    """A copy of the repository with this checkout's .venv and node_modules linked in."""
    copy = str(tmp_path_factory.mktemp("docs") / "repo")
    shutil.copytree(ROOT, copy, ignore=lambda d, names: [n for n in names if d == ROOT and n in SKIP], symlinks=True)
    # The linked trees are built already: what they were built from must not look newer to make.
    for tree, sources in ((".venv", "requirements*.txt"), ("node_modules", "package*.json")):
        if os.path.isdir(os.path.join(ROOT, tree)):
            os.symlink(os.path.join(ROOT, tree), os.path.join(copy, tree))
        marker = os.path.join(ROOT, tree, ".installed")
        if os.path.exists(marker):
            built = os.stat(marker).st_mtime
            for source in glob.glob(os.path.join(copy, sources)):
                os.utime(source, (built - 1, built - 1))
    return copy


def test_the_docs_show_the_offline_commands_the_issue_names():
    shown = " ".join(line for _, line in offline_commands())
    for command in (
        "make validate",
        "make render",
        "-m components validate",
        "-m components kind-config",
        "make policy-config",
        "-m components check-change",
        "make golden",
        "make config-reference",
        "-m benchmarks --sizes 5",
    ):
        assert command in shown, command


@pytest.mark.parametrize(
    ("page", "line"), offline_commands(), ids=[f"{p}:{i}" for i, (p, _) in enumerate(offline_commands())]
)
def test_offline_command_runs(checkout, page, line):
    expected = re.search(r"#.*\bexit (\d+)", line)
    done = subprocess.run(
        ["bash", "-c", without_comment(line)],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == (int(expected.group(1)) if expected else 0), (
        f"{page}: `{line}` exited {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    )


def test_every_offline_command_shown_is_run():
    run = {without_comment(line) for _, line in offline_commands()}
    unrun = [
        f"{page}: {line}"
        for page, info, body in blocks()
        if info != "sh offline" and info.split()[:1] in (["sh"], ["bash"], [])
        for line in commands(body)
        if runs_offline_tool(line) and without_comment(line) not in run | set(NOT_RUN)
    ]
    assert not unrun, unrun


def anchors(path: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    with open(path, encoding="utf-8") as fh:
        text = FENCE.sub("", fh.read())
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def links(page: str) -> list[str]:
    with open(page, encoding="utf-8") as fh:
        text = FENCE.sub("", fh.read())
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", m)]


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_links_reach_a_file_and_a_heading(page):
    broken = []
    for link in links(page):
        target, _, anchor = link.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
        if not os.path.exists(path):
            broken.append(f"{link}: no file {rel(path)}")
        elif anchor and (not path.endswith(".md") or anchor not in anchors(path)):
            broken.append(f"{link}: no heading #{anchor} in {rel(path)}")
    assert not broken, broken


def test_every_page_is_one_click_from_the_readme():
    readme = os.path.join(ROOT, "README.md")
    linked = {os.path.normpath(os.path.join(ROOT, link.partition("#")[0])) for link in links(readme)}
    assert not [rel(p) for p in PAGES if p != readme and p not in linked]


def test_the_link_checker_catches_a_broken_link_and_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## A section\n\n[ok](#a-section) [bad](#nowhere) [gone](missing.md)\n")
    assert links(str(page)) == ["#a-section", "#nowhere", "missing.md"]
    assert anchors(str(page)) == {"title", "a-section"}


CITED_FILE = re.compile(r"\b((?:tests|components|policy|benchmarks|scripts|sql)/[\w/.-]+\.(?:py|sql|sh))(?:::(\w+))?")
CITED_TEST = re.compile(r"`(test_\w+)")


def defined_tests() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in glob.glob(os.path.join(ROOT, "tests", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as fh:
            found[rel(path)] = set(re.findall(r"^\s*def (test_\w+)", fh.read(), re.M))
    return found


def stale_citations(text: str, tests: dict[str, set[str]]) -> list[str]:
    """Files and tests a page names as evidence that are not in the repository."""
    # A bare `test_x` is a test function, or a test module (`test_kube`).
    every = set().union(*tests.values(), (os.path.basename(path)[:-3] for path in tests))
    stale = [
        f"{path}::{test}" if test else path
        for path, test in CITED_FILE.findall(text)
        if not os.path.exists(os.path.join(ROOT, path)) or (test and test not in tests.get(path, set()))
    ]
    return stale + [name for name in CITED_TEST.findall(text) if name not in every]


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_the_files_and_tests_a_page_cites_exist(page):
    with open(page, encoding="utf-8") as fh:
        assert stale_citations(fh.read(), defined_tests()) == []


def test_a_renamed_test_is_a_stale_citation():
    tests = defined_tests()
    assert stale_citations("`tests/test_docs.py::test_a_renamed_test_is_a_stale_citation`", tests) == []
    assert stale_citations("`tests/test_docs.py::test_gone`, `test_nowhere`, `components/gone.py`", tests) == [
        "tests/test_docs.py::test_gone",
        "components/gone.py",
        "test_nowhere",
    ]
