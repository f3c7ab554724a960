"""The running platform's network, as a model: every pod that will run, and what may talk to what.

The render shows the pods the program creates itself (pod templates of Deployments and
StatefulSets). The pods that matter just as much are made by operators from our custom
resources, or belong to the add-ons around the fabric; `operator_pods` and `addon_pods`
add them with the labels and ports their upstream source gives them (each cited below,
repository, tag and file). `Policies` evaluates Kubernetes NetworkPolicy semantics on that
model; `required` and `forbidden` list the flows the architecture needs and the flows it
must never allow, each with its reason. The tests assert both lists on every render; the
diagram draws the same model (diagram.py).

NetworkPolicy semantics (networking.k8s.io/v1, "Network Policies" in the Kubernetes docs):
- a pod is isolated in a direction when some policy of its namespace selects it and lists
  that direction in `policyTypes` (defaulted: Ingress, plus Egress when `egress` is set);
  a connection needs the sender's egress and the receiver's ingress to allow it;
- a rule with no (or an empty) `from`/`to` admits every peer; no `ports` admits every port;
- a peer's `podSelector` and `namespaceSelector` are ANDed; `podSelector` alone means the
  policy's own namespace; an absent `podSelector` next to a `namespaceSelector` means every
  pod there; an empty selector `{}` selects everything;
- `ipBlock` admits addresses in `cidr` outside every `except`. Whether it matches pod IPs
  is left to the network plugin, so required flows are proven without that (`ipblock_pods`
  False) and forbidden flows with it (True): neither reading can break a verdict;
- a port entry without `port` covers every port of its protocol (default TCP); `endPort`
  makes a range; a named port is resolved on the destination pod's container ports.
The API server is modelled as Kubernetes reaches it after kube-proxy's DNAT: a host
address outside the pod network on 6443 (or 443), never the Service's ClusterIP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import meta
from .blueprint import Blueprint
from .contracts import Refs
from .podsecurity import pod_spec, pod_template_labels
from .settings import Settings

NS_NAME_LABEL = "kubernetes.io/metadata.name"
# Where the model puts pod addresses: kind's default podSubnet (kind v0.32.0 pkg/apis/config/v1alpha4/default.go).
POD_CIDR = "10.244.0.0/16"
# Stand-ins outside the cluster (RFC 5737 documentation ranges): an internet host, the IdP.
INTERNET_ADDRESS = "203.0.113.10"
IDP_ADDRESS = "198.51.100.20"
# Where kind's control-plane node usually sits (Docker's first user bridge network) when no
# stack setting says: only used to place the API server in the model.
DEFAULT_API_ADDRESS = "172.18.0.2"
API_SERVER_PORTS = meta.API_SERVER_PORTS
# Ports a connection might try beyond those declared: NetworkPolicy cannot see what listens,
# so forbidden flows probe the declared ports, SeaweedFS' undeclared listeners (`weed mini`:
# master 9333, volume 8080, filer 8888) and two arbitrary ports.
PROBE_PORTS = (1, 8080, 8888, 9333, 65535)
INTERNET_PORTS = (22, 53, 80, 443, 5432, 6443, 8080, 8443)
INTRUDER_NAMESPACE = "intruder"
BARMAN_PLUGIN_PORT = 9090

CNPG = "cloudnative-pg/cloudnative-pg v1.30.0"
PROMETHEUS_OPERATOR = "prometheus-operator/prometheus-operator v0.93.0"
CERT_MANAGER = "cert-manager/cert-manager v1.21.1"
# CNPG pods' labels (pkg/utils/labels_annotations.go: AppName, DatabaseComponentName, ManagerName).
_CNPG_COMMON = {
    "app.kubernetes.io/name": "postgresql",
    "app.kubernetes.io/managed-by": "cloudnative-pg",
}


@dataclass(frozen=True)
class Port:
    name: str
    protocol: str
    number: int


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    kind: str
    layer: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[Port, ...]
    origin: str  # "rendered", or the upstream file its labels and ports come from
    ip: str

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def id(self) -> str:
        return _id("p", self.namespace, self.name)

    @property
    def title(self) -> str:
        return f"{self.namespace}/{self.name}"

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


@dataclass(frozen=True)
class Host:
    """An address outside the pod network: the API server, the IdP, the internet, the private cidr."""

    name: str
    ip: str
    ports: tuple[Port, ...]
    origin: str

    @property
    def id(self) -> str:
        return _id("h", self.name)

    @property
    def title(self) -> str:
        return f"{self.name} ({self.ip})"


Endpoint = Pod | Host


def _id(*parts: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in "_".join(parts)).strip("_")


def tcp(**ports: int) -> tuple[Port, ...]:
    return tuple(Port(name.replace("_", "-"), "TCP", number) for name, number in ports.items())


# --- NetworkPolicy semantics ---------------------------------------------------------------


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector; absent (None) and empty select everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and key in labels and labels[key] in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def policy_types(spec: Mapping[str, Any]) -> set[str]:
    """`policyTypes` as the API server defaults it: Ingress, and Egress when egress rules exist."""
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def in_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(block["cidr"], strict=False)
    if address.version != network.version or address not in network:
        return False
    return not any(address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])


class Policies:
    """NetworkPolicy decisions over `(namespace, spec)` pairs and the namespaces' labels."""

    def __init__(
        self,
        policies: Iterable[tuple[str, Mapping[str, Any]]],
        namespaces: Mapping[str, Mapping[str, str]],
        ipblock_pods: bool = False,
    ):
        self.policies = list(policies)
        self.namespaces = namespaces
        self.ipblock_pods = ipblock_pods

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return {**self.namespaces.get(namespace, {}), NS_NAME_LABEL: namespace}

    def isolating(self, pod: Pod, direction: str) -> list[tuple[str, Mapping[str, Any]]]:
        return [
            (ns, spec)
            for ns, spec in self.policies
            if ns == pod.namespace
            and direction in policy_types(spec)
            and selects(spec.get("podSelector"), pod.label_map)
        ]

    def peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            if isinstance(other, Pod) and not self.ipblock_pods:
                return False
            return in_block(other.ip, peer["ipBlock"])
        if not isinstance(other, Pod):
            return False
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self.namespace_labels(other.namespace)):
                return False
        elif other.namespace != policy_namespace:
            return False
        return selects(peer.get("podSelector"), other.label_map)

    @staticmethod
    def port_matches(entries: Sequence[Mapping[str, Any]] | None, target: Endpoint, number: int, protocol: str) -> bool:
        if not entries:
            return True
        for entry in entries:
            if entry.get("protocol", "TCP") != protocol:
                continue
            port = entry.get("port")
            if port is None:
                return True
            if isinstance(port, str):
                if isinstance(target, Pod) and any(
                    p.name == port and p.protocol == protocol and p.number == number for p in target.ports
                ):
                    return True
            elif port <= number <= entry.get("endPort", port):
                return True
        return False

    def _direction(self, pod: Pod, direction: str, other: Endpoint, target: Endpoint, number: int, protocol: str):
        isolating = self.isolating(pod, direction)
        if not isolating:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for ns, spec in isolating:
            for rule in spec.get(rules_key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self.peer_matches(p, ns, other) for p in peers):
                    continue
                if self.port_matches(rule.get("ports"), target, number, protocol):
                    return True
        return False

    def allows(self, source: Endpoint, target: Endpoint, number: int, protocol: str = "TCP") -> bool:
        """A connection from `source` to `target` on `protocol`/`number`: both ends must allow it."""
        if isinstance(source, Pod) and not self._direction(source, "Egress", target, target, number, protocol):
            return False
        return not isinstance(target, Pod) or self._direction(target, "Ingress", source, target, number, protocol)


