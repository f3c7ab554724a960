import json

import pytest
from conftest import resource, seed
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from components.blueprint import TIPOS, Blueprint, load_blueprint, parse_blueprint
from components.problems import InvalidInput


def problems(raw) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        parse_blueprint(raw)
    return [str(p) for p in info.value.problems]


def test_seed_is_valid_and_typed():
    bp = parse_blueprint(seed())
    assert isinstance(bp, Blueprint)
    assert bp.multi_zone
    assert [r.tipo for r in bp.recursos] == [
        "fabric",
        "compute",
        "compute",
        "datastore",
        "archive",
        "beacon",
        "sentinel",
        "gateway",
        "autoscale",
        "insight",
    ]
    assert bp.by_name("admin-ui").config.max_replicas == 2
    assert bp.one("gateway").config.base_domain == "app.acme.io"
    assert bp.api_compute.nome == "tenant-api"


def test_replicas_min_above_max_names_key_and_bound():
    raw = seed()
    resource(raw, "tenant-api")["config"]["replicas_min"] = 25
    assert "recursos[1].config.replicas_min: must be <= replicas_max (20) (got 25)" in problems(raw)


@pytest.mark.parametrize(
    "nome,key,value,expected",
    [
        ("tenant-api", "subtipo", "mobile", "recursos[1].config.subtipo: must be 'api' or 'web' (got 'mobile')"),
        ("platform-db", "engine", "mysql", "recursos[3].config.engine: must be 'postgres' (got 'mysql')"),
        ("edge-waf", "modo", "block", "recursos[6].config.modo: must be 'bloquear' or 'detectar' (got 'block')"),
        (
            "api-scale",
            "metrica",
            "latency",
            "recursos[8].config.metrica: must be 'requests', 'cpu' or 'memory' (got 'latency')",
        ),
        ("tenant-api", "replicas_min", 0, "recursos[1].config.replicas_min: must be >= 1 (got 0)"),
        ("platform-db", "tamanho_gb", 0, "recursos[3].config.tamanho_gb: must be > 0 (got 0)"),
        ("tenant-files", "publico", "no", "recursos[4].config.publico: must be true or false (got 'no')"),
        ("tenant-api", "replicas_max", "20", "recursos[1].config.replicas_max: must be an integer (got '20')"),
        (
            "saas-net",
            "cidr",
            "8.8.8.0/24",
            (
                "recursos[0].config.cidr: '8.8.8.0/24' is not a private network; use a range inside 10.0.0.0/8, "
                "172.16.0.0/12 or 192.168.0.0/16"
            ),
        ),
        (
            "wildcard-dns",
            "dominio",
            "*.App..io",
            (
                "recursos[7].config.dominio: '*.App..io' is not a valid host name; expected a host like "
                "'app.acme.io' or "
                "a wildcard like '*.app.acme.io'"
            ),
        ),
        ("tenant-obs", "retencao_dias", 0, "recursos[9].config.retencao_dias: must be >= 1 (got 0)"),
    ],
)
def test_field_errors_name_key_value_and_accepted(nome, key, value, expected):
    raw = seed()
    resource(raw, nome)["config"][key] = value
    assert expected in problems(raw)


def test_cidr_syntax_error_says_expected_form():
    raw = seed()
    resource(raw, "saas-net")["config"]["cidr"] = "10.50.0.0/33"
    (msg,) = problems(raw)
    assert msg.startswith(
        "recursos[0].config.cidr: '10.50.0.0/33' is not an IPv4 network in CIDR form like '10.50.0.0/16'"
    )


def test_unknown_keys_are_errors_listing_accepted_keys():
    raw = seed()
    raw["extra"] = 1
    resource(raw, "platform-db")["config"]["replicas"] = 3
    found = problems(raw)
    assert "extra: unknown key; accepted: nome, recursos, resiliencia" in found
    assert "recursos[3].config.replicas: unknown key; accepted: engine, ha, tamanho_gb" in found


def test_unknown_tipo_and_missing_keys():
    raw = seed()
    raw["recursos"][4]["tipo"] = "bucket"
    del resource(raw, "lifecycle")["config"]["jetstream"]
    found = problems(raw)
    assert any(
        p.startswith("recursos[4].tipo: must be one of 'fabric', 'compute'") and p.endswith("(got 'bucket')")
        for p in found
    )
    assert "recursos[5].config.jetstream: required key is missing" in found


def test_every_problem_is_reported_at_once():
    raw = seed()
    raw["resiliencia"] = "global"
    resource(raw, "tenant-api")["config"]["subtipo"] = "x"
    resource(raw, "tenant-obs")["config"]["alertas"] = "yes"
    assert len(problems(raw)) == 3


