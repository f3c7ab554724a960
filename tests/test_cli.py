import json
import os
import subprocess
import sys

from conftest import ROOT, SEED, dev_config, resource, variant

from components.day2 import facts
from components.settings import load_inputs

DEV = os.path.join(ROOT, "Pulumi.dev.yaml")


def cli(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "components", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_validate_seed_prints_one_line_summary():
    result = cli("validate", SEED, "--stack-config", DEV)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert "valid blueprint 'B2B Platform' (multi-zona; 10 resources" in line and "3 tenant(s)" in line


def test_validate_reports_every_field_problem_and_exits_2(tmp_path):
    def edit(bp):
        resource(bp, "tenant-api")["config"]["replicas_min"] = 30
        resource(bp, "edge-waf")["config"]["modo"] = "block"

    result = cli("validate", variant(tmp_path, edit))
    assert result.returncode == 2
    assert "recursos[1].config.replicas_min: must be <= replicas_max (20) (got 30)" in result.stderr
    assert "recursos[6].config.modo: must be 'bloquear' or 'detectar' (got 'block')" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_json_syntax_error_exit_2(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "nome": "x",\n  "recursos": [\n}')
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("line 4 column 1: invalid JSON")


def test_bad_stack_config_exit_2(tmp_path):
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(
        "config:\n  b2b-platform:tenants:\n    - id: Acme\n      plan: business\n      isolation: schema\n"
    )
    result = cli("render", SEED, "--stack-config", str(stack), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "tenants[0].id: 'Acme' is not a DNS-1123 label" in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_files_are_clear_errors(tmp_path):
    result = cli("validate", str(tmp_path / "nope.json"))
    assert result.returncode == 2 and "blueprint: cannot read" in result.stderr
    result = cli("validate", SEED, "--stack-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "--stack-config: cannot read" in result.stderr


def test_render_is_deterministic_one_file_per_object(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        result = cli("render", SEED, "--stack-config", DEV, "--out", str(out))
        assert result.returncode == 0, result.stderr
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*.yaml"))
    assert "saas-net/deployment-tenant-api.yaml" in files and "_cluster/namespace-saas-net.yaml" in files
    assert files == sorted(str(p.relative_to(second)) for p in second.rglob("*.yaml"))
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    assert f"{len([f for f in files if not f.startswith('_helm/')])} Kubernetes objects" in result.stdout


def test_check_change_refuses_a_shrink_since_the_previous_deployment(tmp_path):
    inputs = load_inputs(dev_config(), root=ROOT)
    previous = tmp_path / "deployed.json"
    previous.write_text(json.dumps(facts(inputs.blueprint, inputs.settings)))

    same = cli("check-change", SEED, "--stack-config", DEV, "--previous", str(previous))
    assert same.returncode == 0, same.stderr
    assert "no change that loses data" in same.stdout

    def shrink(bp):
        resource(bp, "platform-db")["config"]["tamanho_gb"] = 50

    smaller = cli("check-change", variant(tmp_path, shrink), "--stack-config", DEV, "--previous", str(previous))
    assert smaller.returncode == 2
    assert "recursos[datastore].config.tamanho_gb: 100 → 50: a PVC cannot shrink" in smaller.stderr

    # A new stack has no `deployed` output yet: `make up` writes an empty file.
    (tmp_path / "empty.json").write_text("")
    first = cli("check-change", SEED, "--stack-config", DEV, "--previous", str(tmp_path / "empty.json"))
    assert first.returncode == 0 and "nothing to compare" in first.stdout


def test_make_up_checks_the_change_before_pulumi_up():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as fh:
        recipe = fh.read().split("\nup:", 1)[1].split("\n\n", 1)[0].splitlines()
    steps = [line.strip() for line in recipe if line.startswith("\t")]
    check = next(i for i, s in enumerate(steps) if "-m components check-change" in s)
    output = next(i for i, s in enumerate(steps) if "stack output deployed --json" in s)
    assert output < check < steps.index("$(PULUMI) up --yes --stack $(STACK)")
    # The check must stop `make`: only the output read (absent on a new stack) may fail.
    assert not steps[check].startswith("-") and steps[output].startswith("-")
