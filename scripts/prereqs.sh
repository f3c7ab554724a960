#!/usr/bin/env bash
# Check what `make up` needs before it changes anything: the tools, their versions and the host's
# limits. Prints one line per check: 'ok', 'MISSING' (a tool) or 'FIX' (a version or limit), each
# problem with how to fix it; exits 1 if any. No network, no side effects.
#   prereqs.sh [<cluster> <kind-config>]   (PYTHON: the interpreter `make` builds .venv with)
set -euo pipefail

cluster="${1:-b2b-platform}"
kind_config="${2:-deploy/kind-config.yaml}"
python="${PYTHON:-python3}"
# pyproject.toml's requires-python.
python_min=(3 11)
# kind v0.33 is the first release whose node images include Kubernetes 1.35 (deploy/kind-config.yaml).
kind_min=(0 33)
# The platform's own pods request 7.6 GiB before the add-ons (tests/test_kind.py checks this floor).
memory_min_gib=8
# kind's known issues ("Pod errors due to too many open files"): the values it recommends.
inotify_watches_min=524288
inotify_instances_min=512

problems=0

ok() {
  printf 'ok       %-8s %s\n' "$1" "$2"
}

lack() {
  printf 'MISSING  %-8s %s\n' "$1" "$2"
  problems=1
}

fix() {
  printf 'FIX      %-8s %s\n' "$1" "$2"
  problems=1
}

# "a.b" >= "c d" (major, minor).
at_least() {
  local major="${1%%.*}" minor="${1#*.}"
  [ "$major" -gt "$2" ] || { [ "$major" -eq "$2" ] && [ "$minor" -ge "$3" ]; }
}

# Python: .venv is built with it, and pip can't resolve the pins on anything older.
python_ok=0
if ! command -v "$python" >/dev/null 2>&1; then
  lack python "install Python ${python_min[0]}.${python_min[1]}+ (https://www.python.org/downloads/), or point PYTHON at one: 'make up PYTHON=python3.12'"
else
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 0.0)"
  if ! at_least "$version" "${python_min[@]}"; then
    fix python "$python is Python $version; the pinned requirements need ${python_min[0]}.${python_min[1]}+: install one and run 'make up PYTHON=python3.12' (or whichever)"
  elif ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    fix python "$python has no venv/ensurepip module: install it (Debian/Ubuntu: 'sudo apt-get install python3-venv')"
  else
    ok python "$(command -v "$python") ($version)"
    python_ok=1
  fi
fi

# kind runs its nodes as containers: a running Docker engine, or Podman.
engine=""
if command -v docker >/dev/null 2>&1; then
  if docker info >/dev/null 2>&1; then
    engine=docker
    ok docker "$(command -v docker)"
  else
    lack docker "the docker CLI is installed but no engine answers (start Docker Desktop or 'sudo systemctl start docker'; check 'docker info')"
  fi
elif command -v podman >/dev/null 2>&1; then
  engine=podman
  ok podman "$(command -v podman)"
else
  lack docker "install Docker (https://docs.docker.com/engine/install/) or Podman (https://podman.io/docs/installation)"
fi

# The engine's cgroup version, rootless mode and memory, read from the same reports kind reads
# (kind pkg/cluster/internal/providers/{docker,podman}/provider.go): "<cgroup> <rootless> <bytes>".
engine_facts() {
  if [ "$engine" = docker ]; then docker info --format '{{json .}}'; else podman info --format json; fi | "$python" -c '
import json, sys
info = json.load(sys.stdin)
host = info.get("host") or {}
cgroup = str(info.get("CgroupVersion") or host.get("cgroupVersion") or "unknown").lstrip("v")
rootless = "name=rootless" in (info.get("SecurityOptions") or []) or bool((host.get("security") or {}).get("rootless"))
print(cgroup, "true" if rootless else "false", int(info.get("MemTotal") or host.get("memTotal") or 0))
'
}

# The host ports the kind config maps (hostPort: lines), read without tools beyond bash.
host_ports=()
if [ -r "$kind_config" ]; then
  while read -r key value _; do
    if [ "$key" = "hostPort:" ]; then host_ports+=("${value//\"/}"); fi
  done <"$kind_config"
fi