# --- the pods that will run ----------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    fabric: str
    pods: tuple[Pod, ...]
    hosts: tuple[Host, ...]
    policies: tuple[tuple[str, Mapping[str, Any]], ...]
    policy_names: tuple[str, ...]  # beside `policies`
    namespaces: Mapping[str, Mapping[str, str]]
    refs: Refs
    settings: Settings
    public: bool  # the fabric's `publica`: the edge reaches its entry points
    kinds: frozenset[str]  # kinds of the rendered objects
    scrapes: tuple[tuple[Pod, str], ...]  # (pod, container port name) every monitor endpoint selects

    def evaluator(self, ipblock_pods: bool = False) -> Policies:
        return Policies(self.policies, self.namespaces, ipblock_pods)

    def pod(self, name: str, namespace: str | None = None) -> Pod:
        ns = namespace or self.fabric
        return next(p for p in self.pods if p.namespace == ns and p.name == name)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def has_host(self, name: str) -> bool:
        return any(h.name == name for h in self.hosts)

    @property
    def fabric_pods(self) -> list[Pod]:
        return [p for p in self.pods if p.namespace == self.fabric]

    def layer(self, layer: str) -> list[Pod]:
        return [p for p in self.fabric_pods if p.layer == layer]

    def of_kind(self, kind: str) -> list[Pod]:
        return [p for p in self.fabric_pods if p.kind == kind]


