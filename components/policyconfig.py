"""The policy pack's configuration for one stack, derived from that stack's own settings.

`pulumi preview --policy-pack policy --policy-pack-config <file>` takes a JSON file keyed
by policy name; writing it from the stack config (`python -m components policy-config`)
keeps the pack's tenant list and edge namespace from drifting from what the program
deploys. Keys and properties are those declared in policy/validators.py (CHECKS).
"""

from __future__ import annotations

from .addons import releases
from .settings import PURGEABLE, Settings


def policy_config(settings: Settings) -> dict:
    # The add-ons' namespaces hold third-party operators whose own charts decide their traffic.
    addon_namespaces = sorted({r.namespace for r in releases(settings)}) if settings.addons else []
    return {
        "namespace-default-deny": {"exemptNamespaces": addon_namespaces},
        "no-exposed-services": {"edgeNamespace": settings.edge.controller_namespace},
        "stateful-data-retained": {
            "requireProtect": settings.protect,
            "purgedLayers": [layer for layer in PURGEABLE if getattr(settings, layer).purge],
        },
        "known-tenant-ids": {"tenants": sorted(t.id for t in settings.tenants)},
    }