if [ -n "$engine" ] && [ "$python_ok" -eq 1 ]; then
  read -r cgroup rootless memory < <(engine_facts || echo "unknown false 0")
  # Kubernetes 1.35 sets the kubelet's failCgroupV1 to true (KEP-5573, kubernetes/kubernetes#134298).
  if [ "$cgroup" = 2 ]; then
    ok cgroup "v2"
  else
    fix cgroup "$engine reports cgroup '$cgroup': the Kubernetes 1.35 kubelet of the kind nodes refuses cgroup v1; boot the host (or Docker Desktop/WSL2 VM) with cgroup v2 (systemd.unified_cgroup_hierarchy=1)"
  fi
  gib=$((memory / 1024 / 1024 / 1024))
  if [ "$gib" -ge "$memory_min_gib" ]; then
    ok memory "$gib GiB for $engine"
  else
    fix memory "$engine has $gib GiB; the platform's pods request 7.6 GiB before the add-ons: give it ${memory_min_gib}+ GiB (Docker Desktop: Settings > Resources > Memory)"
  fi
  if [ "$rootless" = true ]; then
    start="$(sysctl -n net.ipv4.ip_unprivileged_port_start 2>/dev/null || echo 1024)"
    low=()
    for port in ${host_ports[@]+"${host_ports[@]}"}; do
      if [ "$port" -lt "$start" ]; then low+=("$port"); fi
    done
    if [ "${#low[@]}" -gt 0 ]; then
      fix rootless "rootless $engine can't bind ports ${low[*]} (net.ipv4.ip_unprivileged_port_start=$start): 'echo net.ipv4.ip_unprivileged_port_start=80 | sudo tee /etc/sysctl.d/99-kind-ports.conf && sudo sysctl --system' (https://kind.sigs.k8s.io/docs/user/rootless/)"
    else
      ok rootless "$engine may bind ports ${host_ports[*]-}"
    fi
  fi
fi

# `kind version` prints "kind v0.33.0 go1.25.1 linux/amd64" (kind pkg/cmd/kind/version/version.go).
kind_install="install kind v${kind_min[0]}.${kind_min[1]}+: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (e.g. 'go install sigs.k8s.io/kind@v0.33.0' or 'brew install kind')"
if ! command -v kind >/dev/null 2>&1; then
  lack kind "$kind_install"
else
  kind_version="$(kind version 2>/dev/null || true)"
  if [[ "$kind_version" =~ v([0-9]+)\.([0-9]+)\. ]] && at_least "${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" "${kind_min[@]}"; then
    ok kind "$(command -v kind) (${kind_version#kind })"
  else
    fix kind "'kind version' says '${kind_version:-nothing}'; $kind_install"
  fi
fi

need() {
  if command -v "$1" >/dev/null 2>&1; then ok "$1" "$(command -v "$1")"; else lack "$1" "$2"; fi
}

need kubectl "install kubectl 1.35: https://kubernetes.io/docs/tasks/tools/ (e.g. 'brew install kubectl')"
need pulumi "install the Pulumi CLI: 'curl -fsSL https://get.pulumi.com | sh' or 'brew install pulumi/tap/pulumi' (https://www.pulumi.com/docs/install/)"

# inotify limits are the host kernel's, shared by every kind node (not namespaced). On macOS and
# Windows the engine runs in a VM this script can't read.
if [ "$(uname -s 2>/dev/null || echo unknown)" = Linux ]; then
  watches="$(sysctl -n fs.inotify.max_user_watches 2>/dev/null || echo 0)"
  instances="$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 0)"
  if [ "$watches" -ge "$inotify_watches_min" ] && [ "$instances" -ge "$inotify_instances_min" ]; then
    ok inotify "max_user_watches=$watches max_user_instances=$instances"
  else
    fix inotify "max_user_watches=$watches max_user_instances=$instances are too low for a 4-node kind cluster: 'sudo sysctl fs.inotify.max_user_watches=$inotify_watches_min fs.inotify.max_user_instances=$inotify_instances_min' (persist in /etc/sysctl.d; kind docs, known issues)"
  fi
fi

# The host ports must be free, unless this cluster already holds them.
cluster_exists() {
  local name
  while read -r name; do
    if [ "$name" = "$cluster" ]; then return 0; fi
  done < <(kind get clusters 2>/dev/null || true)
  return 1
}
if [ "${#host_ports[@]}" -eq 0 ]; then
  fix ports "no hostPort read from '$kind_config': run from the project root (make prereqs)"
elif command -v kind >/dev/null 2>&1 && cluster_exists; then
  ok ports "${host_ports[*]} held by the existing kind cluster '$cluster'"
else
  busy=()
  for port in ${host_ports[@]+"${host_ports[@]}"}; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy+=("$port"); fi
  done
  if [ "${#busy[@]}" -gt 0 ]; then
    fix ports "something listens on 127.0.0.1 port(s) ${busy[*]}, which kind maps to the edge: stop it (find it with 'sudo lsof -iTCP:${busy[0]} -sTCP:LISTEN')"
  else
    ok ports "${host_ports[*]} free on 127.0.0.1"
  fi
fi

if [ "$problems" -ne 0 ]; then
  echo "Fix what is marked MISSING or FIX above, then run 'make up' again." >&2
  exit 1
fi
