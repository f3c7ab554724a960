"""What can talk to what: network flows derived from the rendered NetworkPolicies, as Mermaid.

Pure functions over rendered manifests (`render.manifests`). Workloads are the pod
templates (Deployments, StatefulSets, ...) and the pods operators create from custom
resources (`OPERATOR_PODS`). A flow A → B between two rendered workloads is drawn only
when A's egress policies let it reach B *and* B's ingress policies let A in, on the
ports both allow; a flow to or from something outside the render (another namespace,
an ipBlock) is drawn from the one side the render shows. A pod no policy isolates in a
direction is open in that direction, as in Kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import meta
from .podsecurity import pod_spec, pod_template_labels

NS_NAME_LABEL = "kubernetes.io/metadata.name"
# Pods an operator creates from a custom resource, by the labels it puts on them.
OPERATOR_PODS: dict[tuple[str, str], Callable[[str], dict]] = {
    ("postgresql.cnpg.io", "Cluster"): lambda name: {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"},
    ("postgresql.cnpg.io", "Pooler"): lambda name: {"cnpg.io/poolerName": name},
    ("monitoring.coreos.com", "Prometheus"): lambda name: {
        "app.kubernetes.io/name": "prometheus",
        "operator.prometheus.io/name": name,
    },
}
ALL = None  # every port


@dataclass(frozen=True)
class Workload:
    namespace: str
    name: str
    kind: str
    layer: str
    labels: tuple  # sorted (key, value) pairs
    named_ports: tuple  # sorted (name, (protocol, number)) pairs

    @property
    def id(self) -> str:
        return _id("w", self.namespace, self.name)

    def label_map(self) -> dict:
        return dict(self.labels)


@dataclass(frozen=True)
class External:
    id: str
    label: str


@dataclass(frozen=True)
class Flow:
    """`source` reaches `target` on `ports` (frozenset of "PROTO port" strings, or ALL)."""

    source: Any
    target: Any
    ports: frozenset | None


def _id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_")


def _group(obj: Mapping[str, Any]) -> str:
    api = obj.get("apiVersion", "")
    return api.rsplit("/", 1)[0] if "/" in api else ""


def workloads(objects: Sequence[Mapping[str, Any]]) -> list[Workload]:
    found = []
    for o in objects:
        md = o.get("metadata") or {}
        layer = (md.get("labels") or {}).get(meta.LAYER_LABEL, "")
        operator = OPERATOR_PODS.get((_group(o), o.get("kind")))
        spec = pod_spec(o)
        if spec is not None:
            labels = pod_template_labels(o) or {}
            ports = {
                p["name"]: (p.get("protocol", "TCP"), p["containerPort"])
                for c in spec.get("containers") or []
                for p in c.get("ports") or []
                if p.get("name")
            }
        elif operator is not None:
            labels, ports = operator(md.get("name")), {}
        else:
            continue
        found.append(
            Workload(
                md.get("namespace", ""),
                md.get("name"),
                o["kind"],
                layer,
                tuple(sorted(labels.items())),
                tuple(sorted(ports.items())),
            )
        )
    return sorted(found, key=lambda w: (w.namespace, w.name))


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector; an empty (or absent) selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def _selector_text(selector: Mapping[str, Any] | None) -> str:
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    parts += [
        f"{e['key']} {e['operator']} {sorted(e.get('values') or [])}" for e in selector.get("matchExpressions") or []
    ]
    return ", ".join(parts)


def policy_types(spec: Mapping[str, Any]) -> set:
    """A NetworkPolicy's directions after the API server's defaulting: Ingress, and Egress when it has egress rules."""
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _ports(rule: Mapping[str, Any], pod: Workload | None) -> frozenset | None:
    """A rule's ports as "PROTO port" strings; named ports resolved against the pod they are on."""
    if not rule.get("ports"):
        return ALL
    named = dict(pod.named_ports) if pod else {}
    out = set()
    for p in rule["ports"]:
        proto, port = p.get("protocol", "TCP"), p.get("port")
        if port is None:
            out.add(f"{proto} all")
            continue
        if isinstance(port, str) and port in named:
            proto, port = named[port]
        out.add(f"{proto} {port}" + (f"-{p['endPort']}" if p.get("endPort") else ""))
    return frozenset(out)


def _union(a, b):
    return ALL if a is ALL or b is ALL else a | b


def _admits(ports: frozenset, entry: str) -> bool:
    # "PROTO all" (a port entry without a port) admits every port of that protocol.
    return entry in ports or f"{entry.split(' ')[0]} all" in ports


def _intersect(a, b):
    if a is ALL:
        return b
    if b is ALL:
        return a
    return frozenset(p for p in a if _admits(b, p)) | frozenset(p for p in b if _admits(a, p))


