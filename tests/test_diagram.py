"""The architecture diagram draws the flow model (components/flows.py): the seed, and a broken policy."""

from __future__ import annotations

import dataclasses
import re

import pytest
from conftest import ROOT, dev_config

from components import flows
from components.diagram import architecture_markdown, edges, mermaid, nodes, ports_text, relations
from components.settings import load_inputs

OIDC = {
    "issuerUrl": "https://login.acme.io/realms/admin",
    "clientId": "b2b-admin",
    "clientSecret": "s3cret",
    "emailDomains": ["acme.io"],
}


def seed_model(seed_render) -> flows.Model:
    inputs = load_inputs(dev_config(), root=ROOT)
    return flows.build(seed_render.objects, inputs.settings, inputs.blueprint)


def test_seed_diagram_shows_operator_pods_and_their_flows(seed_render):
    model = seed_model(seed_render)
    chart = mermaid(model, seed_render.objects)
    assert chart.startswith("---\nconfig:\n  layout: elk\n---\nflowchart TB\n")
    # Pods nobody renders: CNPG's instances (one node: their flows are the same) and Jobs, the
    # pooler, Prometheus, the add-ons.
    for node in (
        'p_saas_net_platform_db_1["platform-db-1, platform-db-2<br/>CNPG instance ×2 (primary, replica)"]',
        'p_saas_net_platform_db_2_join["platform-db-2-join<br/>CNPG join Job"]',
        'p_saas_net_platform_db_pooler_rw["platform-db-pooler-rw<br/>CNPG pooler"]',
        'p_saas_net_prometheus_tenant_obs_0["prometheus-tenant-obs-0<br/>Prometheus pod"]',
        'p_cnpg_system_cloudnative_pg["cloudnative-pg<br/>Deployment"]',
    ):
        assert node in chart, node
    for arrow in (
        'clients -->|"web, websecure"| p_traefik_traefik',
        'p_traefik_traefik -->|"8080"| p_saas_net_edge_waf',
        'p_saas_net_edge_waf -->|"8080"| p_saas_net_tenant_api',
        'p_saas_net_platform_db_2_join -->|"5432"| p_saas_net_platform_db_1',
        'p_keda_keda_operator -->|"9090"| p_saas_net_prometheus_tenant_obs_0',
        'p_saas_net_platform_db_1 -->|"443, 6443"| h_api_server',
        # Flows every pod of a box shares are one arrow from the box: the computes' calls, every
        # fabric pod's DNS.
        'compute -->|"5432"| p_saas_net_platform_db_pooler_rw',
        'ns_saas_net -->|"53, 53/udp"| p_kube_system_coredns',
    ):
        assert arrow in chart, arrow
    assert "--x" not in chart  # nothing required is blocked
    assert "s_saas_net_api_scale -.->|scales| p_saas_net_tenant_api" in chart
    text = architecture_markdown(model, seed_render.objects, "T", [("saas-net", "fabric")])
    assert "- `saas-net` (fabric)\n" in text and f"```mermaid\n{chart}```" in text


def test_boxes_follow_the_request_and_the_operators_stand_apart(seed_render):
    chart = mermaid(seed_model(seed_render), seed_render.objects)
    boxes = re.findall(r"^ *subgraph (\w+)\[", chart, re.M)
    request = ["edge", "ns_saas_net", "entry", "compute", "services", "database"]
    assert [b for b in boxes if b in request] == request
    operators = chart[chart.index("subgraph operators[") :]
    for namespace in ("cnpg_system", "keda", "nack", "kube_system"):
        assert f"subgraph ns_{namespace}[" in operators
    assert "subgraph ns_saas_net[" not in operators and "subgraph edge[" not in operators


def expanded(model: flows.Model, chart: str) -> set[tuple[str, str, str]]:
    """The chart's solid arrows back at pod level: a node stands for its pods, a box for every pod in it."""
    found = nodes(model, edges(model), {})
    members: dict[str, set[str]] = {}
    for n in found:
        ids = {p.id for p in n.pods}
        members.setdefault(n.id, set()).update(ids)
        members.setdefault(n.box, set()).update(ids)
        if n.box in {"entry", "compute", "services", "database", "observability", "other"}:
            members.setdefault("ns_" + model.fabric.replace("-", "_"), set()).update(ids)
    out = set()
    for src, ports, dst in re.findall(r'^  (\w+) -->\|"([^"]*)"\| (\w+)$', chart, re.M):
        if src == "clients":
            continue
        for s in members[src]:
            for d in members.get(dst, {dst}):
                if s != d or src == dst:
                    out.add((s, d, ports))
    return out


@pytest.mark.parametrize("oidc", [False, True])
def test_merged_nodes_and_box_arrows_hide_no_flow_and_invent_none(seed_render, render, oidc):
    rendered = render({"oidc": OIDC}, secret_keys=("oidc",)) if oidc else seed_render
    inputs = load_inputs({**dev_config(), **({"oidc": OIDC} if oidc else {})}, root=ROOT, secret_keys=("oidc",))
    model = flows.build(rendered.objects, inputs.settings, inputs.blueprint)
    chart = mermaid(model, rendered.objects)
    allowed = {(s.id, d.id, ports_text(ports)) for (s, d), ports in edges(model).items()}
    assert expanded(model, chart) == allowed
    assert ('clients -->|"web, websecure"| p_traefik_traefik' in chart) and ("h_idp" in chart) is oidc


def test_a_blocked_required_flow_is_drawn_crossed(seed_render):
    model = seed_model(seed_render)
    index = model.policy_names.index("platform-db-instances-ingress")
    ns, spec = model.policies[index]
    without_join = {
        **spec,
        "ingress": [{**spec["ingress"][0], "from": spec["ingress"][0]["from"][:1]}, *spec["ingress"][1:]],
    }
    policies = (*model.policies[:index], (ns, without_join), *model.policies[index + 1 :])
    chart = mermaid(dataclasses.replace(model, policies=policies), seed_render.objects)
    # The instances differ now (a crossed arrow reaches the primary only): each is its own node.
    assert 'p_saas_net_platform_db_2_join --x|"blocked: 5432"| p_saas_net_platform_db_1' in chart
    assert 'p_saas_net_platform_db_1["platform-db-1<br/>CNPG instance (primary)"]' in chart
    assert 'p_saas_net_platform_db_2_join -->|"5432"| p_saas_net_platform_db_1' not in chart


def test_edges_touch_the_fabric_only(seed_render):
    model = seed_model(seed_render)
    assert all(
        model.fabric in {getattr(src, "namespace", None), getattr(dst, "namespace", None)} for src, dst in edges(model)
    )


def test_relations_follow_services_to_pods(seed_render):
    model = seed_model(seed_render)
    rels = relations(seed_render.objects, model.pods)
    assert ("i_saas_net_wildcard_dns", "routes", "p_saas_net_edge_waf") in {(r[0], r[3], r[4]) for r in rels}
