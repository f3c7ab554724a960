"""The `audit` settings section, the WAF's audit log switch and pgaudit on the datastore (mocks)."""

import pytest
from test_sentinel import args_for

from components.problems import InvalidInput
from components.sentinel import WRITABLE, audit_env, waf_env
from components.settings import PGAUDIT_CLASSES, parse_settings


def problems(config: dict) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        parse_settings(config)
    return [str(p) for p in info.value.problems]


def env(config: dict | None = None) -> dict:
    return {e["name"]: e["value"] for e in waf_env(args_for(config))}


def test_every_source_is_on_by_default():
    audit = parse_settings({}).audit
    assert (audit.database, audit.waf, audit.kubernetes) == (True, True, True)
    assert audit.database_classes == ("ddl", "role", "write")
    assert audit.pgaudit_log == "ddl,role,write"
    assert audit.waf_log_parts == "AHZ"


def test_switches_and_classes_from_pulumi_strings():
    # `pulumi config set --path 'b2b-platform:audit.waf' false` arrives as a JSON string with string leaves.
    audit = parse_settings({"audit": '{"waf": "false", "kubernetes": "false", "databaseClasses": "all, -misc"}'}).audit
    assert (audit.database, audit.waf, audit.kubernetes) == (True, False, False)
    assert audit.pgaudit_log == "all,-misc"
    assert (
        parse_settings({"audit": {"databaseClasses": ["read", "write", "misc_set"]}}).audit.pgaudit_log
        == "read,write,misc_set"
    )


def test_unknown_pgaudit_class_names_the_accepted_set():
    (found,) = problems({"audit": {"databaseClasses": ["ddl", "writes"]}})
    assert found == (
        "audit.databaseClasses: 'writes' is not a pgaudit class; accepted: read, write, function, role, ddl, misc, "
        "misc_set, all "
        "(a leading '-' subtracts a class, e.g. 'all, -misc')"
    )
    assert all(c in found for c in PGAUDIT_CLASSES)


def test_pgaudit_classes_not_empty_nor_repeated():
    assert problems({"audit": {"databaseClasses": []}}) == [
        "audit.databaseClasses: must have at least 1 item(s) (got [])"
    ]
    assert problems({"audit": {"databaseClasses": "ddl, role, ddl"}}) == [
        "audit.databaseClasses: 'ddl' listed more than once"
    ]


@pytest.mark.parametrize("parts", ["ABX", "BHZ", "AH", "AAHZ", "ahz"])
def test_waf_log_parts_are_modsecurity_parts_with_a_and_z(parts):
    (found,) = problems({"audit": {"wafLogParts": parts}})
    assert found.startswith(
        f"audit.wafLogParts: {parts!r} is not a ModSecurity audit log parts string; accepted letters: A B C D E F G "
        "H I J K Z"
    )


def test_unknown_audit_keys_are_listed():
    (found,) = problems({"audit": {"pgaudit": True}})
    assert found == "audit.pgaudit: unknown key; accepted: database, databaseClasses, kubernetes, waf, wafLogParts"


def test_waf_audit_on_writes_relevant_json_records_to_stdout():
    on = env()
    assert {k: v for k, v in on.items() if k.startswith("MODSEC_AUDIT")} == {
        "MODSEC_AUDIT_ENGINE": "RelevantOnly",
        "MODSEC_AUDIT_LOG_RELEVANT_STATUS": "^(?:5|4(?!04))",
        "MODSEC_AUDIT_LOG": "/dev/stdout",
        "MODSEC_AUDIT_LOG_FORMAT": "JSON",
        "MODSEC_AUDIT_LOG_TYPE": "Serial",
        "MODSEC_AUDIT_LOG_PARTS": "AHZ",
    }
    assert env({"audit": {"wafLogParts": "ABHZ"}})["MODSEC_AUDIT_LOG_PARTS"] == "ABHZ"


def test_waf_audit_off_turns_the_engine_off():
    # The image's own default is RelevantOnly with bodies and headers, so "off" must be explicit.
    assert audit_env(args_for({"audit": {"waf": False}})) == [{"name": "MODSEC_AUDIT_ENGINE", "value": "Off"}]
    assert env({"audit": {"waf": False}})["MODSEC_RULE_ENGINE"] == "On"  # blocking is unaffected


def test_audit_log_needs_nothing_writable_on_the_read_only_root():
    # Serial to stdout writes no file; Concurrent would write under /var/log on the root filesystem.
    mounts = [path for _, path, _, _ in WRITABLE]
    for name, value in env().items():
        if name.startswith("MODSEC_") and value.startswith("/"):
            assert value == "/dev/stdout" or any(value.startswith(m + "/") for m in mounts), name
    assert "MODSEC_AUDIT_STORAGE_DIR" not in env()


def test_rendered_waf_follows_the_switch(seed_render, render):
    def audit_vars(rendered):
        container = rendered.get("Deployment", "edge-waf")["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("MODSEC_AUDIT")}

    assert audit_vars(seed_render)["MODSEC_AUDIT_ENGINE"] == "RelevantOnly"
    assert audit_vars(render({"audit": {"waf": False}})) == {"MODSEC_AUDIT_ENGINE": "Off"}


def pg_parameters(rendered) -> dict:
    return rendered.get("Cluster", "platform-db")["spec"]["postgresql"]["parameters"]


def test_pgaudit_on_by_default_with_its_companions(seed_render):
    assert {k: v for k, v in pg_parameters(seed_render).items() if k.startswith("pgaudit.")} == {
        "pgaudit.log": "ddl,role,write",
        "pgaudit.log_catalog": "off",
        "pgaudit.log_relation": "on",
        "pgaudit.log_parameter": "off",
    }
    # CloudNativePG creates and drops the extension itself (managed extension); the Database
    # must not claim it as well, nor may anything set shared_preload_libraries by hand.
    assert "extensions" not in seed_render.get("Database", "platform-db-app")["spec"]
    assert "shared_preload_libraries" not in seed_render.get("Cluster", "platform-db")["spec"]["postgresql"]


def test_pgaudit_off_leaves_no_pgaudit_parameter(render):
    # No pgaudit.* key at all is what makes CloudNativePG unload the library and drop the extension.
    params = pg_parameters(render({"audit": {"database": False, "databaseClasses": "all"}}))
    assert not [k for k in params if k.startswith("pgaudit")]


def test_pgaudit_classes_and_datastore_parameters_merge(render):
    params = pg_parameters(
        render({"audit": {"databaseClasses": "all, -misc"}, "datastore": {"parameters": {"max_connections": "300"}}})
    )
    assert params["pgaudit.log"] == "all,-misc" and params["max_connections"] == "300"


def test_pgaudit_cannot_be_set_behind_the_switch():
    (found,) = problems(
        {"datastore": {"parameters": {"pgaudit.log": "all", "pgaudit.log_parameter": "on", "work_mem": "8MB"}}}
    )
    assert found == (
        "datastore.parameters: 'pgaudit.log', 'pgaudit.log_parameter': pgaudit is set by the `audit` section "
        "(audit.database, audit.databaseClasses); remove it here"
    )