class _Model:
    def __init__(self, objects: Sequence[Mapping[str, Any]]):
        self.workloads = workloads(objects)
        self.namespaces = {
            (o["metadata"]["name"]): {**(o["metadata"].get("labels") or {}), NS_NAME_LABEL: o["metadata"]["name"]}
            for o in objects
            if o.get("kind") == "Namespace"
        }
        for w in self.workloads:
            self.namespaces.setdefault(w.namespace, {NS_NAME_LABEL: w.namespace})
        self.policies = [
            (o["metadata"].get("namespace", ""), o.get("spec") or {})
            for o in objects
            if o.get("kind") == "NetworkPolicy" and _group(o) == "networking.k8s.io"
        ]

    def selecting(self, w: Workload, direction: str) -> list[Mapping[str, Any]]:
        return [
            s
            for ns, s in self.policies
            if ns == w.namespace and direction in policy_types(s) and matches(s.get("podSelector"), w.label_map())
        ]

    def peer(self, peer: Mapping[str, Any], home: str) -> tuple[list[Workload], External | None]:
        """The rendered workloads a peer selects, and the outside endpoint it names (if any)."""
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            text = block["cidr"] + (f" except {', '.join(block['except'])}" if block.get("except") else "")
            return [], External(_id("net", text), text)
        pods = peer.get("podSelector")
        if "namespaceSelector" not in peer:
            return [w for w in self.workloads if w.namespace == home and matches(pods, w.label_map())], None
        ns_sel = peer["namespaceSelector"] or {}
        inside = [
            w for w in self.workloads if matches(ns_sel, self.namespaces[w.namespace]) and matches(pods, w.label_map())
        ]
        named = (ns_sel.get("matchLabels") or {}).get(NS_NAME_LABEL)
        # A rendered namespace whose pods all come from elsewhere (an add-on's Helm chart) is
        # still drawn as the outside endpoint it is.
        if (
            inside
            and named in self.namespaces
            and set(ns_sel.get("matchLabels") or {}) == {NS_NAME_LABEL}
            and not ns_sel.get("matchExpressions")
        ):
            return inside, None
        where = (
            f"ns {named}"
            if named and len(ns_sel.get("matchLabels") or {}) == 1
            else ("any namespace" if not _selector_text(ns_sel) else f"ns matching {_selector_text(ns_sel)}")
        )
        pod_text = _selector_text(pods)
        label = f"{where}: {pod_text}" if pod_text else where
        return inside, External(_id("ext", label), label)


ANYWHERE = External("anywhere", "anywhere")


def flows(objects: Sequence[Mapping[str, Any]]) -> list[Flow]:
    """Every flow the rendered NetworkPolicies allow, merged per (source, target)."""
    model = _Model(objects)
    ingress: dict[tuple, frozenset | None] = {}  # (source, target workload) → ports the target admits
    egress: dict[tuple, frozenset | None] = {}  # (source workload, target) → ports the source may send to
    for w in model.workloads:
        for direction, rules_key, peers_key, table in (
            ("Ingress", "ingress", "from", ingress),
            ("Egress", "egress", "to", egress),
        ):
            policies = model.selecting(w, direction)
            rules = [r for s in policies for r in s.get(rules_key) or []] if policies else [{}]
            for rule in rules:
                peers = rule.get(peers_key)
                for peer in peers if peers else [None]:
                    inside, outside = ([], ANYWHERE) if peer is None else model.peer(peer, w.namespace)
                    if peer is None:
                        inside = list(model.workloads)
                    for other in [*inside, *([outside] if outside else [])]:
                        if direction == "Ingress":
                            key, pod = (other, w), w
                        else:
                            key, pod = (w, other), other if isinstance(other, Workload) else None
                        ports = _ports(rule, pod)
                        table[key] = _union(table[key], ports) if key in table else ports
    found = {}
    for (src, dst), in_ports in ingress.items():
        if isinstance(src, Workload):
            if (src, dst) in egress:
                ports = _intersect(egress[(src, dst)], in_ports)
                if ports is ALL or ports:
                    found[(src, dst)] = ports
        else:
            found[(src, dst)] = in_ports
    for (src, dst), out_ports in egress.items():
        if not isinstance(dst, Workload):
            found[(src, dst)] = out_ports
    return sorted((Flow(s, d, p) for (s, d), p in found.items() if s != d), key=lambda f: (f.source.id, f.target.id))


def _port_text(ports: frozenset | None) -> str:
    return (
        "all ports"
        if ports is ALL
        else ", ".join(sorted(ports, key=lambda p: (p.split(" ")[0], int(re.sub(r"\D.*", "", p.split(" ")[1]) or 0))))
    )


