"""Gateway: the platform's hosts on the edge controller, with cert-manager TLS.

One Ingress serves every tenant: `*.<base>` goes to the api compute (through its WAF when
a Sentinel fronts it) and each web compute has its own exact host `<nome>.<base>`, which
Ingress matching prefers over the wildcard. A tenant costs nothing here until it brings
custom domains; then it gets one Ingress covering all of them, whose cert-manager
annotations make cert-manager's ingress-shim create and own its Certificate, so a failing
certificate or a DNS mistake of one tenant never touches another's routes, and a tenant
is one Pulumi resource on the edge, not two.

The API receives the original Host header (`acme.app.acme.io`, `portal.acme-corp.com`) and
resolves the tenant from it; plain Ingress cannot add headers, and the edge stays free of
controller-specific annotations. Any controller that implements `ingressClassName` works.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import kube, meta
from .blueprint import Blueprint
from .blueprint import Gateway as GatewayResource
from .contracts import HTTP_SERVICE_PORT, LocalCaRef, Refs
from .settings import Settings

LAYER = "gateway"
CERT_MANAGER = "cert-manager.io/v1"
# cert-manager's HTTP-01 solver pods: label and port (the acmesolver's --listen-port).
ACME_SOLVER_LABEL = {"acme.cert-manager.io/http01-solver": "true"}
ACME_SOLVER_PORT = 8089
PRIVATE_KEY = {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
# cert-manager's ingress-shim: from these an Ingress gets a Certificate named after its tls secretName.
SHIM_ISSUER = "cert-manager.io/cluster-issuer"
SHIM_PRIVATE_KEY = {
    "algorithm": "cert-manager.io/private-key-algorithm",
    "size": "cert-manager.io/private-key-size",
    "rotationPolicy": "cert-manager.io/private-key-rotation-policy",
}


@dataclass(frozen=True)
class Route:
    host: str
    service: str


@dataclass(frozen=True)
class TenantDomains:
    tenant: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class GatewayArgs:
    namespace: str
    name: str
    base: str
    tls: bool
    ingress_class: str
    issuer: str
    custom_domain_issuer: str
    tenant_service: str
    web_routes: tuple[Route, ...]
    custom_domains: tuple[TenantDomains, ...]
    local_ca: LocalCaRef | None
    # Open the edge → HTTP-01 solver flow (an ACME issuer answers custom domains' challenges).
    acme_http01: bool
    edge_namespace: str
    requires: tuple = ()
    # A Sentinel fronts the api compute and resolves tenants there (docs/layers/sentinel.md).
    tenant_waf: bool = False
    # Base domains served before `base` (edge.previousDomains): tenants only, until removed.
    previous: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, resource: GatewayResource, bp: Blueprint, settings: Settings, refs: Refs, requires: tuple = ()
    ) -> GatewayArgs:
        edge, base, tls = settings.edge, resource.config.base_domain, resource.config.tls
        custom = tuple(TenantDomains(t.id, t.domains) for t in settings.tenants if t.domains)
        tenant_service = refs.edge_service(bp.api_compute.nome)
        return cls(
            namespace=refs.namespace,
            name=resource.nome,
            base=base,
            tls=tls,
            ingress_class=edge.ingress_class,
            issuer=edge.cluster_issuer,
            custom_domain_issuer=edge.custom_domain_issuer or edge.cluster_issuer,
            tenant_service=tenant_service,
            web_routes=tuple(
                Route(f"{c.nome}.{base}", refs.edge_service(c.nome))
                for c in bp.of("compute")
                if c.config.subtipo == "web"
            ),
            custom_domains=custom,
            local_ca=LocalCaRef(edge.cluster_issuer, edge.cert_manager_namespace) if edge.local_ca and tls else None,
            acme_http01=tls and bool(custom) and edge.custom_domain_issuer is not None,
            edge_namespace=edge.controller_namespace,
            requires=tuple(requires),
            tenant_waf=tenant_service in {w.service for w in refs.wafs},
            previous=settings.edge.previous_domains,
        )

    @property
    def wildcard(self) -> str:
        return f"*.{self.base}"

    @property
    def tenant_wildcards(self) -> list[str]:
        return [f"*.{base}" for base in (self.base, *self.previous)]

    @property
    def certified(self) -> list[str]:
        """The wildcard certificate's names: each tenant wildcard and its apex."""
        return [name for base in (self.base, *self.previous) for name in (f"*.{base}", base)]

    @property
    def tls_secret(self) -> str:
        return f"{self.name}-tls"

    def tenant_object(self, tenant: str) -> str:
        return f"{self.name}-{tenant}"


