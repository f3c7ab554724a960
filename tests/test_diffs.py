"""Stable, small diffs, measured under mocks: what `pulumi preview` would show a reviewer.

Each test runs the program twice (before/after one change) and diffs the registrations
(tests/diffing.py). The numbers asserted here are docs/guardrails.md's promises.
"""

import copy
import re

import pytest
from conftest import dev_config, resource, variant
from diffing import Diff, changed_paths, diff, kind_of, mentions, snapshot, stack_provider_flags

from components.render import plain, run_program

# Shared objects one new tenant may update: the database Cluster (its managed role), the
# Database (its schema), the tenant Ingress (its host), the metrics config bounding the
# tenant label to known tenants, and the WAF's ConfigMap (its host and limit) with the WAF
# Deployment's config checksum (the roll that loads it). Everything else a tenant brings is
# its own, new objects.
MAX_SHARED_UPDATES_PER_TENANT = 6
# Pulumi's autonaming suffix (and hash-like tails generally): a readable name has none.
RANDOM_TAIL = re.compile(r"-(?=[a-z0-9]*\d)[a-z0-9]{5,}$")
# Named by a hash of their content on purpose (components/datastore.py migrations_job): not random,
# the same inputs give the same name, and a new migration set a new Job.
CONTENT_NAMED = re.compile(r"^[a-z0-9-]+-migrations-[0-9a-f]{10}$")
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
NEW_TENANT = {"id": "hooli", "plan": "business", "isolation": "schema"}


def run(config=None, blueprint_edit=None, tmp_path=None):
    config = copy.deepcopy(config or dev_config())
    if blueprint_edit:
        config["blueprint"] = variant(tmp_path, blueprint_edit)
    return run_program(config)


@pytest.fixture(scope="module")
def baseline():
    return run_program(dev_config())


def test_same_inputs_register_identical_resources(baseline):
    again = run_program(dev_config())
    first = sorted((r.typ, r.name, repr(plain(r.inputs))) for r in baseline.mocks.resources)
    second = sorted((r.typ, r.name, repr(plain(r.inputs))) for r in again.mocks.resources)
    assert first == second
    assert diff(baseline, again).touched == set()


def test_every_kubernetes_object_has_an_explicit_readable_name(baseline):
    objects = [
        r for r in baseline.mocks.resources if r.custom and r.typ.startswith("kubernetes:") and "kind" in r.inputs
    ]
    assert objects
    for r in objects:
        name = (r.inputs.get("metadata") or {}).get("name")
        # An explicit name: Pulumi never autonames (random suffix) what it finds named.
        assert isinstance(name, str) and DNS_NAME.match(name), (r.typ, r.name, name)
        assert CONTENT_NAMED.match(name) or not RANDOM_TAIL.search(name), f"{name!r} looks random"
    for r in baseline.mocks.resources:
        assert not RANDOM_TAIL.search(r.name), f"Pulumi name {r.name!r} looks random"


def test_diff_helper_classifies_changes(baseline, tmp_path):
    def scale_admin(bp):
        resource(bp, "admin-ui")["config"]["replicas_min"] = 3

    after = run(blueprint_edit=scale_admin, tmp_path=tmp_path)
    d = diff(baseline, after)
    assert set(d.updated) == {("kubernetes:apps/v1:Deployment", "admin-ui-deployment")} and not d.replaced
    assert d.updated[("kubernetes:apps/v1:Deployment", "admin-ui-deployment")] == [("spec", "replicas")]
    assert changed_paths({"spec": {"selector": {"a": 1}}}, {"spec": {"selector": {"a": 2}}}) == [
        ("spec", "selector", "a")
    ]
    # A changed selector cannot be applied in place: the helper calls it a replacement.
    moved = copy.deepcopy(after)
    key = ("kubernetes:apps/v1:Deployment", "admin-ui-deployment")
    snapshot(moved)[key].inputs["spec"]["selector"] = {"matchLabels": {"x": "y"}}
    assert key in diff(after, moved).replaced


def test_adding_a_tenant_creates_only_its_objects(baseline):
    config = dev_config()
    config["tenants"] = [*config["tenants"], NEW_TENANT]
    after = run(config)
    d = diff(baseline, after)
    assert d.deleted == [] and d.replaced == {}, d.summary()
    foreign = [k for k in d.created if not mentions(after, k, NEW_TENANT["id"])]
    assert foreign == [], f"created objects that are not the new tenant's: {foreign}"
    assert len(d.updated) <= MAX_SHARED_UPDATES_PER_TENANT, d.summary()
    # The WAF rolls for its new map; nothing else in its pods changes.
    assert d.updated[("kubernetes:apps/v1:Deployment", "edge-waf-deployment")] == [
        ("spec", "template", "metadata", "annotations", "b2b-platform.io/waf-config")
    ]


