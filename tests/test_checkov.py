"""checkov (the scanner users run) finds nothing on any rendered blueprint.

checkov lives in its own virtualenv (`make checkov` → .venv-checkov, pinned in
requirements-checkov.txt); `$CHECKOV` names its executable. Under CI=true a missing checkov
is a failure, elsewhere a skip. Skips are listed, with reasons, in .checkov.yaml only.
"""

import json
import os
import subprocess

import pytest
import yaml
from conftest import ROOT, unavailable
from test_manifests import BLUEPRINTS, config_for

from components.render import helm_releases, manifests, run_program, write

CONFIG = os.path.join(ROOT, ".checkov.yaml")


def checkov() -> str:
    path = os.environ.get("CHECKOV") or os.path.join(ROOT, ".venv-checkov", "bin", "checkov")
    if os.access(path, os.X_OK):
        return path
    unavailable(f"checkov not installed ({path}); `make checkov` installs it")


def scan(directory: str) -> dict:
    # BC_SKIP_MAPPING: checkov would otherwise try to download its guideline mappings at start.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(
        [checkov(), "--config-file", CONFIG, "-d", directory, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert len(reports) == 1 and reports[0].get("check_type") == "kubernetes", result.stdout[:2000]
    return reports[0]


@pytest.mark.parametrize("blueprint", BLUEPRINTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_checkov_finds_no_failure(blueprint, tmp_path):
    run = run_program(config_for(blueprint))
    objects = manifests(run.mocks.resources)
    write(str(tmp_path), objects, helm_releases(run.mocks.resources))
    report = scan(str(tmp_path))
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0 and summary["resource_count"] > 0, summary
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == [], (
        "new checkov failures: fix the object (in its component), or add a reasoned skip to .checkov.yaml"
    )
    inline = [
        o["metadata"]["name"]
        for o in objects
        if any(k.startswith("checkov.io/skip") for k in (o["metadata"].get("annotations") or {}))
    ]
    assert inline == [], "skip checks in .checkov.yaml, not with annotations"


def test_checkov_catches_a_bad_object(tmp_path):
    """The scan is live: a privileged, root, hostPath pod fails, and the skipped check stays skipped."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad", "namespace": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "hostNetwork": True,
                    "containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": True}}],
                },
            },
        },
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    failed = {c["check_id"] for c in scan(str(tmp_path))["results"]["failed_checks"]}
    with open(CONFIG, encoding="utf-8") as fh:
        skipped = set(yaml.safe_load(fh)["skip-check"])
    assert {"CKV_K8S_16", "CKV_K8S_19"} <= failed  # privileged container, host network
    assert not failed & skipped