def issuer_ref(name: str) -> dict:
    return {"name": name, "kind": "ClusterIssuer", "group": "cert-manager.io"}


def rule(host: str, service: str) -> dict:
    backend = {"service": {"name": service, "port": {"number": HTTP_SERVICE_PORT}}}
    return {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}


def ingress_spec(args: GatewayArgs, rules: list, tls_hosts: list, secret: str) -> dict:
    spec = {"ingressClassName": args.ingress_class, "rules": rules}
    if args.tls:
        spec["tls"] = [{"hosts": tls_hosts, "secretName": secret}]
    return spec


def platform_ingress_spec(args: GatewayArgs) -> dict:
    # Exact web hosts first for readers; Ingress matching prefers them over the wildcard anyway.
    rules = [rule(r.host, r.service) for r in args.web_routes]
    rules += [rule(wildcard, args.tenant_service) for wildcard in args.tenant_wildcards]
    return ingress_spec(args, rules, args.certified, args.tls_secret)


def tenant_ingress_spec(args: GatewayArgs, tenant: TenantDomains) -> dict:
    rules = [rule(host, args.tenant_service) for host in tenant.hosts]
    return ingress_spec(args, rules, list(tenant.hosts), f"{args.tenant_object(tenant.tenant)}-tls")


def certificate_spec(secret: str, dns_names: list, issuer: str) -> dict:
    return {
        "secretName": secret,
        "dnsNames": list(dns_names),
        "issuerRef": issuer_ref(issuer),
        "privateKey": dict(PRIVATE_KEY),
    }


def shim_annotations(issuer: str) -> dict:
    """The Certificate `certificate_spec` would describe, asked of ingress-shim: same issuer and key."""
    return {SHIM_ISSUER: issuer, **{SHIM_PRIVATE_KEY[k]: str(v) for k, v in PRIVATE_KEY.items()}}


def ca_certificate_spec(ca: LocalCaRef) -> dict:
    return {
        "isCA": True,
        "commonName": f"b2b-platform local CA ({ca.issuer})",
        "secretName": ca.secret,
        "duration": "87600h",  # ten years: a kind cluster never outlives it; trust it once
        "issuerRef": issuer_ref(ca.root_issuer),
        "privateKey": {"algorithm": "ECDSA", "size": 256},
    }


def acme_solver_policy_spec(edge_namespace: str) -> dict:
    return meta.allow_ingress(
        ACME_SOLVER_LABEL, [meta.namespace_peer(edge_namespace)], meta.tcp_ports(ACME_SOLVER_PORT)
    )


def http01_warning(args: GatewayArgs) -> str | None:
    """The custom-domain issuer is the cluster's, so the program cannot read its solver; it says what
    that solver must set. cert-manager v1.21.1 pkg/issuer/acme/http/service.go creates the solver
    Service as NodePort unless `http01.ingress.serviceType` says otherwise, and the fabric's
    ResourceQuota allows no NodePort in this namespace: the Service is refused, the challenge never
    answers and no custom-domain certificate is ever issued."""
    if not args.acme_http01:
        return None
    return (
        f"gateway {args.name}: custom-domain certificates come from ClusterIssuer {args.custom_domain_issuer!r}; "
        "its HTTP-01 solver must set `http01.ingress.serviceType: ClusterIP` (cert-manager's default is NodePort, "
        f"which the fabric's ResourceQuota refuses in namespace {args.namespace}, so no certificate would be issued) "
        f"and `ingressClassName: {args.ingress_class}` (docs/layers/gateway.md)"
    )


def tenant_resolution_warning(args: GatewayArgs) -> str | None:
    """Only a Sentinel resolves tenants at the edge; without one every host reaches the API."""
    if args.tenant_waf:
        return None
    return (
        f"gateway {args.name}: no sentinel fronts the api compute, so the edge does not resolve tenants: every host "
        f"under {args.wildcard} (tenants or not) reaches the API with no tenant header and no per-tenant rate limit; "
        "the API must map Host to tenant itself and refuse unknown hosts (docs/layers/gateway.md)"
    )


