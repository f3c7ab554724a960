"""The b2b-platform policy pack (Pulumi CrossGuard): `pulumi preview --policy-pack policy`.

Constructing `PolicyPack` starts the analyzer's gRPC server and blocks, so this module is
only ever run by the Pulumi CLI; the logic lives in validators.py, which tests import.
Every policy is mandatory: a violation fails `preview` and `up`.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# validators.py beside this file, and the project root for components/ (shared with the program).
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import validators  # noqa: E402
from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)


def _is_manifest(resource_type: str, props) -> bool:
    # Kubernetes objects carry `kind`; Helm releases and providers do not.
    return resource_type.startswith("kubernetes:") and "kind" in props


def _schema(check: validators.Check):
    return PolicyConfigSchema(properties=check.config) if check.config else None


def resource_policy(check: validators.Check) -> ResourceValidationPolicy:
    def validate(args, report_violation):
        if _is_manifest(args.resource_type, args.props):
            for message in check.validate(args.props, args.get_config(), args.opts.protect):
                report_violation(message)

    return ResourceValidationPolicy(
        name=check.name,
        description=check.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(check),
    )


def stack_policy(check: validators.Check) -> StackValidationPolicy:
    def validate(args, report_violation):
        resources = [r for r in args.resources if _is_manifest(r.resource_type, r.props)]
        urns = {id(r.props): r.urn for r in resources}
        for obj, message in check.validate([r.props for r in resources], args.get_config()):
            report_violation(message, urns.get(id(obj)))

    return StackValidationPolicy(
        name=check.name,
        description=check.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(check),
    )


PolicyPack(
    name="b2b-platform-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[stack_policy(c) if c.stack else resource_policy(c) for c in validators.CHECKS],
)
