"""`python -m components validate|render|policy-config|kind-config|check-change|config-reference`:
check a blueprint, render it offline, write the policy pack's or the kind cluster's config, refuse
a change that would lose data since the previous deployment, or write the configuration reference.

Exit codes: 0 ok, 2 invalid input (every problem printed as `path: message`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

import yaml

from .problems import InvalidInput, Problem
from .settings import PROJECT, Inputs, load_inputs

SECRET_PLACEHOLDER = "<secret>"
ARCHITECTURE = "architecture.md"


def read_stack_file(path: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A Pulumi.<stack>.yaml's `b2b-platform:*` keys; `secure:` values become placeholders."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise InvalidInput([Problem("--stack-config", f"cannot read {path!r}: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem("--stack-config", f"{path!r} is not valid YAML: {exc}")]) from None
    config = doc.get("config") or {} if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise InvalidInput([Problem("--stack-config", f"{path!r} has no 'config:' mapping")])
    values, secrets = {}, []
    prefix = f"{PROJECT}:"
    for key, value in config.items():
        if not str(key).startswith(prefix):
            continue
        short = key[len(prefix) :]
        values[short] = _placeholders(value)
        if values[short] != value:
            secrets.append(short)
    return values, tuple(secrets)


def _placeholders(value: Any) -> Any:
    """`secure:` values, also nested ones (`pulumi config set --secret --path`), as placeholders."""
    if isinstance(value, dict):
        return SECRET_PLACEHOLDER if set(value) == {"secure"} else {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def _inputs(ns: argparse.Namespace) -> tuple[Inputs, dict, tuple]:
    config, secrets = read_stack_file(ns.stack_config) if ns.stack_config else ({}, ())
    config["blueprint"] = os.path.abspath(ns.blueprint)
    return load_inputs(config, secret_keys=secrets), config, secrets


def cmd_validate(ns: argparse.Namespace) -> int:
    inputs, _, _ = _inputs(ns)
    bp = inputs.blueprint
    kinds = ", ".join(f"{n} {t}" for t, n in sorted({r.tipo: len(bp.of(r.tipo)) for r in bp.recursos}.items()))
    print(
        f"{ns.blueprint}: valid blueprint {bp.nome!r} ({bp.resiliencia}; {len(bp.recursos)} resources: {kinds}; "
        f"{len(inputs.settings.tenants)} tenant(s))"
    )
    return 0


def cmd_render(ns: argparse.Namespace) -> int:
    from .diagram import architecture_markdown
    from .flows import build
    from .render import helm_releases, manifests, run_program, write

    inputs, config, secrets = _inputs(ns)
    run = run_program(config, secret_keys=secrets)
    objects = manifests(run.mocks.resources)
    if os.path.isdir(ns.out):
        shutil.rmtree(ns.out)
    written = write(ns.out, objects, helm_releases(run.mocks.resources))
    bp = inputs.blueprint
    with open(os.path.join(ns.out, ARCHITECTURE), "w", encoding="utf-8") as fh:
        fh.write(
            architecture_markdown(
                build(objects, inputs.settings, bp),
                objects,
                f"{bp.nome} ({bp.resiliencia})",
                [(r.nome, r.tipo) for r in bp.recursos],
            )
        )
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{ns.out}: {len(objects)} Kubernetes objects, {len(written) - len(objects)} Helm releases")
    return 0


def cmd_policy_config(ns: argparse.Namespace) -> int:
    from .policyconfig import policy_config

    inputs, _, _ = _inputs(ns)
    text = json.dumps(policy_config(inputs.settings), indent=2, sort_keys=True) + "\n"
    if ns.out:
        os.makedirs(os.path.dirname(os.path.abspath(ns.out)), exist_ok=True)
        with open(ns.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_kind_config(ns: argparse.Namespace) -> int:
    from .kindconfig import dump, kind_config

    inputs, _, _ = _inputs(ns)
    try:
        with open(ns.base, encoding="utf-8") as fh:
            base = yaml.safe_load(fh)
    except OSError as exc:
        raise InvalidInput([Problem("--base", f"cannot read {ns.base!r}: {exc.strerror}")]) from None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = kind_config(base, inputs.settings.audit.kubernetes, root)
    os.makedirs(os.path.dirname(os.path.abspath(ns.out)), exist_ok=True)
    with open(ns.out, "w", encoding="utf-8") as fh:
        fh.write(dump(config, ns.base))
    state = "on" if inputs.settings.audit.kubernetes else "off (audit.kubernetes: false)"
    print(f"{ns.out}: kind config, API-server audit log {state}")
    return 0


def cmd_check_change(ns: argparse.Namespace) -> int:
    """Refuse (exit 2) the changes since the previous `up` that would lose data (components/day2.py)."""
    from .day2 import facts, refusals

    inputs, _, _ = _inputs(ns)
    try:
        with open(ns.previous, encoding="utf-8") as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        text = ""
    if not text:
        print(f"{ns.previous}: no previous deployment recorded; nothing to compare")
        return 0
    try:
        previous = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem("--previous", f"{ns.previous!r} is not JSON: {exc}")]) from None
    problems = refusals(previous, facts(inputs.blueprint, inputs.settings), inputs.settings)
    if problems:
        raise InvalidInput(problems)
    print(f"{ns.blueprint}: no change that loses data since the previous deployment")
    return 0


def cmd_config_reference(ns: argparse.Namespace) -> int:
    from .reference import page

    text = page()
    if ns.out:
        with open(ns.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"{ns.out}: the configuration reference, from the models")
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {
    "check-change": cmd_check_change,
    "validate": cmd_validate,
    "render": cmd_render,
    "policy-config": cmd_policy_config,
    "kind-config": cmd_kind_config,
    "config-reference": cmd_config_reference,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("validate", "check a blueprint (and stack config)"),
        ("render", "write every Kubernetes object as YAML, and architecture.md, offline"),
        ("policy-config", "write the policy pack's --policy-pack-config JSON for a stack"),
        ("kind-config", "write the kind cluster config for a stack (API-server audit log per audit.kubernetes)"),
        ("check-change", "refuse changes since the previous deployment that would lose data"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("blueprint", help="blueprint JSON file")
        p.add_argument("--stack-config", help="Pulumi.<stack>.yaml whose b2b-platform:* keys to use")
        if name == "render":
            p.add_argument("--out", required=True, help="output directory (replaced)")
        if name == "policy-config":
            p.add_argument("--out", help="file to write (default: stdout)")
        if name == "check-change":
            p.add_argument(
                "--previous", required=True, help="the stack's previous `deployed` output (pulumi stack output --json)"
            )
        if name == "kind-config":
            p.add_argument("--base", default="deploy/kind-config.yaml", help="kind config to start from")
            p.add_argument("--out", required=True, help="file to write")
    p = sub.add_parser("config-reference", help="write the configuration reference (docs/configuration.md)")
    p.add_argument("--out", help="file to write (default: stdout)")
    ns = parser.parse_args(argv)
    try:
        return COMMANDS[ns.command](ns)
    except InvalidInput as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing rendered or deployed", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
