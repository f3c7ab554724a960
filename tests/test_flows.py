"""The flow model (components/flows.py): NetworkPolicy semantics, the pods that will run, and the
required and forbidden flow lists on every render that matters.

Upstream facts the model encodes (labels and ports of pods the program never renders) are
cited where they are defined in components/flows.py; the tests below pin the ones the
policies depend on.
"""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest
from conftest import ROOT, Rendered, dev_config, variant
from test_sso import oidc

from components import flows, meta
from components.flows import Host, Pod, Policies, Port
from components.render import run_program
from components.settings import load_inputs

NS = "saas-net"


# --- the evaluator, on small cases -------------------------------------------------------------


def pod(ns: str, name: str, ports=(), **labels) -> Pod:
    return Pod(ns, name, "Pod", "", tuple(sorted(labels.items())), tuple(ports), "test", f"10.244.0.{len(name)}")


WEB = pod("a", "web", (Port("http", "TCP", 8080), Port("metrics", "TCP", 9000)), app="web")
DB = pod("a", "db", (Port("http", "TCP", 5432),), app="db")
CLIENT = pod("a", "client", app="client")
OTHER = pod("b", "client", app="client")
OUT = Host("out", "203.0.113.5", (), "test")


def policies(*specs, ns="a", namespaces=None, ipblock_pods=False) -> Policies:
    labels = namespaces or {"a": {"team": "x"}, "b": {"team": "y"}}
    return Policies([(ns, s) for s in specs], labels, ipblock_pods)


def ingress(rules, **selector) -> dict:
    return {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": rules}


def egress(rules, **selector) -> dict:
    return {"podSelector": {"matchLabels": selector}, "policyTypes": ["Egress"], "egress": rules}


def test_no_policy_is_open_and_isolation_is_per_direction():
    assert policies().allows(CLIENT, WEB, 1)
    # Ingress-isolated web: nobody gets in; the client's egress is untouched.
    only_ingress = policies(ingress([], app="web"))
    assert not only_ingress.allows(CLIENT, WEB, 8080)
    assert only_ingress.allows(WEB, CLIENT, 1) and only_ingress.allows(CLIENT, OUT, 443)
    # Egress-isolated client: may send nowhere, may still be reached.
    only_egress = policies(egress([], app="client"))
    assert not only_egress.allows(CLIENT, WEB, 8080) and only_egress.allows(WEB, CLIENT, 1)


def test_both_ends_must_allow():
    send = egress([{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}]}], app="client")
    admit = ingress([{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}], app="web")
    assert not policies(send, ingress([], app="web")).allows(CLIENT, WEB, 8080)
    assert not policies(admit, egress([], app="client")).allows(CLIENT, WEB, 8080)
    assert policies(send, admit).allows(CLIENT, WEB, 8080)


def test_policy_types_default():
    # No policyTypes: Ingress always, Egress only with egress rules.
    assert not policies({"podSelector": {}}).allows(CLIENT, WEB, 1)
    assert policies({"podSelector": {}}).allows(WEB, OUT, 1)
    assert not policies({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}).allows(
        WEB, OUT, 1
    )


def test_pod_and_namespace_selectors_in_one_peer_are_anded():
    anded = ingress(
        [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"team": "y"}}, "podSelector": {"matchLabels": {"app": "x"}}}
                ]
            }
        ],
        app="web",
    )
    assert not policies(anded).allows(OTHER, WEB, 8080)  # right namespace, wrong pod
    ored = ingress(
        [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"team": "y"}}},
                    {"podSelector": {"matchLabels": {"app": "x"}}},
                ]
            }
        ],
        app="web",
    )
    assert policies(ored).allows(OTHER, WEB, 8080)


