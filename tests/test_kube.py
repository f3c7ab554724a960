"""kube.Object registers built-in kinds exactly as the typed classes would, minus their legacy aliases;
kube.HelmRelease a Helm release as its typed class would."""

import importlib
import inspect

import pulumi
import pulumi_kubernetes as k8s
from conftest import ROOT, dev_config

from components import kube
from components.addons import release_inputs, releases
from components.platform import Platform, PlatformArgs
from components.render import _is_k8s_object, run_program
from components.settings import Settings, load_inputs

# apiVersion → the pulumi_kubernetes module of its typed classes.
BUILT_IN = {
    "v1": "core.v1",
    "apps/v1": "apps.v1",
    "networking.k8s.io/v1": "networking.v1",
    "policy/v1": "policy.v1",
    "rbac.authorization.k8s.io/v1": "rbac.v1",
}


def test_type_tokens():
    assert kube.type_token("v1", "Secret") == "kubernetes:core/v1:Secret"
    assert kube.type_token("networking.k8s.io/v1", "Ingress") == "kubernetes:networking.k8s.io/v1:Ingress"


def test_every_built_in_object_has_its_typed_class_token(seed_render):
    built_in = [r for r in seed_render.run.mocks.resources if _is_k8s_object(r) and r.inputs["apiVersion"] in BUILT_IN]
    assert {r.inputs["kind"] for r in built_in} >= {
        "Namespace",
        "Secret",
        "Deployment",
        "StatefulSet",
        "Ingress",
        "NetworkPolicy",
        "RoleBinding",
    }
    for r in built_in:
        typed = getattr(
            importlib.import_module(f"pulumi_kubernetes.{BUILT_IN[r.inputs['apiVersion']]}"), r.inputs["kind"]
        )
        # The typed class passes its token as a literal to pulumi.CustomResource.__init__.
        assert f"'{r.typ}'" in inspect.getsource(typed), (r.name, r.typ)


def test_no_object_carries_aliases_and_secrets_stay_secret():
    seen = {}

    def record(args):
        seen[args.name] = (args.type_, args.opts)

    def program():
        pulumi.runtime.register_stack_transformation(record)
        Platform("b2b-platform", PlatformArgs.of(load_inputs(dev_config(), root=ROOT)))

    run_program(dev_config(), program=program)
    assert len(seen) > 100
    assert {name: opts.aliases for name, (_, opts) in seen.items() if opts.aliases} == {}
    secrets = {name: opts for name, (typ, opts) in seen.items() if typ == "kubernetes:core/v1:Secret"}
    assert secrets and all(opts.additional_secret_outputs == ["data", "stringData"] for opts in secrets.values())
    assert {opts.version for typ, opts in seen.values() if typ.startswith("kubernetes:")} == {kube.PROVIDER_VERSION}


def test_helm_release_registers_what_the_typed_class_registers():
    # Same inputs through both: the typed class with its input classes, and kube.HelmRelease.
    specs = releases(Settings())
    seen = {}

    def record(args):
        seen[args.name] = (args.type_, args.opts.version)

    def program():
        pulumi.runtime.register_stack_transformation(record)
        for spec in specs:
            k8s.helm.v3.Release(
                f"typed-{spec.key}",
                k8s.helm.v3.ReleaseArgs(
                    name=spec.key,
                    chart=spec.chart,
                    version=spec.version,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=spec.repo),
                    namespace=spec.namespace,
                    values=spec.values,
                    timeout=900,
                    atomic=True,
                    cleanup_on_fail=True,
                    max_history=5,
                ),
            )
            kube.HelmRelease(f"plain-{spec.key}", release_inputs(spec))

    run = run_program({}, program=program)
    registered = {r.name: r for r in run.mocks.resources}
    assert len(registered) == 2 * len(specs)
    for spec in specs:
        typed, plain = registered[f"typed-{spec.key}"], registered[f"plain-{spec.key}"]
        assert (plain.typ, plain.inputs) == (typed.typ, typed.inputs), spec.key
        assert (
            seen[f"plain-{spec.key}"]
            == seen[f"typed-{spec.key}"]
            == ("kubernetes:helm.sh/v3:Release", kube.PROVIDER_VERSION)
        )