def _pod(namespace: str, name: str, kind: str, layer: str, labels: Mapping[str, str], ports, origin: str) -> Pod:
    return Pod(namespace, name, kind, layer, tuple(sorted(labels.items())), tuple(ports), origin, "")


def rendered_pods(objects: Sequence[Mapping[str, Any]]) -> list[Pod]:
    """The pod templates the program renders itself."""
    found = []
    for o in objects:
        spec = pod_spec(o)
        if spec is None:
            continue
        md = o.get("metadata") or {}
        labels = dict(pod_template_labels(o) or {})
        ports = [
            Port(p.get("name", ""), p.get("protocol", "TCP"), p["containerPort"])
            for c in spec.get("containers") or []
            for p in c.get("ports") or []
        ]
        layer = labels.get(meta.LAYER_LABEL) or (md.get("labels") or {}).get(meta.LAYER_LABEL, "")
        found.append(_pod(md.get("namespace", ""), md["name"], o["kind"], layer, labels, ports, "rendered"))
    return found


def _group(obj: Mapping[str, Any]) -> str:
    api = obj.get("apiVersion", "")
    return api.rsplit("/", 1)[0] if "/" in api else ""


def _cnpg_cluster_pods(name: str, namespace: str, instances: int, layer: str) -> list[Pod]:
    # Instance pods: pkg/specs/pods.go (PodWithExistingStorage: labels; createPostgresContainers:
    # ports postgresql 5432, metrics 9187 (pkg/management/url/url.go), status 8000). The instance
    # manager adds `role` and `cnpg.io/instanceRole` (pkg/utils/labels_annotations.go SetInstanceRole).
    def instance(serial: int, role: str) -> Pod:
        labels = {
            **_CNPG_COMMON,
            "cnpg.io/cluster": name,
            "cnpg.io/instanceName": f"{name}-{serial}",
            "cnpg.io/podRole": "instance",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "database",
            "role": role,
            "cnpg.io/instanceRole": role,
        }
        ports = tcp(postgresql=5432, metrics=9187, status=8000)
        return _pod(
            namespace, f"{name}-{serial}", f"CNPG instance ({role})", layer, labels, ports, f"{CNPG} pkg/specs/pods.go"
        )

    # Jobs: pkg/specs/jobs.go CreatePrimaryJob: cnpg.io/cluster, cnpg.io/jobRole, cnpg.io/instanceName;
    # no cnpg.io/podRole and no ports. initdb makes instance 1; join clones every further one from the primary.
    def job(serial: int, role: str) -> Pod:
        labels = {
            **_CNPG_COMMON,
            "cnpg.io/cluster": name,
            "cnpg.io/instanceName": f"{name}-{serial}",
            "cnpg.io/jobRole": role,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "database",
        }
        return _pod(
            namespace, f"{name}-{serial}-{role}", f"CNPG {role} Job", layer, labels, (), f"{CNPG} pkg/specs/jobs.go"
        )

    pods = [instance(1, "primary"), job(1, "initdb")]
    if instances > 1:
        pods += [instance(2, "replica"), job(2, "join")]
    return pods


