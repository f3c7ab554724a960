from conftest import resource, variant

from components import meta
from components.fabric import FabricArgs, policy_specs
from components.settings import QuotaSettings

CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
    }
)


def test_namespace_enforces_restricted(seed_render):
    labels = seed_render.get("Namespace", "saas-net")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"


def test_default_deny_both_ways_and_only_needed_egress(seed_render):
    deny = seed_render.get("NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = seed_render.get("NetworkPolicy", "allow-dns")["spec"]["egress"][0]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    private = seed_render.get("NetworkPolicy", "allow-private-network")["spec"]
    assert private["egress"] == [{"to": [{"ipBlock": {"cidr": "10.50.0.0/16"}}]}]
    intra = seed_render.get("NetworkPolicy", "allow-fabric-egress")["spec"]
    assert intra["policyTypes"] == ["Egress"] and "ingress" not in intra


def test_public_fabric_lets_the_edge_reach_entrypoints_only(seed_render):
    edge = seed_render.get("NetworkPolicy", "allow-edge")["spec"]
    assert edge["podSelector"] == {"matchLabels": {meta.ENTRYPOINT_LABEL: "true"}}
    # Entry ports only, by name (resolved on each entry point): never SeaweedFS' other listeners.
    assert edge["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}],
            "ports": [{"protocol": "TCP", "port": "http"}, {"protocol": "TCP", "port": "s3"}],
        }
    ]


def test_private_network_is_the_computes_and_leaves_the_api_server_out(seed_render):
    spec = seed_render.get("NetworkPolicy", "allow-private-network")["spec"]
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/part-of": "b2b-platform", "app.kubernetes.io/component": "compute"}
    }
    assert spec["egress"] == [{"to": [{"ipBlock": {"cidr": "10.50.0.0/16"}}]}]
    inside = policy_specs(FabricArgs("ns", "10.0.0.0/8", True, "traefik", QuotaSettings(), "10.96.0.0/24"))
    assert inside["allow-private-network"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/24"]}}
    ]
    outside = policy_specs(FabricArgs("ns", "10.0.0.0/8", True, "traefik", QuotaSettings(), "172.18.0.0/16"))
    assert outside["allow-private-network"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]


def test_private_fabric_has_no_edge_policy(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: resource(bp, "saas-net")["config"].update(publica=False)))
    assert "allow-edge" not in rendered.names("NetworkPolicy")
    assert not any(
        meta.ENTRYPOINT_LABEL in d["spec"]["template"]["metadata"]["labels"] for d in rendered.kind("Deployment")
    )


def test_policy_specs_follow_the_edge_namespace():
    specs = policy_specs(FabricArgs("ns", "10.0.0.0/8", True, "gateway-system", QuotaSettings()))
    assert (
        specs["allow-edge"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        == "gateway-system"
    )


def test_quota_forbids_node_ports_and_load_balancers(seed_render):
    hard = seed_render.get("ResourceQuota", "fabric-quota")["spec"]["hard"]
    assert hard["services.nodeports"] == "0" and hard["services.loadbalancers"] == "0"
    assert hard["pods"] == "300"
    limits = seed_render.get("LimitRange", "fabric-limits")["spec"]["limits"][0]
    assert limits["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}


def test_every_namespaced_object_lives_in_the_fabric(seed_render):
    placed = {
        (o["kind"], o["metadata"]["name"]): o["metadata"].get("namespace")
        for o in seed_render.objects
        if o["kind"] not in CLUSTER_SCOPED
    }
    # The one exception: a CA ClusterIssuer reads its key pair from cert-manager's own namespace.
    assert placed.pop(("Certificate", "b2b-local-ca")) == "cert-manager"
    assert set(placed.values()) == {"saas-net"}