def tenant_hosts(args: GatewayArgs) -> dict:
    """Every custom domain and the tenant it belongs to: what the API needs to resolve a Host."""
    return {host: t.tenant for t in args.custom_domains for host in t.hosts}


class Gateway(pulumi.ComponentResource):
    ingress_name: pulumi.Output[str]
    hosts: list
    tenant_hosts: dict
    tls_secret: str | None
    ca_secret: dict | None

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:gateway:Gateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        md = meta.metadata(args.name, args.namespace, LAYER)

        issuers: list = []
        if args.local_ca:
            issuers = [self._local_ca(name, args.local_ca, args.requires)]
        if not args.tls:
            pulumi.log.warn(
                f"gateway {args.name}: tls is false: {args.wildcard} and tenants' custom domains are served over "
                "plain HTTP "
                "with no certificates; use it only where traffic never leaves a test machine",
                self,
            )

        for warning in (http01_warning(args), tenant_resolution_warning(args)):
            if warning:
                pulumi.log.warn(warning, self)

        certificate_opts = pulumi.ResourceOptions(parent=self, depends_on=[*args.requires, *issuers])
        platform = kube.Object(
            f"{name}-ingress",
            "networking.k8s.io/v1",
            "Ingress",
            metadata=meta.ingress_metadata(md, args.tls),
            spec=platform_ingress_spec(args),
            opts=child,
        )
        if args.tls:
            k8s.apiextensions.CustomResource(
                f"{name}-certificate",
                api_version=CERT_MANAGER,
                kind="Certificate",
                metadata=md,
                spec=certificate_spec(args.tls_secret, args.certified, args.issuer),
                opts=certificate_opts,
            )
        for tenant in args.custom_domains:
            tmd = {
                **md,
                "name": args.tenant_object(tenant.tenant),
                "labels": meta.labels(args.name, LAYER, {meta.TENANT_LABEL: tenant.tenant}),
            }
            if args.tls:
                tmd["annotations"] = shim_annotations(args.custom_domain_issuer)
            kube.Object(
                f"{name}-tenant-{tenant.tenant}-ingress",
                "networking.k8s.io/v1",
                "Ingress",
                metadata=meta.ingress_metadata(tmd, args.tls),
                spec=tenant_ingress_spec(args, tenant),
                opts=child,
            )
        if args.acme_http01:
            kube.Object(
                f"{name}-acme-solver",
                "networking.k8s.io/v1",
                "NetworkPolicy",
                metadata={**md, "name": "allow-edge-to-acme-solver"},
                spec=acme_solver_policy_spec(args.edge_namespace),
                opts=child,
            )

        self.ingress_name = platform.metadata["name"]
        self.hosts = [r.host for r in args.web_routes] + args.tenant_wildcards + list(tenant_hosts(args))
        self.tenant_hosts = tenant_hosts(args)
        self.tls_secret = args.tls_secret if args.tls else None
        self.ca_secret = (
            {"namespace": args.local_ca.namespace, "name": args.local_ca.secret, "key": "ca.crt"}
            if args.local_ca
            else None
        )
        self.register_outputs(
            {
                "ingress_name": self.ingress_name,
                "hosts": self.hosts,
                "tenant_hosts": self.tenant_hosts,
                "tls_secret": self.tls_secret,
                "ca_secret": self.ca_secret,
            }
        )

    def _local_ca(
        self, name: str, ca: LocalCaRef, requires: tuple[pulumi.Resource, ...]
    ) -> k8s.apiextensions.CustomResource:
        """self-signed ClusterIssuer → CA Certificate (isCA) → CA ClusterIssuer; returns the last."""
        root = k8s.apiextensions.CustomResource(
            f"{name}-local-ca-root",
            api_version=CERT_MANAGER,
            kind="ClusterIssuer",
            metadata=meta.metadata(ca.root_issuer, None, LAYER),
            spec={"selfSigned": {}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(requires)),
        )
        cert = k8s.apiextensions.CustomResource(
            f"{name}-local-ca-certificate",
            api_version=CERT_MANAGER,
            kind="Certificate",
            metadata=meta.metadata(ca.secret, ca.namespace, LAYER),
            spec=ca_certificate_spec(ca),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*requires, root]),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-local-ca-issuer",
            api_version=CERT_MANAGER,
            kind="ClusterIssuer",
            metadata=meta.metadata(ca.issuer, None, LAYER),
            spec={"ca": {"secretName": ca.secret}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*requires, cert]),
        )
