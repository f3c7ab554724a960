"""The kind flow, offline: cluster config, Makefile sequence, shell scripts, e2e skipping."""

import os
import shutil
import subprocess
import sys

import yaml
from conftest import ROOT, unavailable
from e2e.kube import unreachable_reason

from components.addons import releases
from components.settings import Settings

IMAGE = "kindest/node:v1.35.8"


def kind_config() -> dict:
    with open(os.path.join(ROOT, "deploy", "kind-config.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_kind_cluster_has_one_control_plane_and_three_zoned_workers():
    config = kind_config()
    assert (config["kind"], config["apiVersion"], config["name"]) == (
        "Cluster",
        "kind.x-k8s.io/v1alpha4",
        "b2b-platform",
    )
    nodes = config["nodes"]
    assert [n["role"] for n in nodes] == ["control-plane", "worker", "worker", "worker"]
    assert {n["image"] for n in nodes} == {IMAGE}
    assert [n["labels"]["topology.kubernetes.io/zone"] for n in nodes if n["role"] == "worker"] == [
        "zone-a",
        "zone-b",
        "zone-c",
    ]
    # kubelets may not label themselves node-role.kubernetes.io/*: `kind create cluster` would fail.
    assert not [k for n in nodes for k in n.get("labels", {}) if k.startswith("node-role.kubernetes.io/")]


def test_host_ports_land_on_the_node_traefik_is_pinned_to():
    nodes = kind_config()["nodes"]
    (traefik,) = [r for r in releases(Settings()) if r.key == "traefik"]
    selector = traefik.values["nodeSelector"]
    (edge,) = [n for n in nodes if selector.items() <= n.get("labels", {}).items()]
    mapped = {(m["containerPort"], m["hostPort"]) for m in edge["extraPortMappings"]}
    assert mapped == {(80, 80), (443, 443)}
    assert {traefik.values["ports"]["web"]["hostPort"], traefik.values["ports"]["websecure"]["hostPort"]} == {80, 443}
    # The edge node is the control plane: Traefik must tolerate its taint.
    assert edge["role"] == "control-plane"
    assert any(t["key"] == "node-role.kubernetes.io/control-plane" for t in traefik.values["tolerations"])


def make(*args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        ["make", "-C", ROOT, *args], capture_output=True, text=True, env=env or os.environ.copy(), check=True
    )
    return done.stdout


def position(lines: list[str], needle: str) -> int:
    found = [i for i, line in enumerate(lines) if needle in line]
    assert found, f"{needle!r} not in:\n" + "\n".join(lines)
    return found[0]


def test_make_up_runs_prereqs_cluster_backend_stack_then_up():
    lines = make("-n", "up").splitlines()
    steps = [
        "scripts/prereqs.sh",
        # The kind config as the stack's audit.kubernetes wants it (tests/test_kind_audit.py).
        ".venv/bin/python -m components kind-config blueprints/b2b-platform.json --stack-config Pulumi.dev.yaml --base deploy/kind-config.yaml --out build/kind-config.yaml",
        "scripts/kind-cluster.sh up b2b-platform build/kind-config.yaml",
        "mkdir -p .pulumi-state",
        "pulumi --non-interactive whoami --verbose",
        "pulumi --non-interactive stack select --create dev",
        "pulumi --non-interactive up --yes --refresh --stack dev",
    ]
    assert [position(lines, s) for s in steps] == sorted(position(lines, s) for s in steps)


def test_make_down_destroys_then_deletes_the_cluster():
    lines = make("-n", "down").splitlines()
    assert position(lines, "pulumi --non-interactive destroy --yes --stack dev") < position(
        lines, "scripts/kind-cluster.sh down b2b-platform"
    )


def test_make_e2e_selects_only_the_marker_and_test_does_not():
    assert ".venv/bin/python -m pytest -m e2e tests/e2e" in make("-n", "e2e")
    (test,) = [line for line in make("-n", "test").splitlines() if "pytest" in line]
    assert test.endswith(".venv/bin/python -m pytest") and "-m e2e" not in test


def test_the_local_backend_and_dev_passphrase_reach_pulumi():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    out = make("-s", "--eval", "show-env: ; @echo $$PULUMI_BACKEND_URL $$PULUMI_CONFIG_PASSPHRASE", "show-env", env=env)
    assert out.split() == [f"file://{ROOT}/.pulumi-state", "b2b-platform-local-dev"]


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        unavailable("shellcheck not installed (Debian package `shellcheck`; .ci/run installs it)")
    scripts = [os.path.join(ROOT, "scripts", f) for f in sorted(os.listdir(os.path.join(ROOT, "scripts")))] + [
        os.path.join(ROOT, ".ci", "run")
    ]
    done = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def fake_bin(tmp_path, tools: dict[str, str]):
    """A PATH of stub commands: name → shell body."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return str(bin_dir)


def run_script(path: str, *args: str, bin_dir: str) -> subprocess.CompletedProcess:
    # Only the stubs on PATH: the scripts use shell builtins and the tools they check for.
    return subprocess.run(
        [shutil.which("bash"), os.path.join(ROOT, path), *args],
        capture_output=True,
        text=True,
        env={"PATH": bin_dir},
        cwd=ROOT,
    )


def test_prereqs_names_every_missing_tool_and_how_to_install_it(tmp_path):
    done = run_script("scripts/prereqs.sh", bin_dir=fake_bin(tmp_path, {"kind": "exit 0", "kubectl": "exit 0"}))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("MISSING  docker") and "https://docs.docker.com/engine/install/" in line and "Podman" in line
        for line in lines
    )
    assert any(line.startswith("MISSING  pulumi") and "get.pulumi.com" in line for line in lines)
    assert any(line.startswith("ok       kind") for line in lines) and any(
        line.startswith("ok       kubectl") for line in lines
    )


def test_prereqs_says_when_docker_has_no_engine_and_accepts_podman(tmp_path):
    base = {"kind": "exit 0", "kubectl": "exit 0", "pulumi": "exit 0"}
    stopped = run_script("scripts/prereqs.sh", bin_dir=fake_bin(tmp_path / "a", base | {"docker": "exit 1"}))
    assert stopped.returncode == 1 and "no engine answers" in stopped.stdout
    podman = run_script("scripts/prereqs.sh", bin_dir=fake_bin(tmp_path / "b", base | {"podman": "exit 0"}))
    assert podman.returncode == 0 and "MISSING" not in podman.stdout


def test_cluster_script_creates_only_an_absent_cluster(tmp_path):
    log = tmp_path / "calls.log"
    kind_with = lambda existing: (
        f'echo "kind $*" >> {log}; [ "$1 $2" = "get clusters" ] && printf "{existing}\\n"; exit 0'
    )
    tools = {"docker": "exit 0", "grep": 'exec /bin/grep "$@"', "kubectl": f'echo "kubectl $*" >> {log}'}

    run = run_script(
        "scripts/kind-cluster.sh",
        "up",
        "b2b-platform",
        "deploy/kind-config.yaml",
        bin_dir=fake_bin(tmp_path / "new", tools | {"kind": kind_with("other")}),
    )
    assert run.returncode == 0, run.stderr
    assert "kind create cluster --name b2b-platform --config deploy/kind-config.yaml --wait 5m" in log.read_text()

    log.write_text("")
    again = run_script(
        "scripts/kind-cluster.sh",
        "up",
        "b2b-platform",
        "deploy/kind-config.yaml",
        bin_dir=fake_bin(tmp_path / "old", tools | {"kind": kind_with("b2b-platform")}),
    )
    assert again.returncode == 0 and "already exists" in again.stdout
    calls = log.read_text()
    assert (
        "create cluster" not in calls
        and "kubectl --context kind-b2b-platform wait --for=condition=Ready nodes --all" in calls
    )


def test_e2e_check_skips_with_a_reason_without_a_cluster(tmp_path):
    empty = tmp_path / "kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env = os.environ.copy() | {"KUBECONFIG": str(empty)}
    if shutil.which("kubectl") is None:
        env["PATH"] = os.environ["PATH"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "e2e", "tests/e2e", "-rs", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout
    assert "passed" not in done.stdout and "failed" not in done.stdout
    expected = "kubectl not found on PATH" if shutil.which("kubectl") is None else "no kube context 'kind-b2b-platform'"
    assert "6 skipped" in done.stdout and expected in done.stdout


def test_e2e_reason_names_a_missing_kubectl(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert unreachable_reason().startswith("kubectl not found on PATH")


def test_default_run_deselects_the_e2e_check():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/e2e", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert "6 deselected" in done.stdout, done.stdout
