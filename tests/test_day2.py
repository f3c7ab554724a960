"""Day-2 safety (docs/changing-a-running-platform.md): what a delete of each layer's data takes.

Pulumi `retain_on_delete` makes the engine drop a resource from the state without asking the
provider to delete it (pulumi/pulumi sdk/go/common/resource/resource_state.go `RetainOnDelete`,
honoured in pkg/resource/deploy/step_executor/step.go DeleteStep). It is on for every object
that holds a layer's data whatever the stack's `protect` says; only the layer's own `purge` turns
it off. The mocks record the options each registration really carried (components/render.py).
"""

import pytest
from conftest import ROOT, Rendered, dev_config, resource, variant

from components import kube
from components.day2 import facts, refusals
from components.problems import InvalidInput
from components.program import load_inputs
from components.render import run_program
from components.settings import Settings

# Every object whose deletion takes data with it, per purgeable layer (settings.PURGEABLE).
STATEFUL = {
    "datastore": ("platform-db-cluster", "platform-db-database", "platform-db-objectstore"),
    "archive": ("tenant-files-statefulset",),
    "beacon": ("lifecycle-statefulset", "lifecycle-stream"),
    "insight": ("tenant-obs-prometheus",),
}
EVERY = [name for names in STATEFUL.values() for name in names]
DEV_TENANTS = dev_config()["tenants"]


def render(overrides: dict) -> Rendered:
    return Rendered(run_program(dev_config() | overrides))


@pytest.fixture(scope="module", params=[False, True], ids=["unprotected", "protected"])
def protected_render(request):
    return request.param, render({"protect": request.param})


def test_stateful_data_is_retained_whatever_protect_says(protected_render):
    protect, rendered = protected_render
    for name in EVERY:
        registered = rendered.run.mocks.named(name)
        assert registered.retain_on_delete is True, name
        assert registered.protect is protect, name


@pytest.mark.parametrize("layer", sorted(STATEFUL))
def test_only_a_layers_purge_lets_its_data_go(layer):
    rendered = render({"protect": False, layer: {"purge": True}})
    for other, names in STATEFUL.items():
        for name in names:
            assert rendered.run.mocks.named(name).retain_on_delete is (other != layer), name


