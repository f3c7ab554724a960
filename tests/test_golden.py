"""The seed's render is committed (tests/golden/): any unreviewed change to it fails here."""

import difflib
import os

from golden import ARCHITECTURE, GOLDEN, README, REFRESH, mermaid_block, readme_block, render_into, tree


def test_render_matches_golden(tmp_path):
    out = str(tmp_path / "render")
    render_into(out)
    fresh, golden = tree(out), tree(GOLDEN)
    added, removed = sorted(set(fresh) - set(golden)), sorted(set(golden) - set(fresh))
    changed = sorted(p for p in set(fresh) & set(golden) if fresh[p] != golden[p])
    if added or removed or changed:
        diff = "".join(
            line
            for p in changed[:3]
            for line in difflib.unified_diff(
                golden[p].decode().splitlines(True), fresh[p].decode().splitlines(True), f"golden/{p}", f"render/{p}"
            )
        )
        raise AssertionError(
            f"the seed's render differs from tests/golden/ (added {added}, removed {removed}, changed {changed}).\n"
            f"If the change is intended, run `{REFRESH}` and commit tests/golden/ and README.md with it.\n{diff[:4000]}"
        )


def test_readme_shows_the_generated_diagram():
    with open(os.path.join(GOLDEN, ARCHITECTURE), encoding="utf-8") as fh:
        generated = mermaid_block(fh.read())
    with open(README, encoding="utf-8") as fh:
        shown = readme_block(fh.read())
    assert shown == generated, f"README.md's architecture diagram is not the generated one; run `{REFRESH}`"
