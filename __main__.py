"""b2b-platform: deploy a Tesserra B2B SaaS blueprint onto Kubernetes."""

import pulumi

from components.day2 import facts
from components.outputs import stack_outputs
from components.platform import Platform, PlatformArgs
from components.program import read_inputs, relax_gc

relax_gc()
inputs = read_inputs()
platform = Platform("b2b-platform", PlatformArgs.of(inputs))

pulumi.export("namespace", platform.namespace)
pulumi.export("computes", {name: c.service_name for name, c in platform.computes.items()})
pulumi.export("autoscalers", {name: a.kind for name, a in platform.autoscalers.items()})
pulumi.export("sentinels", {name: s.rule_engine for name, s in platform.sentinels.items()})
# The redirect URIs to register for the OIDC client at the IdP.
pulumi.export("ssoRedirectUrls", [sso.redirect_url for sso in platform.ssos.values()])
if platform.gateway:
    pulumi.export("hosts", platform.gateway.hosts)
    pulumi.export("localCa", platform.gateway.ca_secret)
# What `python -m components check-change` compares the next change with (components/day2.py).
pulumi.export("deployed", facts(inputs.blueprint, inputs.settings))
for key, value in stack_outputs(inputs.blueprint, inputs.settings, pulumi.Config("kubernetes").get("context")).items():
    pulumi.export(key, value)