def operator_pods(objects: Sequence[Mapping[str, Any]], settings: Settings) -> list[Pod]:
    """Pods operators create from the rendered custom resources, labelled as their source says."""
    found: list[Pod] = []
    issuers = {settings.edge.custom_domain_issuer} - {None}
    for o in objects:
        md, spec = o.get("metadata") or {}, o.get("spec") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        layer = (md.get("labels") or {}).get(meta.LAYER_LABEL, "")
        kind = (_group(o), o.get("kind"))
        if kind == ("postgresql.cnpg.io", "Cluster"):
            found += _cnpg_cluster_pods(name, ns, int(spec.get("instances", 1)), layer)
        elif kind == ("postgresql.cnpg.io", "Pooler"):
            # pkg/specs/pgbouncer/deployments.go: labels; ports pgbouncer 5432
            # (pkg/management/pgbouncer/config/config.go) and metrics 9127 (pkg/management/url/url.go).
            labels = {
                "cnpg.io/cluster": spec["cluster"]["name"],
                "cnpg.io/poolerName": name,
                "cnpg.io/podRole": "pooler",
                "app.kubernetes.io/name": "postgresql",
                "app.kubernetes.io/instance": spec["cluster"]["name"],
                "app.kubernetes.io/component": "pooler",
                "app.kubernetes.io/managed-by": "cloudnative-pg",
                **(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}),
            }
            ports = tcp(pgbouncer=5432, metrics=9127)
            found.append(
                _pod(ns, name, "CNPG pooler", layer, labels, ports, f"{CNPG} pkg/specs/pgbouncer/deployments.go")
            )
        elif kind == ("monitoring.coreos.com", "Prometheus"):
            # pkg/prometheus/server/operator.go makeSelectorLabels, statefulset.go (shard label, podMetadata);
            # ports: pkg/prometheus/common.go MakeContainerPorts (portName, default "web", 9090) and
            # pkg/operator/config_reloader.go (reloader-web 8080).
            labels = {
                **((spec.get("podMetadata") or {}).get("labels") or {}),
                "app.kubernetes.io/managed-by": "prometheus-operator",
                "app.kubernetes.io/name": "prometheus",
                "app.kubernetes.io/instance": name,
                "operator.prometheus.io/name": name,
                "operator.prometheus.io/shard": "0",
                "prometheus": name,
            }
            ports = (Port(spec.get("portName", "web"), "TCP", 9090), Port("reloader-web", "TCP", 8080))
            found.append(
                _pod(
                    ns,
                    f"prometheus-{name}-0",
                    "Prometheus pod",
                    layer,
                    labels,
                    ports,
                    f"{PROMETHEUS_OPERATOR} pkg/prometheus/server/statefulset.go",
                )
            )
        elif (
            o.get("kind") == "Ingress"
            and (md.get("annotations") or {}).get("cert-manager.io/cluster-issuer") in issuers
        ):
            # The custom-domain issuer answers HTTP-01 challenges with a solver pod per challenge:
            # pkg/issuer/acme/http/pod.go podLabels, port "http" = acmeSolverListenPort 8089 (http.go).
            labels = {
                "acme.cert-manager.io/http01-solver": "true",
                "acme.cert-manager.io/http-domain": "1",
                "acme.cert-manager.io/http-token": "1",
            }
            solver = _pod(
                ns,
                "cm-acme-http-solver",
                "HTTP-01 solver",
                "gateway",
                labels,
                tcp(http=8089),
                f"{CERT_MANAGER} pkg/issuer/acme/http/pod.go",
            )
            if solver not in found:
                found.append(solver)
    return found