def test_cross_checks():
    raw = seed()
    raw["recursos"][5]["nome"] = "admin-ui"
    resource(raw, "edge-waf")["config"]["alvo_recurso_id"] = "platform-db"
    resource(raw, "api-scale")["config"]["alvo_recurso_id"] = "nope"
    raw["recursos"].append(
        {"tipo": "fabric", "nome": "second-net", "config": {"cidr": "10.60.0.0/16", "publica": False}}
    )
    found = problems(raw)
    assert "recursos[5].nome: duplicate name 'admin-ui' (also recursos[2].nome); names must be unique" in found
    assert (
        "recursos[6].config.alvo_recurso_id: 'platform-db' is a datastore; must name a compute (tenant-api, admin-ui)"
        in found
    )
    assert (
        "recursos[8].config.alvo_recurso_id: no resource named 'nope'; must name a compute (tenant-api, admin-ui)"
        in found
    )
    assert "recursos: needs exactly one fabric (found 2)" in found


def test_limiar_range_depends_on_metric():
    raw = seed()
    resource(raw, "api-scale")["config"].update(metrica="cpu", limiar=150)
    assert problems(raw) == [
        "recursos[8].config.limiar: must be between 1 and 100% utilisation for metrica 'cpu' (got 150)"
    ]


def test_gateway_needs_one_api_compute():
    raw = seed()
    resource(raw, "tenant-api")["config"]["subtipo"] = "web"
    assert "recursos: a gateway routes tenants to exactly one compute with subtipo 'api' (found 0)" in problems(raw)


def test_autoscale_target_must_be_able_to_scale():
    raw = seed()
    resource(raw, "api-scale")["config"]["alvo_recurso_id"] = "admin-ui"
    assert problems(raw) == [
        (
            "recursos[8].config.alvo_recurso_id: target 'admin-ui' cannot scale: set its replicas_max above "
            "replicas_min "
            "(2)"
        )
    ]


def test_two_autoscalers_for_one_target_rejected():
    raw = seed()
    raw["recursos"].append(
        {
            "tipo": "autoscale",
            "nome": "cpu-scale",
            "config": {"alvo_recurso_id": "tenant-api", "metrica": "cpu", "limiar": 70},
        }
    )
    assert problems(raw) == [
        (
            "recursos[10].config.alvo_recurso_id: 'tenant-api' already has a autoscale (recursos[8]); at most one per "
            "compute"
        )
    ]


def test_json_syntax_error_has_line_and_column():
    text = json.dumps(seed(), indent=2).replace('"multi-zona",', '"multi-zona"')  # line 3 loses its comma
    with pytest.raises(InvalidInput) as info:
        load_blueprint(text)
    (problem,) = info.value.problems
    assert problem.path == "line 4 column 3"  # where the parser meets the next key
    assert problem.message.startswith("invalid JSON")


# Property: any JSON-shaped mutation of the seed either validates or raises InvalidInput.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.text(max_size=12)
    | st.sampled_from(
        ["api", "web", "postgres", "cpu", "requests", "*.a.io", "10.0.0.0/8", "tenant-api", *list(TIPOS)]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
config_keys = st.sampled_from(
    [
        "cidr",
        "publica",
        "subtipo",
        "replicas_min",
        "replicas_max",
        "engine",
        "ha",
        "tamanho_gb",
        "publico",
        "jetstream",
        "modo",
        "alvo_recurso_id",
        "dominio",
        "tls",
        "metrica",
        "limiar",
        "retencao_dias",
        "alertas",
        "bogus",
    ]
)


@hsettings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 11), st.sampled_from(["tipo", "nome", "config", "key", "drop"]), config_keys, json_values
        ),
        max_size=4,
    ),
    resiliencia=st.sampled_from(["multi-zona", "zona-unica", "x", 3]),
)
def test_random_blueprints_validate_or_raise_invalid_input(edits, resiliencia):
    raw = seed()
    raw["resiliencia"] = resiliencia
    for index, what, key, value in edits:
        if index >= len(raw["recursos"]):
            raw["recursos"].append(
                {"tipo": "compute", "nome": f"extra-{index}", "config": {"subtipo": "api", "replicas_min": 1}}
            )
            continue
        r = raw["recursos"][index]
        if what == "drop":
            raw["recursos"].pop(index)
        elif what == "key" and isinstance(r.get("config"), dict):
            r["config"][key] = value
        else:
            r[what] = value
    try:
        bp = parse_blueprint(raw)
    except InvalidInput as exc:
        assert exc.problems and all(p.message for p in exc.problems)
    else:
        assert isinstance(bp, Blueprint)