def relations(objects: Sequence[Mapping[str, Any]], known: Iterable[Workload]) -> list[tuple[str, str, str, str, str]]:
    """Non-network relations worth a dotted arrow: (node id, node label, layer, verb, workload id).

    Autoscalers (anything with `spec.scaleTargetRef`) scale their target; Ingresses route
    their hosts to the workloads behind their backend Services.
    """
    by_name = {(w.namespace, w.name): w for w in known}
    services = {
        (o["metadata"].get("namespace", ""), o["metadata"]["name"]): (o.get("spec") or {}).get("selector") or {}
        for o in objects
        if o.get("kind") == "Service"
    }
    out = []
    for o in objects:
        md, spec = o.get("metadata") or {}, o.get("spec") or {}
        ns = md.get("namespace", "")
        layer = (md.get("labels") or {}).get(meta.LAYER_LABEL) or o.get("kind", "").lower()
        target = spec.get("scaleTargetRef")
        if target and (ns, target.get("name")) in by_name:
            out.append(
                (
                    _id("s", ns, md["name"]),
                    f"{md['name']}<br/>{o['kind']}",
                    layer,
                    "scales",
                    by_name[(ns, target["name"])].id,
                )
            )
        if o.get("kind") == "Ingress":
            hosts = sorted({r["host"] for r in spec.get("rules") or [] if r.get("host")})
            label = f"{md['name']}<br/>Ingress: {', '.join(hosts[:3])}" + (
                f" +{len(hosts) - 3}" if len(hosts) > 3 else ""
            )
            backends = {
                p["backend"]["service"]["name"]
                for r in spec.get("rules") or []
                for p in (r.get("http") or {}).get("paths") or []
                if "service" in p.get("backend", {})
            }
            for svc in sorted(backends):
                selector = services.get((ns, svc))
                for w in known:
                    if selector and w.namespace == ns and matches({"matchLabels": selector}, w.label_map()):
                        out.append((_id("i", ns, md["name"]), label, layer, "routes", w.id))
    return sorted(set(out))


def mermaid(objects: Sequence[Mapping[str, Any]]) -> str:
    """A Mermaid `flowchart`: namespaces and layers as subgraphs, flows as labelled arrows.

    A flow every workload of a namespace has in common (DNS, the private network) is drawn
    once from the namespace itself.
    """
    model = _Model(objects)
    all_flows = flows(objects)
    rels = relations(objects, model.workloads)
    members: dict[str, set] = {}
    for w in model.workloads:
        members.setdefault(w.namespace, set()).add(w)
    lines = ["flowchart LR"]
    for ns in sorted(members):
        lines.append(f'  subgraph {_id("ns", ns)}["namespace {ns}"]')
        layers: dict[str, list] = {}
        for w in sorted(members[ns], key=lambda w: w.name):
            layers.setdefault(w.layer or "other", []).append((w.id, f"{w.name}<br/>{w.kind}"))
        for node_id, label, layer, _, target in rels:
            owner = next(w for w in model.workloads if w.id == target)
            if owner.namespace == ns:
                if (node_id, label) not in layers.setdefault(layer, []):
                    layers[layer].append((node_id, label))
        for layer in sorted(layers):
            lines.append(f'    subgraph {_id("layer", ns, layer)}["{layer}"]')
            lines += [f'      {node}["{label}"]' for node, label in layers[layer]]
            lines.append("    end")
        lines.append("  end")
    externals = sorted(
        {e for f in all_flows for e in (f.source, f.target) if isinstance(e, External)}, key=lambda e: e.id
    )
    lines += [f'  {e.id}(["{e.label}"])' for e in externals]
    drawn = set()
    for f in all_flows:
        src, dst = f.source, f.target
        for ns, group in members.items():
            # Collapse a flow shared by every workload of a namespace onto the namespace.
            if (
                isinstance(src, Workload)
                and not isinstance(dst, Workload)
                and src.namespace == ns
                and len(group) > 1
                and all(Flow(w, dst, f.ports) in all_flows for w in group)
            ):
                src = _Named(_id("ns", ns))
            if (
                isinstance(dst, Workload)
                and not isinstance(src, (Workload, _Named))
                and dst.namespace == ns
                and len(group) > 1
                and all(Flow(src, w, f.ports) in all_flows for w in group)
            ):
                dst = _Named(_id("ns", ns))
        edge = f'  {src.id} -->|"{_port_text(f.ports)}"| {dst.id}'
        if edge not in drawn:
            drawn.add(edge)
            lines.append(edge)
    lines += [f"  {node} -.->|{verb}| {target}" for node, _, _, verb, target in rels]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Named:
    id: str


def architecture_markdown(objects: Sequence[Mapping[str, Any]], title: str, layers: Sequence[tuple[str, str]]) -> str:
    """The `architecture.md` the render writes: the blueprint's layers and the Mermaid diagram."""
    listed = "\n".join(f"- `{nome}` ({tipo})" for nome, tipo in layers)
    return (
        f"# Architecture: {title}\n\n"
        "Generated by `python -m components render` from the rendered objects; do not edit.\n"
        "Solid arrows are the network flows the rendered NetworkPolicies allow (ports on the arrow;\n"
        "between two workloads only when the sender's egress and the receiver's ingress both allow it).\n"
        "Dotted arrows are routes (Ingress → workload) and scaling (autoscaler → workload).\n\n"
        f"Blueprint layers:\n\n{listed}\n\n"
        f"```mermaid\n{mermaid(objects)}```\n"
    )