def addon_pods(settings: Settings) -> list[Pod]:
    """The add-ons' pods that talk to the fabric, as their charts (the versions addons.py pins) label them."""
    edge, cnpg = settings.edge.controller_namespace, settings.datastore.operator_namespace
    keda, nack = settings.insight.keda_namespace, settings.beacon.nack_namespace
    return [
        # traefik/traefik-helm-chart v41.3.0 traefik/templates/_helpers.tpl (labels), values.yaml (ports).
        _pod(
            edge, "traefik", "Deployment", "edge",
            {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": f"traefik-{edge}"},
            tcp(web=8000, websecure=8443, traefik=8080, metrics=9100),
            "traefik/traefik-helm-chart v41.3.0 traefik/templates/_helpers.tpl",
        ),
        # cloudnative-pg/charts cloudnative-pg-v0.29.0 charts/cloudnative-pg/templates/{_helpers.tpl,deployment.yaml}.
        _pod(
            cnpg, "cloudnative-pg", "Deployment", "operator",
            {"app.kubernetes.io/name": "cloudnative-pg", "app.kubernetes.io/instance": "cloudnative-pg"},
            tcp(metrics=8080, webhook_server=9443),
            "cloudnative-pg/charts cloudnative-pg-v0.29.0 charts/cloudnative-pg/templates/deployment.yaml",
        ),
        # cloudnative-pg/charts plugin-barman-cloud-v0.7.0 charts/plugin-barman-cloud/templates/deployment.yaml
        # (an unnamed container port 9090, the gRPC port plugin-barman-cloud v0.14.0 manifest.yaml's
        # Service announces to the operator).
        _pod(
            cnpg, "barman-cloud", "Deployment", "operator",
            {"app.kubernetes.io/name": "plugin-barman-cloud", "app.kubernetes.io/instance": "barman-cloud"},
            (Port("", "TCP", BARMAN_PLUGIN_PORT),),
            "cloudnative-pg/charts plugin-barman-cloud-v0.7.0 charts/plugin-barman-cloud/templates/deployment.yaml",
        ),
        # kedacore/charts v2.20.2 keda/templates/manager/deployment.yaml, values.yaml (operator.name, ports).
        _pod(
            keda, "keda-operator", "Deployment", "autoscale",
            {"app": "keda-operator", "name": "keda-operator", "app.kubernetes.io/name": "keda-operator"},
            tcp(metrics=8080, metricsservice=9666),
            "kedacore/charts v2.20.2 keda/templates/manager/deployment.yaml",
        ),
        _pod(
            keda, "keda-operator-metrics-apiserver", "Deployment", "autoscale",
            {"app": "keda-operator-metrics-apiserver", "app.kubernetes.io/name": "keda-operator-metrics-apiserver"},
            tcp(https=6443, metrics=8080),
            "kedacore/charts v2.20.2 keda/templates/metrics-server/deployment.yaml",
        ),
        # nats-io/k8s nack-0.34.0 helm/charts/nack/templates/_helpers.tpl (jsc.labels with values.yaml's
        # default useLegacyNames: true: app = the release name, chart = nack-0.34.0).
        _pod(
            nack, "nack", "Deployment", "beacon",
            {"app": "nack", "chart": "nack-0.34.0"},
            (),
            "nats-io/k8s nack-0.34.0 helm/charts/nack/templates/deployment-jetstream-controller.yml",
        ),
        # kubernetes/kubernetes cmd/kubeadm/app/phases/addons/dns/manifests.go (CoreDNSDeployment), what kind runs.
        _pod(
            "kube-system", "coredns", "Deployment", "dns",
            {"k8s-app": "kube-dns"},
            (Port("dns", "UDP", 53), Port("dns-tcp", "TCP", 53), Port("metrics", "TCP", 9153)),
            "kubernetes/kubernetes cmd/kubeadm/app/phases/addons/dns/manifests.go",
        ),
    ]  # fmt: skip


def api_server_address(settings: Settings) -> str:
    if not settings.api_server_cidr:
        return DEFAULT_API_ADDRESS
    network = ipaddress.ip_network(settings.api_server_cidr)
    return str(network[0] if network.num_addresses <= 2 else network[2])


def hosts(settings: Settings, bp: Blueprint) -> list[Host]:
    cidr = ipaddress.ip_network(bp.one("fabric").config.cidr)
    found = [
        Host(
            "api-server", api_server_address(settings), tcp(https=443, apiserver=6443), "the control plane after DNAT"
        ),
        Host("internet", INTERNET_ADDRESS, tuple(Port("", "TCP", n) for n in INTERNET_PORTS), "any public address"),
        Host(
            "private-network",
            str(cidr[min(10, cidr.num_addresses - 1)]),
            tcp(https=443, postgres=5432),
            f"a host of the fabric cidr {cidr}",
        ),
    ]
    if settings.oidc is not None:
        found.append(Host("idp", IDP_ADDRESS, tcp(https=settings.oidc.issuer_port), settings.oidc.issuer_url))
    return found


def build(objects: Sequence[Mapping[str, Any]], settings: Settings, bp: Blueprint) -> Model:
    """The model of everything that will run around one render."""
    refs = Refs.of(bp, sso=settings.oidc is not None)
    pods = rendered_pods(objects) + operator_pods(objects, settings) + addon_pods(settings)
    network = ipaddress.ip_network(POD_CIDR)
    pods = [_with_ip(p, str(network[i + 2])) for i, p in enumerate(pods)]
    namespaces: dict[str, Mapping[str, str]] = {
        o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in objects if o.get("kind") == "Namespace"
    }
    rendered = [o for o in objects if o.get("kind") == "NetworkPolicy" and _group(o) == "networking.k8s.io"]
    policies = tuple((o["metadata"].get("namespace", ""), o.get("spec") or {}) for o in rendered)
    return Model(
        refs.namespace,
        tuple(pods),
        tuple(hosts(settings, bp)),
        policies,
        tuple(o["metadata"]["name"] for o in rendered),
        namespaces,
        refs,
        settings,
        bp.one("fabric").config.publica,
        frozenset(o.get("kind", "") for o in objects),
        tuple(scrapes(objects, pods)),
    )


def scrapes(objects: Sequence[Mapping[str, Any]], pods: Sequence[Pod]) -> list[tuple[Pod, str]]:
    """(pod, container port name) for every PodMonitor and ServiceMonitor endpoint of the render."""
    services = [o for o in objects if o.get("kind") == "Service"]
    found: list[tuple[Pod, str]] = []
    for o in objects:
        md, spec = o.get("metadata") or {}, o.get("spec") or {}
        ns = md.get("namespace", "")
        local = [p for p in pods if p.namespace == ns]
        if o.get("kind") == "PodMonitor":
            for pod in local:
                if selects(spec.get("selector"), pod.label_map):
                    found += [(pod, e["port"]) for e in spec.get("podMetricsEndpoints") or [] if pod.port(e["port"])]
        elif o.get("kind") == "ServiceMonitor":
            for svc in services:
                smd = svc.get("metadata") or {}
                if smd.get("namespace", "") != ns or not selects(spec.get("selector"), smd.get("labels") or {}):
                    continue
                targets = {p["name"]: p.get("targetPort", p["port"]) for p in svc["spec"].get("ports") or []}
                for pod in local:
                    if not selects({"matchLabels": svc["spec"].get("selector") or {}}, pod.label_map):
                        continue
                    for e in spec.get("endpoints") or []:
                        target = targets.get(e.get("port"))
                        port = next((p for p in pod.ports if target in (p.name, p.number)), None)
                        if port:
                            found.append((pod, port.name))
    return sorted(set(found), key=lambda f: (f[0].name, f[1]))


def _with_ip(pod: Pod, ip: str) -> Pod:
    return Pod(pod.namespace, pod.name, pod.kind, pod.layer, pod.labels, pod.ports, pod.origin, ip)


# --- what must and must not flow -----------------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    source: Endpoint
    target: Endpoint
    port: int
    protocol: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source.title} -> {self.target.title} {self.protocol}/{self.port}: {self.reason}"