def test_empty_and_absent_selectors():
    # podSelector alone: the policy's namespace only, even when empty.
    own = ingress([{"from": [{"podSelector": {}}]}], app="web")
    assert policies(own).allows(CLIENT, WEB, 8080) and not policies(own).allows(OTHER, WEB, 8080)
    # namespaceSelector {} without podSelector: every pod of every namespace, but no host.
    everywhere = ingress([{"from": [{"namespaceSelector": {}}]}], app="web")
    assert policies(everywhere).allows(OTHER, WEB, 8080) and not policies(everywhere).allows(OUT, WEB, 8080)
    # No `from` at all: everything, hosts included; an empty ingress list: nothing.
    anyone = ingress([{"ports": [{"port": 8080}]}], app="web")
    assert policies(anyone).allows(OUT, WEB, 8080) and not policies(anyone).allows(OUT, WEB, 9000)
    assert not policies(ingress([], app="web")).allows(CLIENT, WEB, 8080)
    # An empty podSelector on the policy selects every pod of its namespace.
    assert not policies({"podSelector": {}, "policyTypes": ["Ingress"]}).allows(CLIENT, DB, 5432)


def test_match_expressions():
    labels = {"app": "web", "tier": "front"}
    assert flows.selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, labels)
    assert flows.selects({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, labels)
    assert not flows.selects({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, labels)
    assert not flows.selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)


def test_ip_block_with_except_and_pod_addresses():
    rule = egress([{"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.0/29"]}}]}], app="client")
    assert not policies(rule).allows(CLIENT, OUT, 443)  # 203.0.113.5 is in the except
    assert policies(rule).allows(CLIENT, Host("x", "203.0.113.9", (), "t"), 443)
    assert not policies(rule).allows(CLIENT, Host("v6", "2001:db8::1", (), "t"), 443)
    # Whether an ipBlock matches pod IPs is the plugin's choice: both readings are modelled.
    pods = egress([{"to": [{"ipBlock": {"cidr": "10.244.0.0/16"}}]}], app="client")
    assert not policies(pods).allows(CLIENT, WEB, 8080)
    assert policies(pods, ipblock_pods=True).allows(CLIENT, WEB, 8080)


def test_ports_named_ranges_and_protocols():
    named = egress([{"ports": [{"port": "http"}]}], app="client")
    # Resolved on the destination: web's http is 8080, db's http is 5432.
    assert policies(named).allows(CLIENT, WEB, 8080) and not policies(named).allows(CLIENT, WEB, 9000)
    assert policies(named).allows(CLIENT, DB, 5432) and not policies(named).allows(CLIENT, DB, 8080)
    assert not policies(named).allows(CLIENT, OUT, 8080)  # a host has no named ports
    ranged = egress([{"ports": [{"port": 8000, "endPort": 8100}]}], app="client")
    assert policies(ranged).allows(CLIENT, WEB, 8080) and not policies(ranged).allows(CLIENT, WEB, 9000)
    udp = egress([{"ports": [{"protocol": "UDP", "port": 53}]}], app="client")
    assert policies(udp).allows(CLIENT, OUT, 53, "UDP") and not policies(udp).allows(CLIENT, OUT, 53)
    every_tcp = egress([{"ports": [{"protocol": "TCP"}]}], app="client")
    assert policies(every_tcp).allows(CLIENT, OUT, 1) and not policies(every_tcp).allows(CLIENT, OUT, 1, "UDP")


