"""Run the real program in-process under Pulumi mocks and turn what it registers into manifests.

No cluster and no Pulumi CLI: `RecordingMocks` records every resource registration;
`manifests()` turns the Kubernetes ones into exactly what the API server would receive
(numbers back to ints, secret values redacted) and `write()` lays them out one YAML file
per object, deterministically.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_SIG = "4dabf18193072939515e22adb298388d"
REDACTED = "<redacted>"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict
    custom: bool
    # Resource options the policy pack reads (`protect`); MockResourceArgs does not carry them.
    protect: bool = False
    retain_on_delete: bool = False


def stand_in(name: str, length: int) -> str:
    """Deterministic stand-in for a generated value, so renders stay byte-identical."""
    return hashlib.sha256(name.encode()).hexdigest()[:length]


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs back as state and records every registration in order."""

    resources: list[Registered] = field(default_factory=list)
    # Resource name → names of the resources it waits for (explicit `depends_on` and input references).
    dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (type, name) → (protect, retainOnDelete), filled by RecordingMonitor just before new_resource.
    options: dict = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        protect, retain = self.options.get((args.typ, args.name), (False, False))
        self.resources.append(Registered(args.typ, args.name, args.inputs, bool(args.custom), protect, retain))
        state = dict(args.inputs)
        if args.typ.startswith("random:"):
            length = int(args.inputs.get("length", 32))
            state["result"] = stand_in(args.name, length)
            if args.typ == "random:index/randomBytes:RandomBytes":
                digest = hashlib.sha256(args.name.encode()).digest()[:length]
                state["base64"], state["hex"] = base64.b64encode(digest).decode(), digest.hex()
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def depends_on(self, name: str) -> tuple[str, ...]:
        return self.dependencies.get(name, ())

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
        return matches[0]


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also noting what MockResourceArgs leaves out: each registration's
    dependencies (explicit `depends_on` and input references) and protect/retainOnDelete options."""

    mocks: RecordingMocks

    def RegisterResource(self, request):
        self.mocks.dependencies[request.name] = tuple(urn.rsplit("::", 1)[-1] for urn in request.dependencies)
        self.mocks.options[(request.type, request.name)] = (bool(request.protect), bool(request.retainOnDelete))
        return super().RegisterResource(request)


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@dataclass
class Run:
    mocks: RecordingMocks
    warnings: list[str]
    exports: dict


def run_program(
    config: Mapping[str, Any],
    program: Callable[[], Any] | None = None,
    secret_keys: tuple[str, ...] = (),
    stack: str = "dev",
    mocks: RecordingMocks | None = None,
    project: str | None = None,
) -> Run:
    """Run `program` (default: the project's __main__.py) with fresh Pulumi state.

    `config` maps keys without the project prefix to values; non-strings are JSON-encoded
    the way the Pulumi CLI passes structured config. `project` defaults to this project's
    name, imported here and not at module level: the benchmark runs its floor program through
    this function in a process that must not have imported any of the program's modules.
    """
    if project is None:
        from .settings import PROJECT as project
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime_settings.ROOT.set(None)
    mocks = mocks if mocks is not None else RecordingMocks()
    logger = logging.getLogger(f"b2b-platform.render.{id(mocks)}")
    logger.propagate = False
    warnings = _Warnings()
    logger.addHandler(warnings)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, logger=logger, monitor=RecordingMonitor(mocks)
    )
    pulumi.runtime.set_all_config(
        {f"{project}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        [f"{project}:{k}" for k in secret_keys],
    )
    exports: dict = {}

    def main():
        if program is not None:
            return program()
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            runpy.run_path(os.path.join(ROOT, "__main__.py"), run_name="__main__")
        finally:
            os.chdir(cwd)

    try:
        loop.run_until_complete(run_pulumi_func(main))
        stack_resource = runtime_settings.get_root_resource()
        outputs = getattr(stack_resource, "outputs", {}) or {}
        for key, value in outputs.items():
            exports[key] = loop.run_until_complete(pulumi.Output.from_input(value).future())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return Run(mocks, warnings.messages, exports)


def plain(value: Any) -> Any:
    """Mock inputs → API-server values: integral floats to ints, secrets redacted."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            # A secret map (a Secret's whole stringData) keeps its keys, so reviewers see its shape.
            inner = value.get("value")
            return dict.fromkeys(inner, REDACTED) if isinstance(inner, dict) else REDACTED
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unsecret(value: Any) -> Any:
    """The value inside a secret wrapper (a map holding any secret Output is wholly secret)."""
    return value["value"] if isinstance(value, dict) and value.get(SECRET_SIG) else value


def _is_k8s_object(r: Registered) -> bool:
    return (
        r.custom
        and r.typ.startswith("kubernetes:")
        and "kind" in r.inputs
        and not r.typ.startswith("kubernetes:helm.sh")
    )


def manifests(resources: list[Registered]) -> list[dict]:
    """Every Kubernetes object, as the API server would receive it, in a stable order."""
    out = []
    for r in resources:
        if not _is_k8s_object(r):
            continue
        obj = plain(r.inputs)
        if obj["kind"] == "Secret":
            for key in ("data", "stringData"):
                if key in obj:
                    obj[key] = dict.fromkeys(_unsecret(r.inputs[key]), REDACTED)
        out.append(obj)
    return sorted(out, key=object_key)


def helm_releases(resources: list[Registered]) -> list[dict]:
    return sorted(
        (plain(r.inputs) | {"_pulumiName": r.name} for r in resources if r.typ.startswith("kubernetes:helm.sh")),
        key=lambda r: r["_pulumiName"],
    )


def object_key(obj: dict) -> tuple:
    md = obj.get("metadata", {})
    return (md.get("namespace", ""), obj["kind"], md.get("name", ""))


def file_name(obj: dict) -> str:
    namespace, kind, name = object_key(obj)
    return f"{namespace or '_cluster'}/{kind.lower()}-{name}.yaml"


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, width=120)


def write(out_dir: str, objects: list[dict], releases: list[dict]) -> list[str]:
    """Write one YAML file per object (and per Helm release); return the relative paths."""
    written = []
    for obj in objects:
        written.append(_write(out_dir, file_name(obj), dump(obj)))
    for release in releases:
        written.append(_write(out_dir, f"_helm/{release['_pulumiName']}.yaml", dump(release)))
    return written


def _write(out_dir: str, rel: str, text: str) -> str:
    path = os.path.join(out_dir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return rel