def _to(source: Endpoint, target: Endpoint, port_name: str, reason: str) -> Expectation:
    port = target.port(port_name) if isinstance(target, Pod) else None
    assert port is not None, f"{target.title} has no port {port_name!r}"
    return Expectation(source, target, port.number, port.protocol, reason)


def _api(source: Pod, model: Model, reason: str) -> list[Expectation]:
    # kind's API server listens on 6443; a managed cluster's endpoint is usually on 443.
    return [Expectation(source, model.host("api-server"), n, "TCP", reason) for n in API_SERVER_PORTS]


def edge_chain(model: Model) -> list[tuple[Pod, Pod, str]]:
    """(sender, receiver, receiver's port name): every hop from the edge (on a public fabric)
    through the WAFs and login proxies to the workloads they front."""
    refs, fabric = model.refs, model.fabric
    edge = model.pod("traefik", model.settings.edge.controller_namespace)
    hops: list[tuple[Pod, Pod, str]] = []
    for compute in model.layer("compute"):
        first = model.pod(refs.edge_service(compute.name), fabric)
        if model.public:
            hops.append((edge, first, "http"))
        waf = next((w for w in refs.wafs if w.target == compute.name), None)
        sso = refs.sso_for(compute.name)
        if waf:
            hops.append((first, model.pod(waf.next_hop), "http"))
        if sso:
            hops.append((model.pod(sso.name), compute, "http"))
    if model.public and any(p.label_map.get(meta.ENTRYPOINT_LABEL) for p in model.layer("archive")):
        assert refs.object_store is not None
        hops.append((edge, model.pod(refs.object_store.name), "s3"))
    return hops


