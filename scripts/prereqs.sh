#!/usr/bin/env bash
# Check the tools `make up` needs. Prints every missing one with how to install it and exits 1;
# prints the tools found and exits 0 otherwise. No network, no side effects.
set -euo pipefail

missing=0

found() {
  printf 'ok       %-8s %s\n' "$1" "$(command -v "$1")"
}

lack() {
  printf 'MISSING  %-8s %s\n' "$1" "$2"
  missing=1
}

# kind runs its nodes as containers: a running Docker engine, or Podman.
if command -v docker >/dev/null 2>&1; then
  if docker info >/dev/null 2>&1; then
    found docker
  else
    lack docker "the docker CLI is installed but no engine answers (start Docker Desktop or 'sudo systemctl start docker'; check 'docker info')"
  fi
elif command -v podman >/dev/null 2>&1; then
  found podman
else
  lack docker "install Docker (https://docs.docker.com/engine/install/) or Podman (https://podman.io/docs/installation)"
fi

need() {
  if command -v "$1" >/dev/null 2>&1; then found "$1"; else lack "$1" "$2"; fi
}

need kind "install kind v0.33+: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (e.g. 'go install sigs.k8s.io/kind@v0.33.0' or 'brew install kind')"
need kubectl "install kubectl 1.35: https://kubernetes.io/docs/tasks/tools/ (e.g. 'brew install kubectl')"
need pulumi "install the Pulumi CLI: 'curl -fsSL https://get.pulumi.com | sh' or 'brew install pulumi/tap/pulumi' (https://www.pulumi.com/docs/install/)"

if [ "$missing" -ne 0 ]; then
  echo "Install what is MISSING above, then run 'make up' again." >&2
  exit 1
fi
