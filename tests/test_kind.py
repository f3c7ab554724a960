"""The kind flow, offline: cluster config, Makefile sequence, shell scripts, e2e skipping."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import yaml
from conftest import ROOT, unavailable
from e2e.kube import CONTEXT, eventually, unreachable_reason

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
        (
            ".venv/bin/python -m components kind-config blueprints/b2b-platform.json --stack-config Pulumi.dev.yaml "
            "--base deploy/kind-config.yaml --out build/kind-config.yaml"
        ),
        "scripts/kind-cluster.sh up b2b-platform build/kind-config.yaml",
        "mkdir -p .pulumi-state",
        "pulumi --non-interactive whoami --verbose",
        "pulumi --non-interactive stack select --create dev",
        # Pending creates of an interrupted run are dropped, their objects upserted by `up`.
        "pulumi --non-interactive refresh --yes --clear-pending-creates --stack dev",
        "pulumi --non-interactive up --yes --stack dev",
    ]
    assert [position(lines, s) for s in steps] == sorted(position(lines, s) for s in steps)
    # The runtime only: the test tools of requirements-dev.txt are `make test`'s.
    assert any(line.endswith("pip install --quiet --disable-pip-version-check -r requirements.txt") for line in lines)
    assert not [line for line in lines if "requirements-dev.txt" in line]


def test_make_up_refuses_a_cluster_the_stack_does_not_deploy_to():
    done = subprocess.run(["make", "-C", ROOT, "-s", "prereqs", "CLUSTER=other"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "deploys to kube context 'kind-b2b-platform': set its kubernetes:context to kind-other" in done.stderr


def test_the_kind_stack_upserts_existing_objects():
    # pulumi-kubernetes provider/pkg/provider/provider.go (master after v4.32.0; the key is in the
    # pinned 4.34.2 SDK's ProviderArgs): vars["kubernetes:config:upsertExistingObjects"] == "true",
    # and provider/pkg/await/await.go then creates by server-side apply instead of failing on AlreadyExists.
    import inspect

    import pulumi_kubernetes

    assert "upsert_existing_objects" in inspect.signature(pulumi_kubernetes.ProviderArgs).parameters
    with open(os.path.join(ROOT, "Pulumi.dev.yaml"), encoding="utf-8") as fh:
        stack = yaml.safe_load(fh)
    assert stack["config"]["kubernetes:upsertExistingObjects"] is True
    assert stack["config"]["kubernetes:context"] == "kind-b2b-platform" == CONTEXT


def test_the_committed_encryption_salt_opens_with_the_public_dev_passphrase():
    # pulumi/pulumi v3.259.0 pkg/secrets/passphrase/manager.go: state "v1:<b64 salt>:<ciphertext of
    # 'pulumi'>", key = PBKDF2-SHA256(passphrase, salt, 1,000,000 iterations, 32 bytes)
    # (sdk/go/common/resource/config/crypt.go), ciphertext "v1:<b64 nonce>:<b64 AES-256-GCM>".
    import base64
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    with open(os.path.join(ROOT, "Pulumi.dev.yaml"), encoding="utf-8") as fh:
        salt_state = yaml.safe_load(fh)["encryptionsalt"]
    version, salt, cipher_version, nonce, sealed = salt_state.split(":")
    assert (version, cipher_version) == ("v1", "v1")
    passphrase = make("-s", "--eval", "show: ; @echo $$PULUMI_CONFIG_PASSPHRASE", "show").strip()
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), base64.b64decode(salt), 1_000_000, 32)
    assert AESGCM(key).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), None) == b"pulumi"


def test_make_down_deletes_the_cluster_then_forgets_the_stack_keeping_its_config():
    lines = make("-n", "down").splitlines()
    assert position(lines, "scripts/kind-cluster.sh down b2b-platform") < position(
        lines, "pulumi --non-interactive stack rm --yes --force --preserve-config --remove-backups dev"
    )
    assert not [line for line in lines if "destroy" in line]


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


GIB = 1024**3
DOCKER_INFO = {"CgroupVersion": "2", "MemTotal": 16 * GIB, "SecurityOptions": ["name=seccomp,profile=builtin"]}


def docker(info: dict) -> str:
    # `docker info` answers; `docker info --format '{{json .}}'` is what kind and prereqs.sh read.
    return f"[ \"$2\" = --format ] && echo '{json.dumps(info)}'; exit 0"


def sysctl(**values: int) -> str:
    cases = "".join(f"  {key.replace('__', '.')}) echo {value} ;;\n" for key, value in values.items())
    return f'case "$2" in\n{cases}  *) exit 1 ;;\nesac'


# A Linux host that passes every check: stubs by command name.
HEALTHY = {
    "python3": f'exec {sys.executable} "$@"',
    "docker": docker(DOCKER_INFO),
    "kind": '[ "$1" = version ] && echo "kind v0.33.0 go1.25.1 linux/amd64"; exit 0',
    "kubectl": "exit 0",
    "pulumi": "exit 0",
    "uname": "echo Linux",
    "sysctl": sysctl(fs__inotify__max_user_watches=524288, fs__inotify__max_user_instances=512),
}


def prereqs(tmp_path, kind_config: str = "deploy/kind-config.yaml", **tools: str | None):
    """prereqs.sh on HEALTHY changed by `tools` (None removes one)."""
    stubs = {k: v for k, v in (HEALTHY | tools).items() if v is not None}
    return run_script("scripts/prereqs.sh", "b2b-platform", kind_config, bin_dir=fake_bin(tmp_path, stubs))


def flagged(done: subprocess.CompletedProcess) -> dict[str, str]:
    """Check name → its message, for every MISSING or FIX line."""
    return {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith(("MISSING ", "FIX "))}


def test_prereqs_pass_on_a_healthy_host(tmp_path):
    done = prereqs(tmp_path)
    assert (done.returncode, flagged(done)) == (0, {}), done.stdout
    checked = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("ok ")}
    assert checked == {"python", "docker", "cgroup", "memory", "kind", "kubectl", "pulumi", "inotify", "ports"}


def test_prereqs_names_every_missing_tool_and_how_to_install_it(tmp_path):
    done = prereqs(tmp_path, docker=None, pulumi=None, python3=None)
    assert done.returncode == 1
    problems = flagged(done)
    assert set(problems) == {"docker", "pulumi", "python"}
    assert "https://docs.docker.com/engine/install/" in problems["docker"] and "Podman" in problems["docker"]
    assert "get.pulumi.com" in problems["pulumi"]
    assert "PYTHON=" in problems["python"]


def test_prereqs_refuses_an_old_python_and_one_without_venv(tmp_path):
    old = prereqs(
        tmp_path / "a", python3='[ "$1" = -c ] && case "$2" in *version_info*) echo 3.9; exit 0;; esac; exit 0'
    )
    assert old.returncode == 1 and "is Python 3.9; the pinned requirements need 3.11+" in flagged(old)["python"]
    no_venv = prereqs(tmp_path / "b", python3='case "$2" in *ensurepip*) exit 1;; *version_info*) echo 3.12;; esac')
    assert "python3-venv" in flagged(no_venv)["python"]


def test_prereqs_says_when_docker_has_no_engine_and_accepts_podman(tmp_path):
    stopped = prereqs(tmp_path / "a", docker="exit 1")
    assert stopped.returncode == 1 and "no engine answers" in flagged(stopped)["docker"]
    podman_info = {"host": {"cgroupVersion": "v2", "memTotal": 12 * GIB, "security": {"rootless": False}}}
    podman = prereqs(
        tmp_path / "b", docker=None, podman=f"[ \"$2\" = --format ] && echo '{json.dumps(podman_info)}'; exit 0"
    )
    assert (podman.returncode, flagged(podman)) == (0, {}), podman.stdout
    assert "ok       memory   12 GiB for podman" in podman.stdout


def test_prereqs_checks_cgroup_v2_memory_and_kind_version(tmp_path):
    done = prereqs(
        tmp_path,
        docker=docker(DOCKER_INFO | {"CgroupVersion": "1", "MemTotal": 4 * GIB}),
        kind='[ "$1" = version ] && echo "kind v0.29.0 go1.24.2 linux/amd64"; exit 0',
    )
    problems = flagged(done)
    assert done.returncode == 1 and set(problems) == {"cgroup", "memory", "kind"}
    assert "refuses cgroup v1" in problems["cgroup"]
    assert "has 4 GiB" in problems["memory"] and "8+ GiB" in problems["memory"]
    assert "kind v0.29.0" in problems["kind"] and "v0.33+" in problems["kind"]


def test_prereqs_memory_floor_covers_what_the_platform_requests(seed_render):
    def quantity(value: str) -> float:
        units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        return float(value[:-2]) * units[value[-2:]] if value[-2:] in units else float(value)

    def requested(containers: list[dict]) -> float:
        return sum(quantity(c.get("resources", {}).get("requests", {}).get("memory", "0")) for c in containers)

    # An autoscaled Deployment declares no replicas: its autoscaler's floor is what runs.
    floors = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"].get("minReplicas", o["spec"].get("minReplicaCount", 1))
        for o in seed_render.objects
        if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    total = 0.0
    for o in seed_render.objects:
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "StatefulSet"):
            replicas = spec.get("replicas", floors.get(o["metadata"]["name"], 1))
            total += replicas * requested(spec["template"]["spec"]["containers"])
        elif o["kind"] in ("Cluster", "Prometheus"):  # CNPG instances, Prometheus replicas
            total += spec.get("instances", spec.get("replicas", 1)) * requested([spec])
        elif o["kind"] == "Pooler":
            total += spec.get("instances", 1) * requested(spec["template"]["spec"]["containers"])
    with open(os.path.join(ROOT, "scripts", "prereqs.sh"), encoding="utf-8") as fh:
        script = fh.read()
    (floor,) = [int(line.split("=")[1]) for line in script.splitlines() if line.startswith("memory_min_gib=")]
    assert total <= floor * GIB
    # The figure the script quotes to users is the one the render requests.
    assert set(re.findall(r"request (\d+\.\d) GiB", script)) == {f"{total / GIB:.1f}"}


def test_prereqs_checks_inotify_limits_on_linux_only(tmp_path):
    low = prereqs(
        tmp_path / "a", sysctl=sysctl(fs__inotify__max_user_watches=8192, fs__inotify__max_user_instances=128)
    )
    assert "fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512" in flagged(low)["inotify"]
    mac = prereqs(tmp_path / "b", uname="echo Darwin", sysctl="exit 1")
    assert mac.returncode == 0 and " inotify " not in mac.stdout


def test_prereqs_tells_rootless_engines_how_to_bind_the_edge_ports(tmp_path):
    rootless = docker(DOCKER_INFO | {"SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless"]})
    limits = {"fs__inotify__max_user_watches": 524288, "fs__inotify__max_user_instances": 512}
    blocked = prereqs(
        tmp_path / "a", docker=rootless, sysctl=sysctl(**limits, net__ipv4__ip_unprivileged_port_start=1024)
    )
    assert "can't bind ports 80 443" in flagged(blocked)["rootless"]
    assert "ip_unprivileged_port_start=80" in flagged(blocked)["rootless"]
    allowed = prereqs(
        tmp_path / "b", docker=rootless, sysctl=sysctl(**limits, net__ipv4__ip_unprivileged_port_start=80)
    )
    assert allowed.returncode == 0 and "ok       rootless" in allowed.stdout


def test_prereqs_finds_the_edge_ports_in_use_unless_the_cluster_holds_them(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = tmp_path / "kind.yaml"
        config.write_text(f"nodes:\n  - extraPortMappings:\n      - containerPort: 80\n        hostPort: {port}\n")
        busy = prereqs(tmp_path / "a", kind_config=str(config))
        assert "no hostPort read" in flagged(prereqs(tmp_path / "c", kind_config="missing.yaml"))["ports"]
        assert f"127.0.0.1 port(s) {port}" in flagged(busy)["ports"]
        kind_with_cluster = '[ "$1" = version ] && echo "kind v0.33.0"; [ "$1" = get ] && echo b2b-platform; exit 0'
        ours = prereqs(tmp_path / "b", kind_config=str(config), kind=kind_with_cluster)
        assert ours.returncode == 0 and f"{port} held by the existing kind cluster 'b2b-platform'" in ours.stdout


def test_cluster_script_creates_only_an_absent_cluster(tmp_path):
    log = tmp_path / "calls.log"

    def kind_with(existing: str) -> str:
        return f'echo "kind $*" >> {log}; [ "$1 $2" = "get clusters" ] && printf "{existing}\\n"; exit 0'

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
    assert "7 skipped" in done.stdout and expected in done.stdout


def test_e2e_checks_poll_until_they_pass_or_their_deadline():
    now = [0.0]
    attempts = []

    def check():
        attempts.append(now[0])
        assert len(attempts) >= 3, "not yet"
        return "ready"

    def sleep(seconds):
        now[0] += seconds

    assert eventually(check, 60, "thing", interval=5, clock=lambda: now[0], sleep=sleep) == "ready"
    assert attempts == [0, 5, 10]

    now[0], attempts[:] = 0.0, []

    def never():
        attempts.append(now[0])
        raise ConnectionRefusedError("edge not listening")

    try:
        eventually(never, 12, "the edge", interval=5, clock=lambda: now[0], sleep=sleep)
    except AssertionError as exc:
        message = str(exc)
    assert message == "the edge: still failing after 15s (deadline 12s): edge not listening"
    assert attempts == [0, 5, 10, 15]


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
    assert "7 deselected" in done.stdout, done.stdout


def test_every_addon_release_is_atomic_so_a_rerun_can_install_it_again(seed_render):
    # helm/helm v3.20.2 (pulumi-kubernetes' go.mod) pkg/action/install.go: failRelease uninstalls a
    # failed, timed-out or cancelled install when Atomic is set; pulumi-kubernetes
    # provider/pkg/provider/helm_release.go copies atomic, cleanupOnFail and timeout to Helm's client.
    recorded = seed_render.run.mocks.of_type("kubernetes:helm.sh/v3:Release")
    assert len(recorded) == len(releases(Settings(), None))
    for release in recorded:
        assert (release.inputs["atomic"], release.inputs["cleanupOnFail"], release.inputs["timeout"]) == (
            True,
            True,
            900,
        )