def required(model: Model) -> list[Expectation]:
    """Every flow the architecture needs, with why."""
    refs, settings = model.refs, model.settings
    out: list[Expectation] = []
    for sender, receiver, port in edge_chain(model):
        out.append(_to(sender, receiver, port, f"the edge path: {sender.name} forwards to {receiver.name}"))
    computes = model.layer("compute")
    dns = model.pod("coredns", "kube-system")
    for pod in model.fabric_pods:
        for name in ("dns", "dns-tcp"):
            out.append(_to(pod, dns, name, "every pod resolves Service names through kube-dns"))
    if refs.database:
        db = refs.database
        pooler = model.pod(db.pooler_service)
        primary = model.pod(f"{db.cluster}-1")
        for c in computes:
            out.append(_to(c, pooler, "pgbouncer", "the computes reach PostgreSQL through the pooler"))
        out.append(_to(pooler, primary, "postgresql", "PgBouncer's server connections go to the primary"))
        for job in (p for p in model.fabric_pods if p.label_map.get(meta.NAME_LABEL) == db.migrations):
            out.append(_to(job, primary, "postgresql", "the migrations Job applies sql/migrations on the primary"))
        operator = model.pod("cloudnative-pg", settings.datastore.operator_namespace)
        plugin = model.pod("barman-cloud", settings.datastore.operator_namespace)
        cnpg_pods = [p for p in model.fabric_pods if p.label_map.get("cnpg.io/cluster") == db.cluster]
        for p in cnpg_pods:
            if p.label_map.get("cnpg.io/podRole") == "instance":
                out += [
                    _to(operator, p, n, "the CNPG operator checks and manages every instance")
                    for n in ("postgresql", "status")
                ]
            out += _api(p, model, "CNPG's instance manager, Jobs and PgBouncer watch their objects in the API")
            role = p.label_map.get("role") or p.label_map.get("cnpg.io/jobRole")
            if role in ("replica", "join"):
                out.append(_to(p, primary, "postgresql", f"the {role} streams from (or clones) the primary"))
            if role == "replica":
                out.append(_to(p, primary, "status", "instance managers query each other's status"))
            if refs.object_store and p.label_map.get("cnpg.io/podRole") == "instance":
                store = model.pod(refs.object_store.name)
                out.append(_to(p, store, "s3", "the barman-cloud sidecar archives WALs and base backups"))
        out.append(
            Expectation(operator, plugin, BARMAN_PLUGIN_PORT, "TCP", "the CNPG operator calls the barman-cloud plugin")
        )
    if refs.broker:
        broker = model.pod(refs.broker.name)
        for c in computes:
            out.append(_to(c, broker, "client", "the computes publish tenant lifecycle events"))
        if broker.port("cluster"):
            out.append(_to(broker, broker, "cluster", "NATS cluster routes between the servers"))
        if "Stream" in model.kinds:
            nack = model.pod("nack", settings.beacon.nack_namespace)
            out.append(_to(nack, broker, "client", "NACK creates the lifecycle stream"))
    if refs.object_store:
        store = model.pod(refs.object_store.name)
        for c in computes:
            out.append(_to(c, store, "s3", "the computes store tenant uploads"))
    private = model.host("private-network")
    for c in computes:
        out.append(Expectation(c, private, 443, "TCP", "the computes call private hosts of the fabric's cidr"))
    for prometheus in model.of_kind("Prometheus pod"):
        for target, port in model.scrapes:
            out.append(_to(prometheus, target, port, "Prometheus scrapes what its monitors select"))
        out += _api(prometheus, model, "Prometheus discovers its targets through the API")
        if "ScaledObject" in model.kinds:
            keda = model.pod("keda-operator", settings.insight.keda_namespace)
            out.append(_to(keda, prometheus, "web", "KEDA's Prometheus trigger queries requests/s"))
    for solver in (p for p in model.fabric_pods if p.kind == "HTTP-01 solver"):
        edge = model.pod("traefik", settings.edge.controller_namespace)
        out.append(_to(edge, solver, "http", "ACME HTTP-01: the CA's request reaches the solver through the edge"))
    if model.has_host("idp"):
        for sso in refs.ssos:
            idp = model.host("idp")
            out.append(
                Expectation(model.pod(sso.name), idp, idp.ports[0].number, "TCP", "the login proxy talks to the IdP")
            )
    return out


def probe_ports(target: Endpoint) -> list[tuple[int, str]]:
    """(number, protocol) a forbidden flow is tried on: what the target declares, and PROBE_PORTS."""
    return sorted({(p.number, p.protocol) for p in target.ports} | {(n, "TCP") for n in PROBE_PORTS})


def intruders(model: Model) -> list[Pod]:
    """A pod in another namespace for every label set of the fabric's pods: they must get nowhere."""
    seen: dict[tuple, Pod] = {}
    for p in model.fabric_pods:
        seen.setdefault(p.labels, _with_ip(
            Pod(INTRUDER_NAMESPACE, f"fake-{p.name}", p.kind, p.layer, p.labels, p.ports, "test", ""),
            str(ipaddress.ip_network(POD_CIDR)[60000 + len(seen)]),
        ))  # fmt: skip
    return list(seen.values())