def test_changing_a_plan_touches_only_that_tenants_objects(baseline):
    config = dev_config()
    (globex,) = [t for t in config["tenants"] if t["id"] == "globex"]
    globex["plan"] = "enterprise"
    after = run(config)
    d = diff(baseline, after)
    # Enterprise brings the tenant's own login (the basic-auth Secret CNPG reads; its password
    # derives from the datastore's master secret), its role entry in the Cluster and its key in
    # the Secret the computes mount. No compute pod spec changes, so no compute rolls (globex is
    # rls: the Database's schemas stay); the WAF rolls for its limit.
    assert d.deleted == [] and d.replaced == {}, d.summary()
    assert sorted(k[0].rsplit(":", 1)[-1] for k in d.created) == ["Secret"] and all(
        mentions(after, k, "globex") for k in d.created
    ), d.summary()
    assert {kind_of(after, k): paths for k, paths in d.updated.items()} == {
        "Cluster": [("spec", "managed", "roles"), ("spec", "postgresql", "pg_hba")],
        "Secret": [("stringData", "globex")],  # its key added, nothing else
        # The plan's rate limit at the edge: the WAF's server config, and the roll that loads it.
        "ConfigMap": [("data", "default.conf.template")],
        "Deployment": [("spec", "template", "metadata", "annotations", "b2b-platform.io/waf-config")],
    }, d.summary()
    assert ("kubernetes:core/v1:Secret", "platform-db-tenant-logins") in d.updated


def test_a_plan_switchs_second_phase_only_revokes_the_routers_membership():
    """docs/layers/datastore.md, switching plans: phase 1 (previousPlan) did everything else."""
    config = dev_config()
    (globex,) = [t for t in config["tenants"] if t["id"] == "globex"]
    globex.update(plan="enterprise", previousPlan="business")
    phase_one = run(config)
    del globex["previousPlan"]
    d = diff(phase_one, run(config))
    assert d.created == [] and d.deleted == [] and d.replaced == {}, d.summary()
    assert {kind_of(phase_one, k): paths for k, paths in d.updated.items()} == {
        "Cluster": [("spec", "managed", "roles")]
    }, d.summary()


def test_removing_a_recovery_after_the_restore_updates_the_cluster_in_place(baseline):
    """docs/operations.md, Backups and restore: the Cluster is a custom resource, so the bootstrap
    going back to initdb is an update (no force-new path, tests/diffing.py), which CNPG's webhook
    accepts (cloudnative-pg v1.30.0 internal/webhook/v1/cluster_webhook.go validateClusterChanges
    has no check on `bootstrap`) and its controller ignores on an initialized Cluster
    (internal/controller/cluster_create.go createPrimaryInstance)."""
    config = dev_config()
    config["datastore"] = {"recovery": {"serverName": "platform-db-x7k2m9qa"}}
    d = diff(run(config), baseline)
    assert d.created == [] and d.deleted == [] and d.replaced == {}, d.summary()
    assert {kind_of(baseline, k): paths for k, paths in d.updated.items()} == {
        "Cluster": [("spec", "bootstrap", "initdb"), ("spec", "bootstrap", "recovery"), ("spec", "externalClusters")]
    }, d.summary()


def test_a_domain_migration_updates_the_edge_in_place(baseline, tmp_path):
    """docs/layers/gateway.md, changing the domain: the old base domain stays listed while clients move."""
    config = dev_config()
    config["edge"] = {**config["edge"], "previousDomains": ["app.acme.io"]}

    def move(bp):
        resource(bp, "wildcard-dns")["config"]["dominio"] = "*.app.initech.io"

    d = diff(baseline, run(config, move, tmp_path))
    assert d.created == [] and d.deleted == [] and d.replaced == {}, d.summary()
    assert ("kubernetes:networking.k8s.io/v1:Ingress", "wildcard-dns-ingress") in d.updated
    assert ("kubernetes:cert-manager.io/v1:Certificate", "wildcard-dns-certificate") in d.updated


def test_replicas_max_touches_only_the_autoscaler(baseline, tmp_path):
    def bump(bp):
        resource(bp, "tenant-api")["config"]["replicas_max"] = 30

    after = run(blueprint_edit=bump, tmp_path=tmp_path)
    d = diff(baseline, after)
    assert d.created == [] and d.deleted == [] and d.replaced == {}, d.summary()
    assert {kind_of(after, k) for k in d.updated} <= {
        "ScaledObject",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }, d.summary()
    assert any(kind_of(after, k) in ("ScaledObject", "HorizontalPodAutoscaler") for k in d.updated), d.summary()


