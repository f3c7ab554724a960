#!/usr/bin/env bash
# The kind cluster, idempotently.
#   kind-cluster.sh up <name> <config>   create it unless it exists, then wait for its nodes
#   kind-cluster.sh down <name>          delete it (nothing to do if it is gone)
set -euo pipefail

usage="usage: kind-cluster.sh up <name> <config> | down <name>"
action="${1:?$usage}"
name="${2:?$usage}"

# kind uses Docker unless told otherwise; with only Podman present, say so.
if ! command -v docker >/dev/null 2>&1 && command -v podman >/dev/null 2>&1; then
  export KIND_EXPERIMENTAL_PROVIDER=podman
fi

case "$action" in
  up)
    config="${3:?$usage}"
    if kind get clusters 2>/dev/null | grep -qx "$name"; then
      # kubeadm set the API server's flags (the audit log among them) when it was created.
      echo "kind cluster '$name' already exists; keeping it (a changed kind config applies only when it is re-created)"
    else
      kind create cluster --name "$name" --config "$config" --wait 5m
    fi
    kubectl --context "kind-$name" wait --for=condition=Ready nodes --all --timeout=5m
    # The address pods reach the API server at after DNAT: the stack's apiServerCidr must contain it.
    api="$(kubectl --context "kind-$name" get endpointslices -n default -l kubernetes.io/service-name=kubernetes \
      -o jsonpath='{.items[0].endpoints[0].addresses[0]}')"
    echo "API server endpoint: $api (b2b-platform:apiServerCidr must contain it; docs/network.md)"
    ;;
  down)
    kind delete cluster --name "$name"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