def test_a_purged_prometheus_deletes_its_claims():
    (prometheus,) = render({"insight": {"purge": True}}).kind("Prometheus")
    assert prometheus["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


@pytest.mark.parametrize("layer", sorted(STATEFUL))
def test_purge_on_a_protected_stack_is_refused(layer):
    config = dev_config() | {"protect": True, layer: {"purge": True}}
    with pytest.raises(InvalidInput) as info:
        load_inputs(config, root=ROOT)
    assert f"{layer}.purge: true needs protect: false" in str(info.value)


# Truthful `pulumi up`: the kinds whose readiness the platform depends on, each with the condition
# its operator sets (sources in components/kube.py AWAITED).
EXPECTED_WAITS = {
    "Cluster": "condition=Ready",
    "Certificate": "condition=Ready",
    "Stream": "condition=Ready",
    "Consumer": "condition=Ready",
    "Prometheus": "condition=Available",
    "ScaledObject": "condition=Ready",
}


def test_up_waits_for_every_custom_resource_the_platform_depends_on(seed_render):
    seen = set()
    for obj in seed_render.objects:
        annotations = obj["metadata"].get("annotations") or {}
        expected = EXPECTED_WAITS.get(obj["kind"])
        assert annotations.get(kube.WAIT_FOR) == expected, (obj["kind"], obj["metadata"]["name"])
        if expected:
            # The provider reads the timeout with strconv.Atoi (provider/pkg/metadata/overrides.go).
            assert int(annotations[kube.TIMEOUT_SECONDS]) >= 300
            seen.add(obj["kind"])
    assert seen == set(EXPECTED_WAITS)


def test_awaited_keeps_the_objects_own_annotations():
    props = {"metadata": {"name": "x", "annotations": {"b2b-platform.io/ha": "true"}}, "spec": {}}
    out = kube.awaited("kubernetes:postgresql.cnpg.io/v1:Cluster", props)
    assert out["metadata"]["annotations"] == {
        "b2b-platform.io/ha": "true",
        kube.WAIT_FOR: "condition=Ready",
        kube.TIMEOUT_SECONDS: "1800",
    }
    assert props["metadata"]["annotations"] == {"b2b-platform.io/ha": "true"}  # the caller's dict is untouched
    assert kube.awaited("kubernetes:postgresql.cnpg.io/v1:Pooler", props) is None
    assert kube.awaited("kubernetes:core/v1:Secret", props) is None


def test_the_fabric_namespace_outlives_a_rename_while_it_holds_data():
    namespace = "saas-net-namespace"
    assert render({}).run.mocks.named(namespace).retain_on_delete is True
    every_layer_purged = {"protect": False, **{layer: {"purge": True} for layer in STATEFUL}}
    assert render(every_layer_purged).run.mocks.named(namespace).retain_on_delete is False
    # One unpurged layer is enough to keep it.
    one_kept = {**every_layer_purged, "beacon": {"purge": False}}
    assert render(one_kept).run.mocks.named(namespace).retain_on_delete is True


# The refusal of destructive changes (components/day2.py): each routine change and the verdict
# of `check-change` against the seed as deployed with the dev stack. A refused change names the key.
def seed_facts(config: dict | None = None, edit=None, tmp_path=None) -> tuple[dict, Settings]:
    config = dev_config() | (config or {})
    if edit:
        config["blueprint"] = variant(tmp_path, edit)
    inputs = load_inputs(config, root=ROOT)
    return facts(inputs.blueprint, inputs.settings), inputs.settings


def rename(nome: str):
    def edit(bp):
        resource(bp, nome)["nome"] = f"{nome}-2"

    return edit


def resize(nome: str, size: int):
    def edit(bp):
        resource(bp, nome)["config"]["tamanho_gb"] = size

    return edit


def single_zone(bp):
    bp["resiliencia"] = "zona-unica"


def tls(on: bool):
    def edit(bp):
        resource(bp, "wildcard-dns")["config"]["tls"] = on

    return edit


def domain(base: str):
    def edit(bp):
        resource(bp, "wildcard-dns")["config"]["dominio"] = f"*.{base}"

    return edit


new_domain = domain("app.initech.io")


def switched(tenant: str, plan: str, previous: str | None = None) -> list[dict]:
    """DEV_TENANTS with one tenant on `plan`, in phase 1 of a switch from `previous` when given."""
    extra = {"previousPlan": previous} if previous else {}
    return [{**t, "plan": plan, **extra} if t["id"] == tenant else t for t in DEV_TENANTS]


EDGE = dev_config()["edge"]
RESTORE = {"serverName": "platform-db-x7k2m9qa", "targetTime": "2026-11-30T08:15:00Z"}
PURGING = {"protect": False, "datastore": {"purge": True, "recovery": RESTORE}}
NEW_POSTGRES = "ghcr.io/cloudnative-pg/postgresql:18.5-system-trixie"
VERDICTS = [
    # (id, config overrides, blueprint edit, refused keys)
    ("nothing", {}, None, []),
    ("add-tenant", {"tenants": [*DEV_TENANTS, {"id": "hooli", "plan": "business", "isolation": "schema"}]}, None, []),
    (
        "plan-flip",
        {"tenants": [{**t, "plan": "enterprise"} for t in DEV_TENANTS]},
        None,
        ["tenants[globex].plan", "tenants[initech].plan"],
    ),
    ("plan-flip-down", {"tenants": switched("acme", "business")}, None, ["tenants[acme].plan"]),
    ("plan-switch-phase-1", {"tenants": switched("globex", "enterprise", previous="business")}, None, []),
    ("domain-change", {}, new_domain, ["recursos[gateway].config.dominio"]),
    ("domain-change-serving-the-old", {"edge": {**EDGE, "previousDomains": ["app.acme.io"]}}, new_domain, []),
    ("tls-off", {}, tls(False), ["recursos[gateway].config.tls"]),
    ("rename-datastore", {}, rename("platform-db"), ["recursos[datastore].nome"]),
    ("rename-archive", {}, rename("tenant-files"), ["recursos[archive].nome"]),
    ("rename-fabric", {}, rename("saas-net"), ["recursos[fabric].nome"]),
    ("rename-purged-archive", {"archive": {"purge": True}}, rename("tenant-files"), []),
    ("grow-database", {}, resize("platform-db", 200), []),
    ("shrink-database", {}, resize("platform-db", 50), ["recursos[datastore].config.tamanho_gb"]),
    ("grow-archive", {}, resize("tenant-files", 600), ["recursos[archive].config.tamanho_gb"]),
    ("shrink-archive", {}, resize("tenant-files", 100), ["recursos[archive].config.tamanho_gb"]),
    ("storage-class", {"storageClass": "fast"}, None, ["storageClass"]),
    (
        "isolation-switch",
        {"tenants": [{**DEV_TENANTS[1], "isolation": "schema"}, *DEV_TENANTS[::2]]},
        None,
        ["tenants[globex].isolation"],
    ),
    ("grow-broker-disk", {"beacon": {"storageGb": 20}}, None, ["beacon.storageGb"]),
    ("shrink-broker-disk", {"beacon": {"storageGb": 8}}, None, ["beacon.storageGb"]),
    ("broker-topology-and-disk", {"beacon": {"storageGb": 20}}, single_zone, ["resiliencia", "beacon.storageGb"]),
    ("broker-topology", {}, single_zone, ["resiliencia"]),
    ("postgres-image", {"images": {"postgres": NEW_POSTGRES}}, None, []),
    ("postgres-parameters", {"datastore": {"parameters": {"work_mem": "8MB"}}}, None, []),
    (
        "postgres-image-and-parameters",
        {"images": {"postgres": NEW_POSTGRES}, "datastore": {"parameters": {"work_mem": "8MB"}}},
        None,
        ["images.postgres"],
    ),
    ("grow-prometheus-disk", {"insight": {"storageGb": 100}}, None, ["insight.storageGb"]),
    ("shrink-prometheus-disk", {"insight": {"storageGb": 20}}, None, ["insight.storageGb"]),
    ("purged-prometheus-disk", {"insight": {"storageGb": 100, "purge": True}}, None, []),
    # A recovery acts only when the Cluster is created: never on the deployed one, purge or not.
    ("add-recovery", {"datastore": {"recovery": RESTORE}}, None, ["datastore.recovery"]),
    ("add-recovery-while-purging", PURGING, None, ["datastore.recovery"]),
    ("add-recovery-to-a-new-purged-datastore", PURGING, rename("platform-db"), []),
]


@pytest.mark.parametrize("overrides,edit,refused", [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS])
def test_check_change_verdicts(tmp_path, overrides, edit, refused):
    deployed, _ = seed_facts()
    now, settings = seed_facts(overrides, edit, tmp_path)
    assert [p.path for p in refusals(deployed, now, settings)] == refused


@pytest.mark.parametrize(
    "now,refused",
    [
        ({"recovery": RESTORE}, []),  # kept as it was: nothing changes
        ({}, []),  # removed after the restore: the Cluster is not re-created (docs/operations.md)
        ({"recovery": {**RESTORE, "targetTime": "2026-11-30T09:00:00Z"}}, ["datastore.recovery"]),
        ({"recovery": {"serverName": "platform-db-00000000"}}, ["datastore.recovery"]),
    ],
    ids=["kept", "removed", "other-time", "other-directory"],
)
def test_a_restored_datastore_may_drop_its_recovery_but_not_change_it(now, refused):
    deployed, _ = seed_facts({"datastore": {"recovery": RESTORE}})
    assert deployed["datastore"]["recovery"] == RESTORE
    current, settings = seed_facts({"datastore": now})
    assert [p.path for p in refusals(deployed, current, settings)] == refused


def test_a_refused_recovery_names_the_procedure():
    deployed, _ = seed_facts()
    assert "recovery" not in deployed["datastore"]  # the dev stack's facts are unchanged
    now, settings = seed_facts({"datastore": {"recovery": {"serverName": "platform-db-x7k2m9qa"}}})
    (problem,) = refusals(deployed, now, settings)
    assert str(problem) == (
        "datastore.recovery: unset → {'serverName': 'platform-db-x7k2m9qa', 'targetTime': None}: datastore "
        "'platform-db' is deployed, and CloudNativePG reads a recovery only when it creates the Cluster, so the "
        "running database would stay as it is; restore into a new stack, or purge the datastore first (purge: true, "
        "remove it from the blueprint, `pulumi up`) and add it back with recovery "
        "(docs/changing-a-running-platform.md; docs/operations.md, Backups and restore)"
    )


def test_a_refusal_names_the_values_and_the_safe_procedure(tmp_path):
    deployed, _ = seed_facts()
    now, settings = seed_facts({}, resize("platform-db", 50), tmp_path)
    (problem,) = refusals(deployed, now, settings)
    assert str(problem) == (
        "recursos[datastore].config.tamanho_gb: 100 → 50: a PVC cannot shrink; growing is done in place by CNPG "
        "when the storage class allows expansion (docs/changing-a-running-platform.md)"
    )


# A volume held in a StatefulSet's volumeClaimTemplates: growing it is refused with the manual
# procedure that keeps the data (docs/changing-a-running-platform.md, growing a volume); shrinking has none.
GROWTHS = [
    (
        "archive",
        {},
        resize("tenant-files", 600),
        (
            "recursos[archive].config.tamanho_gb: 500 → 600: the size lives in the StatefulSet's volumeClaimTemplates, "
            "which cannot change; grow the claims data-tenant-files-*, orphan the StatefulSet, then `pulumi up`"
        ),
    ),
    (
        "broker",
        {"beacon": {"storageGb": 20}},
        None,
        (
            "beacon.storageGb: 10 → 20: the size lives in the StatefulSet's volumeClaimTemplates, which cannot change; "
            "grow the claims data-lifecycle-*, orphan the StatefulSet, then `pulumi up`"
        ),
    ),
    (
        "prometheus",
        {"insight": {"storageGb": 100}},
        None,
        (
            "insight.storageGb: 50 → 100: prometheus-operator would delete and recreate every replica on the "
            "old-size claims; follow its resize procedure (pause Prometheus tenant-obs, grow its claims, orphan the "
            "StatefulSet, resume), then `pulumi up`"
        ),
    ),
]


@pytest.mark.parametrize("overrides,edit,message", [g[1:] for g in GROWTHS], ids=[g[0] for g in GROWTHS])
def test_a_refused_growth_names_the_procedure(tmp_path, overrides, edit, message):
    deployed, _ = seed_facts()
    now, settings = seed_facts(overrides, edit, tmp_path)
    (problem,) = refusals(deployed, now, settings)
    assert str(problem) == f'{message} (docs/changing-a-running-platform.md, "Growing a volume")'


def test_a_refused_shrink_says_it_has_no_procedure():
    deployed, _ = seed_facts()
    now, settings = seed_facts({"insight": {"storageGb": 20}})
    (problem,) = refusals(deployed, now, settings)
    assert (
        str(problem) == "insight.storageGb: 50 → 20: a PVC cannot shrink; keep 50 (docs/changing-a-running-platform.md)"
    )


def test_the_program_exports_what_it_deployed(seed_render):
    deployed, _ = seed_facts()
    assert seed_render.run.exports["deployed"] == deployed
    assert deployed["datastore"]["nome"] == "platform-db" and deployed["datastore"]["tamanhoGb"] == 100
    assert (
        deployed["datastore"]["parameters"]
        == seed_render.get("Cluster", "platform-db")["spec"]["postgresql"]["parameters"]
    )
    assert deployed["tenants"] == {"acme": "schema", "globex": "rls", "initech": "schema"}


# A change already under way: deployed in its first phase, and what may follow it.
IN_PROGRESS = [
    # (id, deployed config overrides, blueprint edit deployed, current overrides, current edit, refused keys)
    (
        "plan-switch-phase-2",
        {"tenants": switched("globex", "enterprise", previous="business")},
        None,
        {"tenants": switched("globex", "enterprise")},
        None,
        [],
    ),
    (
        "plan-switch-backed-out-in-two-phases",
        {"tenants": switched("globex", "enterprise", previous="business")},
        None,
        {"tenants": switched("globex", "business", previous="enterprise")},
        None,
        [],
    ),
    (
        "plan-switch-backed-out-at-once",
        {"tenants": switched("globex", "enterprise", previous="business")},
        None,
        {"tenants": switched("globex", "business")},
        None,
        ["tenants[globex].plan"],
    ),
    (
        "enterprise-to-business-phase-2",
        {"tenants": switched("acme", "business", previous="enterprise")},
        None,
        {"tenants": switched("acme", "business")},
        None,
        [],
    ),
    (
        "old-domain-dropped-after-the-migration",
        {"edge": {**EDGE, "previousDomains": ["app.acme.io"]}},
        new_domain,
        {},
        new_domain,
        [],
    ),
    (
        "domain-changed-again-dropping-the-last",
        {"edge": {**EDGE, "previousDomains": ["app.acme.io"]}},
        new_domain,
        {"edge": {**EDGE, "previousDomains": ["app.acme.io"]}},
        domain("app.hooli.io"),
        ["recursos[gateway].config.dominio"],
    ),
]


@pytest.mark.parametrize(
    "was,was_edit,overrides,edit,refused", [v[1:] for v in IN_PROGRESS], ids=[v[0] for v in IN_PROGRESS]
)
def test_check_change_verdicts_after_a_first_phase(tmp_path, was, was_edit, overrides, edit, refused):
    deployed, _ = seed_facts(was, was_edit, tmp_path)
    now, settings = seed_facts(overrides, edit, tmp_path)
    assert [p.path for p in refusals(deployed, now, settings)] == refused


def test_a_plan_flip_refusal_names_the_two_phases(tmp_path):
    deployed, _ = seed_facts()
    now, settings = seed_facts({"tenants": switched("globex", "enterprise")})
    (problem,) = refusals(deployed, now, settings)
    assert str(problem) == (
        "tenants[globex].plan: 'business' → 'enterprise' in one step switches the tenant's database login before the "
        "computes' logins file follows (up to about a minute of refused connections); switch in two `pulumi up`s: "
        "first plan: enterprise with previousPlan: business, then, once the pods' logins file shows the change, "
        "remove previousPlan (docs/layers/datastore.md, switching plans)"
    )


def test_a_domain_change_refusal_names_the_migration(tmp_path):
    deployed, _ = seed_facts()
    now, settings = seed_facts({}, new_domain, tmp_path)
    (problem,) = refusals(deployed, now, settings)
    assert str(problem) == (
        "recursos[gateway].config.dominio: 'app.acme.io' → 'app.initech.io': every tenant's <id>.app.acme.io would "
        "stop being routed, certified and resolved at once; keep serving it: set edge.previousDomains: [app.acme.io] "
        "in the same change, and remove it once clients have moved (docs/layers/gateway.md, changing the domain)"
    )


def test_facts_from_before_plans_domains_and_tls_were_recorded_refuse_neither(tmp_path):
    deployed, _ = seed_facts()
    recent = ("plans", "planSwitches", "domain", "previousDomains", "tls")
    older = {k: v for k, v in deployed.items() if k not in recent}
    now, settings = seed_facts({"tenants": switched("globex", "enterprise")}, new_domain, tmp_path)
    off, _ = seed_facts({}, tls(False), tmp_path)
    assert refusals(older, now, settings) == [] and refusals(older, off, settings) == []


def test_turning_tls_on_is_allowed(tmp_path):
    off, _ = seed_facts({}, tls(False), tmp_path)
    on, settings = seed_facts()
    assert off["tls"] is False and on["tls"] is True
    assert refusals(off, on, settings) == []