def test_diff_summary_is_readable():
    d = Diff(created=[("t", "a")], updated={("t", "b"): [("spec",)]})
    assert d.summary() == "created [('t', 'a')], deleted [], updated [('t', 'b')], replaced []"
    assert d.touched == {("t", "a"), ("t", "b")}


SECRET = "kubernetes:core/v1:Secret"


def rotate_acme(config: dict) -> dict:
    config = copy.deepcopy(config)
    for t in config["tenants"]:
        if t["id"] == "acme":
            t["loginVersion"] = t.get("loginVersion", 0) + 1
    return config


def test_a_rotated_password_is_a_change_though_the_preview_masks_it(baseline):
    after = run(rotate_acme(dev_config()))
    d = diff(baseline, after)
    # acme's own login and its key in the mounted file Secret; nothing else learns the password.
    assert d.updated == {
        (SECRET, "platform-db-tenant-acme"): [("stringData", "password")],
        (SECRET, "platform-db-tenant-logins"): [("stringData", "acme")],
    }, d.summary()
    assert not d.replaced and not d.created and not d.deleted


def test_without_the_mutable_flags_the_provider_replaces_secrets_and_configmaps(baseline):
    after = run(rotate_acme(dev_config()))
    assert set(diff(baseline, after, flags=frozenset()).replaced) == {
        (SECRET, "platform-db-tenant-acme"),
        (SECRET, "platform-db-tenant-logins"),
    }
    config = dev_config()
    config["tenants"] = [*config["tenants"], NEW_TENANT]
    # A new business tenant: the WAF's map (its host and rate limit) would be deleted and recreated.
    replaced = diff(baseline, run(config), flags=frozenset()).replaced
    assert replaced == {("kubernetes:core/v1:ConfigMap", "edge-waf-config"): [("data", "default.conf.template")]}


def test_the_dev_stack_updates_secrets_and_configmaps_in_place():
    import inspect

    import pulumi_kubernetes

    # The pinned SDK's provider takes both flags (pulumi-kubernetes 4.34.2 ProviderArgs).
    parameters = inspect.signature(pulumi_kubernetes.ProviderArgs).parameters
    assert {"enable_secret_mutable", "enable_config_map_mutable"} <= set(parameters)
    assert stack_provider_flags("dev") == {"enableSecretMutable", "enableConfigMapMutable"}


# Why a volume cannot simply be grown by `pulumi up` (docs/changing-a-running-platform.md, growing a
# volume): the archive's and broker's size is in the StatefulSet's volumeClaimTemplates, so the
# provider replaces the StatefulSet (protected stack: refused; else a delete that retainOnDelete
# turns into forgetting it, then a create of a name that still exists); Prometheus' is an in-place
# update of the CR, and the operator's recreation happens behind Pulumi's back (components/day2.py
# PROMETHEUS).
RESIZES = [
    (
        "archive",
        {},
        lambda bp: resource(bp, "tenant-files")["config"].update(tamanho_gb=600),
        {("kubernetes:apps/v1:StatefulSet", "tenant-files-statefulset"): [("spec", "volumeClaimTemplates")]},
        {},
    ),
    (
        "broker",
        {"beacon": {"storageGb": 20}},
        None,
        {("kubernetes:apps/v1:StatefulSet", "lifecycle-statefulset"): [("spec", "volumeClaimTemplates")]},
        # JetStream's max_file_store follows the volume (components/beacon.py).
        {("kubernetes:core/v1:Secret", "lifecycle-config"): [("stringData", "nats.conf")]},
    ),
    (
        "prometheus",
        {"insight": {"storageGb": 100}},
        None,
        {},
        {
            ("kubernetes:monitoring.coreos.com/v1:Prometheus", "tenant-obs-prometheus"): [
                ("spec", "retentionSize"),
                ("spec", "storage", "volumeClaimTemplate", "spec", "resources", "requests", "storage"),
            ]
        },
    ),
]


@pytest.mark.parametrize("config,edit,replaced,updated", [r[1:] for r in RESIZES], ids=[r[0] for r in RESIZES])
def test_what_a_volume_resize_does_to_the_registrations(baseline, tmp_path, config, edit, replaced, updated):
    d = diff(baseline, run(dev_config() | config, edit, tmp_path))
    assert (d.replaced, d.updated, d.created, d.deleted) == (replaced, updated, [], []), d.summary()