def forbidden(model: Model) -> list[Expectation]:
    """Flows that must stay closed, with why; each is tried on every port in `probe_ports`."""
    refs, settings = model.refs, model.settings
    fabric = model.fabric_pods
    outside = [p for p in model.pods if p.namespace != model.fabric] + intruders(model)
    dns = model.pod("coredns", "kube-system")
    allowed_hops = {(s, t, t.port(n).number) for s, t, n in edge_chain(model)}  # type: ignore[union-attr]  # edge_chain names declared ports only
    out: list[Expectation] = []

    def never(source: Endpoint, target: Endpoint, reason: str, unless=lambda port: False) -> None:
        for number, protocol in probe_ports(target):
            if not unless(number):
                out.append(Expectation(source, target, number, protocol, reason))

    edge = model.pod("traefik", settings.edge.controller_namespace)
    solvers = model.of_kind("HTTP-01 solver")
    for pod in fabric:
        entry = {n for s, t, n in allowed_hops if s == edge and t == pod}
        if pod in solvers:
            entry.add(8089)
        fronted = any(t == pod for s, t, _ in allowed_hops if s != edge)
        reason = (
            "WAF or login-proxy bypass: the edge reaches this tier only through the one in front of it"
            if fronted
            else "the edge reaches a public workload on its entry port only, and nothing else in the fabric"
            if model.public
            else "the fabric is not public (publica: false): the edge reaches nothing in it"
        )
        never(edge, pod, reason, unless=lambda n, entry=entry: n in entry)
    instances = [p for p in fabric if p.label_map.get("cnpg.io/podRole") == "instance"]
    for compute in model.layer("compute"):
        for instance in instances:
            never(compute, instance, "pooler bypass: the computes reach PostgreSQL through PgBouncer only")
        for other in outside:
            never(
                compute, other, "the computes never reach other namespaces (kube-dns aside)",
                unless=lambda n, other=other: other == dns and n == 53,
            )  # fmt: skip
    for intruder in intruders(model):
        for pod in fabric:
            never(intruder, pod, "a pod of another namespace carrying our labels is nobody here")
    needed = {(e.source, e.target, e.port) for e in required(model)}
    for addon in (p for p in model.pods if p.namespace != model.fabric):
        for pod in fabric:
            never(
                addon,
                pod,
                "other namespaces reach the fabric on the required flows only",
                unless=lambda n, a=addon, p=pod: (a, p, n) in needed,
            )
    api_talkers = {p for p in fabric if "cnpg.io/cluster" in p.label_map} | set(model.of_kind("Prometheus pod"))
    internet = model.host("internet")
    ssos = {model.pod(s.name) for s in refs.ssos}
    idp_port = settings.oidc.issuer_port if settings.oidc else None
    for pod in fabric:

        def excused(n: int, pod: Pod = pod) -> bool:
            # The IdP sits at addresses nobody can pin (sso.idp_policy_spec); without
            # apiServerCidr the API ports stay open to any address (docs/network.md).
            return (pod in ssos and n == idp_port) or (
                pod in api_talkers and not settings.api_server_cidr and n in API_SERVER_PORTS
            )

        never(pod, internet, "no fabric pod reaches the internet", unless=excused)
        if pod not in api_talkers:
            never(pod, model.host("api-server"), "only CNPG's pods and Prometheus talk to the API server")
        if pod.layer != "compute":
            never(
                pod,
                model.host("private-network"),
                "the blueprint's cidr is the computes' way to private hosts",
                unless=excused,
            )
    for waf_ref in refs.wafs:
        waf = model.pod(waf_ref.name)
        hop = model.pod(waf_ref.next_hop)
        hop_port = hop.port("http")
        targets: list[Endpoint] = [*fabric, *outside, *model.hosts]
        for target in targets:
            never(
                waf, target, "the WAF reaches its target, nothing else",
                unless=lambda n, t=target, hop=hop, p=hop_port: (t == hop and p is not None and n == p.number)
                or (t == dns and n == 53),
            )  # fmt: skip
    return out


def verdicts(model: Model) -> tuple[list[Expectation], list[Expectation]]:
    """(required flows the policies block, forbidden flows they let through)."""
    strict, loose = model.evaluator(ipblock_pods=False), model.evaluator(ipblock_pods=True)
    blocked = [e for e in required(model) if not strict.allows(e.source, e.target, e.port, e.protocol)]
    leaks = [e for e in forbidden(model) if loose.allows(e.source, e.target, e.port, e.protocol)]
    return blocked, leaks
