"""The architecture diagram draws the flow model (components/flows.py): the seed, and a broken policy."""

from __future__ import annotations

import dataclasses

from conftest import ROOT, dev_config

from components import flows
from components.diagram import architecture_markdown, edges, mermaid, relations
from components.settings import load_inputs


def seed_model(seed_render) -> flows.Model:
    inputs = load_inputs(dev_config(), root=ROOT)
    return flows.build(seed_render.objects, inputs.settings, inputs.blueprint)


def test_seed_diagram_shows_operator_pods_and_their_flows(seed_render):
    model = seed_model(seed_render)
    chart = mermaid(model, seed_render.objects)
    assert chart.startswith("flowchart LR\n")
    # Pods nobody renders: CNPG's instances and Jobs, the pooler, Prometheus, the add-ons.
    for node in (
        'p_saas_net_platform_db_2_join["platform-db-2-join<br/>CNPG join Job"]',
        'p_saas_net_platform_db_pooler_rw["platform-db-pooler-rw<br/>CNPG pooler"]',
        'p_saas_net_prometheus_tenant_obs_0["prometheus-tenant-obs-0<br/>Prometheus pod"]',
        'p_cnpg_system_cloudnative_pg["cloudnative-pg<br/>Deployment"]',
    ):
        assert node in chart, node
    for arrow in (
        'p_saas_net_platform_db_2_join -->|"TCP 5432"| p_saas_net_platform_db_1',
        'p_saas_net_platform_db_1 -->|"TCP 443, TCP 6443"| h_api_server',
        'p_traefik_traefik -->|"TCP 8080"| p_saas_net_edge_waf',
        'p_saas_net_edge_waf -->|"TCP 8080"| p_saas_net_tenant_api',
        'p_keda_keda_operator -->|"TCP 9090"| p_saas_net_prometheus_tenant_obs_0',
        # Every fabric pod's DNS, drawn once from the namespace.
        'ns_saas_net -->|"TCP 53, UDP 53"| p_kube_system_coredns',
    ):
        assert arrow in chart, arrow
    assert "--x" not in chart  # nothing required is blocked
    assert "s_saas_net_api_scale -.->|scales| p_saas_net_tenant_api" in chart
    text = architecture_markdown(model, seed_render.objects, "T", [("saas-net", "fabric")])
    assert "- `saas-net` (fabric)\n" in text and f"```mermaid\n{chart}```" in text


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
    assert 'p_saas_net_platform_db_2_join --x|"blocked: TCP 5432"| p_saas_net_platform_db_1' in chart
    assert 'p_saas_net_platform_db_2_join -->|"TCP 5432"| p_saas_net_platform_db_1' not in chart


def test_edges_touch_the_fabric_only(seed_render):
    model = seed_model(seed_render)
    assert all(
        model.fabric in {getattr(src, "namespace", None), getattr(dst, "namespace", None)} for src, dst in edges(model)
    )


def test_relations_follow_services_to_pods(seed_render):
    model = seed_model(seed_render)
    rels = relations(seed_render.objects, model.pods)
    assert ("i_saas_net_wildcard_dns", "routes", "p_saas_net_edge_waf") in {(r[0], r[3], r[4]) for r in rels}
