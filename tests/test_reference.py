"""The configuration reference (docs/configuration.md) is generated from the models and cannot drift."""

from __future__ import annotations

import os
import re

from conftest import ROOT
from golden import CONFIG_REFERENCE, REFRESH

from components.blueprint import Blueprint, ComputeConfig
from components.reference import comments, page, rules, sections, type_name
from components.settings import InsightSettings, SentinelSettings, Settings, Tenant


def test_the_committed_page_is_the_generated_one():
    with open(CONFIG_REFERENCE, encoding="utf-8") as fh:
        committed = fh.read()
    assert committed == page(), f"docs/configuration.md differs from the models; run `{REFRESH}` and commit it"


def test_every_key_of_every_model_is_on_the_page():
    text = page()
    for path, model, _ in [*sections(Settings, ""), *sections(Blueprint, "")]:
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in text, (path, name)
    for tipo_config in ("cidr", "subtipo", "alvo_recurso_id", "dominio", "limiar", "retencao_dias", "jetstream"):
        assert f"| `{tipo_config}` |" in text


def test_rules_come_from_the_models():
    fields = SentinelSettings.model_fields
    assert rules(fields["paranoia"]) == ["≥ 1", "≤ 4"]
    # Items of a comma list are checked one by one, with the validator's own words.
    methods = rules(fields["allowed_methods"])
    assert methods[0].startswith("A list, or one comma-separated string") and "at least 1 item" in methods
    assert any(r.startswith("each: An HTTP method") for r in methods)
    assert rules(Tenant.model_fields["plan"])[0] == "one of `business`, `enterprise`"
    assert type_name(Settings.model_fields["tenants"].annotation) == "list of object"
    assert type_name(Settings.model_fields["oidc"].annotation) == "object"


def test_defaults_of_nested_objects_are_the_values_the_program_uses():
    text = page()
    business = text[text.index("### `sentinel.rateLimits.business`") :]
    assert "| `requestsPerSecond` | integer | `50` |" in business.split("###")[1]
    # A map's entries have no default object: their own field defaults apply.
    override = text[text.index("### `sentinel.tenantRateLimits.<name>`") :].split("###")[1]
    assert "| `requestsPerSecond` | integer | required |" in override


def test_descriptions_are_the_comments_above_the_fields():
    assert comments(Tenant)["login_version"].startswith("Enterprise: raise it to rotate")
    # Inherited from the model a field was first declared in (Sized), when the subclass has none.
    assert comments(InsightSettings)["cpu_request"].startswith("Kubernetes quantities")
    assert comments(ComputeConfig)["replicas_min"].startswith("Replica floor")


def test_the_page_is_reachable_from_the_readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        assert re.search(r"\]\(docs/configuration\.md\)", fh.read())
