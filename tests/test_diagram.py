"""The architecture diagram is derived from the NetworkPolicies: small policy sets, then the seed."""

from components import meta
from components.diagram import ALL, Workload, architecture_markdown, flows, matches, mermaid


def deploy(name: str, labels: dict, namespace: str = "app", port: int = 8080) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {meta.LAYER_LABEL: "compute"}},
        "spec": {
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "ports": [{"name": "http", "containerPort": port}]}]},
            }
        },
    }


def netpol(name: str, spec: dict, namespace: str = "app") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


DENY = netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
WEB, DB = deploy("web", {"app": "web"}), deploy("db", {"app": "db"}, port=5432)


def edges(objects) -> set:
    return {
        (
            f.source.id if not isinstance(f.source, Workload) else f.source.name,
            f.target.id if not isinstance(f.target, Workload) else f.target.name,
            f.ports if f.ports is ALL else tuple(sorted(f.ports)),
        )
        for f in flows(objects)
    }


def test_deny_all_has_no_edges():
    assert flows([WEB, DB, DENY]) == []
    assert "-->" not in mermaid([WEB, DB, DENY])


def test_allow_ingress_needs_matching_egress():
    ingress = netpol("db-in", meta.allow_ingress({"app": "db"}, [meta.pod_peer({"app": "web"})], meta.tcp_ports(5432)))
    # The receiver admits web, but web's egress is still denied: no flow.
    assert flows([WEB, DB, DENY, ingress]) == []
    egress = netpol(
        "all-out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {}}]}]}
    )
    assert edges([WEB, DB, DENY, ingress, egress]) == {("web", "db", ("TCP 5432",))}


def test_named_ports_resolve_against_the_receiving_pod():
    ingress = netpol("db-in", meta.allow_ingress({"app": "db"}, [meta.pod_peer({"app": "web"})], [{"port": "http"}]))
    egress = netpol(
        "web-out",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [meta.pod_peer({"app": "db"})], "ports": meta.tcp_ports(5432, 9999)}],
        },
    )
    assert edges([WEB, DB, DENY, ingress, egress]) == {("web", "db", ("TCP 5432",))}


def test_outside_peers_are_drawn_from_the_side_the_render_shows():
    dns = netpol(
        "dns",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [meta.namespace_peer("kube-system", {"k8s-app": "kube-dns"})],
                    "ports": [{"protocol": "UDP", "port": 53}],
                }
            ],
        },
    )
    cidr = netpol(
        "net",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
        },
    )
    edge = netpol(
        "edge",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [meta.namespace_peer("traefik")]}],
        },
    )
    assert edges([WEB, DB, DENY, dns, cidr, edge]) == {
        ("web", "ext_ns_kube_system_k8s_app_kube_dns", ("UDP 53",)),
        ("db", "ext_ns_kube_system_k8s_app_kube_dns", ("UDP 53",)),
        ("web", "net_10_0_0_0_8", ALL),
        ("ext_ns_traefik", "web", ALL),
    }
    chart = mermaid([WEB, DB, DENY, dns, cidr, edge])
    # DNS is shared by every workload of the namespace: one arrow from the namespace.
    assert 'ns_app -->|"UDP 53"| ext_ns_kube_system_k8s_app_kube_dns' in chart
    assert 'w_app_web -->|"all ports"| net_10_0_0_0_8' in chart and 'ext_ns_traefik -->|"all ports"| w_app_web' in chart


def test_a_rendered_namespace_without_rendered_pods_is_still_an_endpoint():
    # The add-ons' namespaces are rendered (Namespace objects) but their pods come from Helm.
    traefik = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "traefik"}}
    edge = netpol(
        "edge",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [meta.namespace_peer("traefik")]}],
        },
    )
    assert ("ext_ns_traefik", "web", ALL) in edges([traefik, WEB, DENY, edge])


def test_no_policy_means_open():
    found = edges([WEB, DB])
    assert ("web", "db", ALL) in found and ("anywhere", "web", ALL) in found and ("web", "anywhere", ALL) in found


def test_selectors():
    assert matches(None, {"a": "1"}) and matches({}, {})
    assert matches(
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}]},
        {"a": "1", "b": "3"},
    )
    assert not matches({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}, {"b": "x"})
    assert not matches({"matchLabels": {"a": "1"}}, {"a": "2"})


def test_operator_pods_and_relations():
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg", "namespace": "app", "labels": {meta.LAYER_LABEL: "datastore"}},
        "spec": {},
    }
    ingress = netpol(
        "pg-in", meta.allow_ingress({"cnpg.io/cluster": "pg"}, [meta.pod_peer({"app": "web"})], meta.tcp_ports(5432))
    )
    egress = netpol("out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {}}]}]})
    assert edges([WEB, cluster, DENY, ingress, egress]) == {("web", "pg", ("TCP 5432",))}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "app"},
        "spec": {"selector": {"app": "web"}},
    }
    route = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "routes", "namespace": "app", "labels": {meta.LAYER_LABEL: "gateway"}},
        "spec": {
            "rules": [
                {
                    "host": "a.x.test",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "scale", "namespace": "app"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}},
    }
    chart = mermaid([WEB, cluster, DENY, ingress, egress, service, route, hpa])
    assert 'subgraph layer_app_datastore["datastore"]' in chart and 'w_app_pg["pg<br/>Cluster"]' in chart
    assert "i_app_routes -.->|routes| w_app_web" in chart and "s_app_scale -.->|scales| w_app_web" in chart
    assert 'i_app_routes["routes<br/>Ingress: a.x.test"]' in chart


def test_seed_diagram(seed_render):
    chart = mermaid(seed_render.objects)
    assert chart.startswith("flowchart LR\n")
    assert 'ns_saas_net -->|"TCP 53, UDP 53"| ext_ns_kube_system_k8s_app_kube_dns' in chart
    assert 'ns_saas_net -->|"all ports"| net_10_50_0_0_16' in chart
    text = architecture_markdown(seed_render.objects, "T", [("saas-net", "fabric"), ("platform-db", "datastore")])
    assert "- `platform-db` (datastore)\n" in text and f"```mermaid\n{chart}```" in text