def test_policies_apply_in_their_namespace_only():
    deny = {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert policies(deny, ns="b").allows(CLIENT, WEB, 8080)
    assert not policies(deny, ns="b").allows(CLIENT, OTHER, 1)


# --- the renders ---------------------------------------------------------------------------


def model_of(config: dict, secret_keys=()) -> flows.Model:
    rendered = Rendered(run_program(config, secret_keys=secret_keys))
    inputs = load_inputs(config, root=ROOT, secret_keys=secret_keys)
    return flows.build(rendered.objects, inputs.settings, inputs.blueprint)


def example(name: str) -> str:
    return os.path.join(ROOT, "blueprints", "examples", name)


def public_archive(tmp_path) -> str:
    def edit(bp):
        next(r for r in bp["recursos"] if r["tipo"] == "archive")["config"]["publico"] = True

    return variant(tmp_path, edit, "public-archive.json")


ACME = {"edge": {**dev_config()["edge"], "customDomainIssuer": "letsencrypt-http01"}}
RENDERS = {
    "seed": ({}, None, ()),
    "seed-sso": (oidc(), None, ("oidc",)),
    "seed-acme-http01": (ACME, None, ()),
    "seed-public-archive-sso-acme": ({**oidc(), **ACME}, "public-archive", ("oidc",)),
    "seed-no-api-server-cidr": ({"apiServerCidr": None}, None, ()),
    "internal-only": ({}, example("internal-only.json"), ()),
    "single-zone": ({}, example("single-zone.json"), ()),
    "single-zone-sso-acme": ({**oidc(), **ACME}, example("single-zone.json"), ("oidc",)),
}


def config_for(name: str, tmp_path) -> tuple[dict, tuple]:
    overrides, blueprint, secrets = RENDERS[name]
    config = copy.deepcopy(dev_config())
    config.update({k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        config.pop(key)
    if blueprint == "public-archive":
        blueprint = public_archive(tmp_path)
    if blueprint:
        config["blueprint"] = blueprint
        if "single-zone" not in blueprint and "public-archive" not in blueprint:
            config["tenants"] = [{**t, "domains": []} for t in config["tenants"]]  # no gateway there
    return config, secrets


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, flows.Model]:
    tmp = tmp_path_factory.mktemp("flows")
    return {name: model_of(*config_for(name, tmp)) for name in RENDERS}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_required_flows_are_open(models, name):
    model = models[name]
    blocked, _ = flows.verdicts(model)
    assert not blocked, "required flows blocked:\n" + "\n".join(map(str, blocked))


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_forbidden_flows_are_closed(models, name):
    _, leaks = flows.verdicts(model := models[name])
    assert not leaks, "forbidden flows open:\n" + "\n".join(map(str, leaks[:50]))
    assert len(flows.forbidden(model)) > 100


def reasons(expectations) -> set[str]:
    return {e.reason for e in expectations}


def test_the_lists_cover_what_the_issue_names(models):
    seed = flows.required(models["seed-public-archive-sso-acme"])
    text = "\n".join(map(str, seed))
    for flow in (
        "traefik/traefik -> saas-net/edge-waf TCP/8080",  # edge → WAF
        "saas-net/edge-waf -> saas-net/tenant-api TCP/8080",  # WAF → API
        "traefik/traefik -> saas-net/admin-ui-sso TCP/4180",  # edge → login proxy
        "saas-net/admin-ui-sso -> saas-net/admin-ui TCP/8080",
        "saas-net/tenant-api -> saas-net/platform-db-pooler-rw TCP/5432",
        "saas-net/tenant-api -> saas-net/lifecycle TCP/4222",
        "saas-net/tenant-api -> saas-net/tenant-files TCP/8333",
        "saas-net/platform-db-pooler-rw -> saas-net/platform-db-1 TCP/5432",
        "saas-net/platform-db-2 -> saas-net/platform-db-1 TCP/5432",
        "saas-net/platform-db-2-join -> saas-net/platform-db-1 TCP/5432",
        "cnpg-system/cloudnative-pg -> saas-net/platform-db-2 TCP/8000",
        "saas-net/platform-db-1-initdb -> api-server (172.18.0.2) TCP/6443",
        "saas-net/platform-db-pooler-rw -> api-server (172.18.0.2) TCP/6443",
        "saas-net/platform-db-1 -> saas-net/tenant-files TCP/8333",  # barman sidecar
        "cnpg-system/cloudnative-pg -> cnpg-system/barman-cloud TCP/9090",
        "saas-net/prometheus-tenant-obs-0 -> saas-net/platform-db-2 TCP/9187",
        "saas-net/prometheus-tenant-obs-0 -> saas-net/platform-db-pooler-rw TCP/9127",
        "saas-net/prometheus-tenant-obs-0 -> saas-net/tenant-api TCP/8080",
        "saas-net/prometheus-tenant-obs-0 -> api-server (172.18.0.2) TCP/6443",
        "keda/keda-operator -> saas-net/prometheus-tenant-obs-0 TCP/9090",
        "nack/nack -> saas-net/lifecycle TCP/4222",
        "saas-net/lifecycle -> saas-net/lifecycle TCP/6222",
        "saas-net/cm-acme-http-solver -> kube-system/coredns UDP/53",
        "traefik/traefik -> saas-net/cm-acme-http-solver TCP/8089",
        "traefik/traefik -> saas-net/tenant-files TCP/8333",
        "saas-net/admin-ui-sso -> idp (198.51.100.20) TCP/443",
    ):
        assert flow in text, flow
    forbidden = "\n".join(map(str, flows.forbidden(models["seed-public-archive-sso-acme"])))
    for flow in (
        "traefik/traefik -> saas-net/tenant-api TCP/8080: WAF or login-proxy bypass",
        "traefik/traefik -> saas-net/admin-ui TCP/8080: WAF or login-proxy bypass",
        "saas-net/tenant-api -> saas-net/platform-db-1 TCP/5432: pooler bypass",
        "traefik/traefik -> saas-net/tenant-files TCP/9333: the edge reaches a public workload on its entry port only",
        "intruder/fake-tenant-api -> saas-net/platform-db-pooler-rw TCP/5432",
        "saas-net/platform-db-1 -> internet (203.0.113.10) TCP/443: no fabric pod reaches the internet",
        "saas-net/edge-waf -> saas-net/admin-ui-sso TCP/4180: the WAF reaches its target, nothing else",
        "saas-net/tenant-api -> cnpg-system/cloudnative-pg TCP/9443: the computes never reach other namespaces",
        "saas-net/edge-waf -> private-network (10.50.0.10) TCP/5432",
    ):
        assert flow in forbidden, flow


def test_operator_pods_carry_their_upstream_labels(models):
    model = models["seed-acme-http01"]
    join = model.pod("platform-db-2-join")
    # CNPG v1.30.0 pkg/specs/jobs.go: a Job pod has cnpg.io/jobRole and no cnpg.io/podRole.
    assert join.label_map["cnpg.io/jobRole"] == "join" and "cnpg.io/podRole" not in join.label_map
    assert join.ports == ()
    primary = model.pod("platform-db-1")
    assert {(p.name, p.number) for p in primary.ports} == {("postgresql", 5432), ("metrics", 9187), ("status", 8000)}
    # pkg/specs/pgbouncer/deployments.go: poolers carry cnpg.io/cluster too, with podRole pooler.
    pooler = model.pod("platform-db-pooler-rw")
    assert pooler.label_map["cnpg.io/cluster"] == "platform-db" and pooler.label_map["cnpg.io/podRole"] == "pooler"
    prometheus = model.pod("prometheus-tenant-obs-0")
    assert prometheus.label_map["operator.prometheus.io/name"] == "tenant-obs"
    assert prometheus.port("web").number == 9090
    (solver,) = model.of_kind("HTTP-01 solver")
    assert solver.label_map["acme.cert-manager.io/http01-solver"] == "true" and solver.port("http").number == 8089
    assert not models["seed"].of_kind("HTTP-01 solver")
    assert all(p.origin != "rendered" for p in model.pods if p.kind.startswith(("CNPG", "Prometheus", "HTTP")))


def test_only_prometheus_reaches_the_wafs_tenant_counters(models):
    """The WAF in front of the api compute serves per-tenant counters on `metrics` (9145)."""
    seed = models["seed"]
    scrape = (
        "saas-net/prometheus-tenant-obs-0 -> saas-net/edge-waf TCP/9145: Prometheus scrapes what its monitors select"
    )
    assert scrape in map(str, flows.required(seed))
    closed = {e.source.name for e in flows.forbidden(seed) if e.target.name == "edge-waf" and e.port == 9145}
    assert {"traefik", "fake-edge-waf", "keda-operator"} <= closed
    # The scrape rule opened to every namespace: the edge reaches the counters.
    opened = broken(
        seed, "tenant-obs-scrape-edge-edge-waf", lambda s: s["ingress"][0].update({"from": [{"namespaceSelector": {}}]})
    )
    _, leaks = flows.verdicts(opened)
    assert "traefik/traefik -> saas-net/edge-waf TCP/9145" in "\n".join(map(str, leaks))


# --- a broken policy fails the lists --------------------------------------------------------


def broken(model: flows.Model, name: str, edit) -> flows.Model:
    """The model with the spec of NetworkPolicy `name` changed by `edit(spec)`."""
    policies = list(model.policies)
    index = model.policy_names.index(name)
    ns, spec = policies[index]
    spec = copy.deepcopy(dict(spec))
    edit(spec)
    policies[index] = (ns, spec)
    return dataclasses.replace(model, policies=tuple(policies))


def test_removing_the_join_job_peer_blocks_the_join(models):
    model = broken(
        models["seed"],
        "platform-db-instances-ingress",
        lambda s: s["ingress"][0]["from"].pop(1),
    )
    blocked, _ = flows.verdicts(model)
    assert [str(e) for e in blocked] == [
        "saas-net/platform-db-2-join -> saas-net/platform-db-1 TCP/5432: the join streams from (or clones) the primary"
    ]


def test_yesterdays_policies_leak(models):
    seed = models["seed-public-archive-sso-acme"]
    # allow-edge without ports: SeaweedFS' master, volume and filer are public.
    _, leaks = flows.verdicts(broken(seed, "allow-edge", lambda s: s["ingress"][0].pop("ports")))
    assert "traefik/traefik -> saas-net/tenant-files TCP/9333" in "\n".join(map(str, leaks))
    # The cidr rule for every pod: the WAF reaches the private network.
    _, leaks = flows.verdicts(broken(seed, "allow-private-network", lambda s: s.update(podSelector={})))
    assert {e.source.name for e in leaks} >= {"edge-waf", "platform-db-1", "lifecycle"}
    # API egress by port alone: the database pods reach the internet on 443/6443.
    _, leaks = flows.verdicts(broken(seed, "platform-db-kube-api-egress", lambda s: s["egress"][0].pop("to")))
    assert {(e.source.name, e.target.name, e.port) for e in leaks} >= {("platform-db-1", "internet", 443)}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_no_rule_has_ports_and_no_destination(models, name):
    """Port-only egress exists only as the API fallback when apiServerCidr is unset (docs/network.md)."""
    model = models[name]
    portless = {
        policy
        for policy, (_, spec) in zip(model.policy_names, model.policies, strict=True)
        for rule in spec.get("egress") or []
        if rule.get("ports") and not rule.get("to")
    }
    assert all(rule.get("from") for _, spec in model.policies for rule in spec.get("ingress") or [])
    if model.settings.api_server_cidr:
        assert portless == set()
    else:
        assert portless <= {"platform-db-kube-api-egress", "tenant-obs-prometheus-apiserver"} and portless


def test_the_migrations_job_reaches_the_primary_only_through_its_own_peer(models):
    model = models["seed"]
    (job,) = [p for p in model.fabric_pods if p.label_map.get(meta.NAME_LABEL) == "platform-db-migrations"]
    assert f"saas-net/{job.name} -> saas-net/platform-db-1 TCP/5432" in "\n".join(map(str, flows.required(model)))
    # Its own peer in the instances' ingress (the third: pooler, join Job, migrations Job).
    blocked, _ = flows.verdicts(
        broken(model, "platform-db-instances-ingress", lambda s: s["ingress"][0]["from"].pop(2))
    )
    assert [str(e) for e in blocked] == [
        (
            f"saas-net/{job.name} -> saas-net/platform-db-1 TCP/5432: "
            "the migrations Job applies sql/migrations on the primary"
        )
    ]
