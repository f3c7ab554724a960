"""What can talk to what, as Mermaid: drawn from the flow model (flows.py), not re-derived.

Nodes are every pod the model says will run — the program's own, the ones operators create
from its custom resources, and the add-ons' that talk to the fabric — and the addresses
outside the pod network (the API server after DNAT, the IdP, the internet, the private cidr).
An arrow is a flow the NetworkPolicies allow, on the ports the receiver declares (for an
address, the ports the model gives it), drawn when one end is in the fabric. A required flow
the policies block is drawn crossed (`--x`), so a broken policy shows on the picture too.

The picture is laid out for a reviewer: top to bottom in the order a request travels
(internet → edge controller → WAF or login proxy → computes → pooler, broker and object
store → database), the operators' and add-ons' namespaces in a box of their own. Two
reductions keep the arrows few enough to read, neither hiding a flow: pods whose flows are
identical (a database's instances) are one node, and flows every pod of a box shares are
one arrow from or to the box.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import meta
from .flows import Endpoint, Host, Model, Pod, selects, verdicts

# The columns of the fabric, in request order: (id, title, layers). The datastore spans two:
# its pooler is what the computes call, its instances and Jobs sit behind it.
STAGES = (
    ("entry", "entry: gateway, WAF, login proxy", ("gateway", "sentinel", "sso")),
    ("compute", "computes", ("compute", "autoscale")),
    ("services", "pooler, broker, object store", ("beacon", "archive")),
    ("database", "database", ("datastore",)),
    ("observability", "metrics", ("insight",)),
)
POOLER_KIND = "CNPG pooler"
OPERATORS = "operators"


def _id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_")


def edges(model: Model) -> dict[tuple[Endpoint, Endpoint], list[str]]:
    """(source, target) → the "PROTO port" entries the policies allow, for pairs touching the fabric."""
    evaluator = model.evaluator()
    nodes: list[Endpoint] = [*model.pods, *model.hosts]
    found: dict[tuple[Endpoint, Endpoint], list[str]] = {}
    for src in model.pods:
        for dst in nodes:
            if src.namespace != model.fabric and not (isinstance(dst, Pod) and dst.namespace == model.fabric):
                continue
            ports = sorted(
                {(p.protocol, p.number) for p in dst.ports if evaluator.allows(src, dst, p.number, p.protocol)}
            )
            if ports:
                found[(src, dst)] = [f"{proto} {number}" for proto, number in ports]
    return found


def relations(objects: Sequence[Mapping[str, Any]], known: Iterable[Pod]) -> list[tuple[str, str, str, str, str]]:
    """Non-network relations worth a dotted arrow: (node id, node label, layer, verb, pod id).

    Autoscalers (anything with `spec.scaleTargetRef`) scale their target; Ingresses route
    their hosts to the pods behind their backend Services.
    """
    known = list(known)
    by_name = {(p.namespace, p.name): p for p in known}
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
            node = _id("s", ns, md["name"])
            out.append((node, f"{md['name']}<br/>{o['kind']}", layer, "scales", by_name[(ns, target["name"])].id))
        if o.get("kind") == "Ingress":
            hosts = sorted({r["host"] for r in spec.get("rules") or [] if r.get("host")})
            more = f" +{len(hosts) - 3}" if len(hosts) > 3 else ""
            label = f"{md['name']}<br/>Ingress: {', '.join(hosts[:3])}{more}"
            backends = {
                p["backend"]["service"]["name"]
                for r in spec.get("rules") or []
                for p in (r.get("http") or {}).get("paths") or []
                if "service" in p.get("backend", {})
            }
            for svc in sorted(backends):
                selector = services.get((ns, svc))
                for p in known:
                    if selector and p.namespace == ns and selects({"matchLabels": selector}, p.label_map):
                        out.append((_id("i", ns, md["name"]), label, layer, "routes", p.id))
    return sorted(set(out))


def ports_text(ports: Iterable[str]) -> str:
    """ "TCP 5432", "UDP 53" → "5432", "53/udp": TCP is the rule, so only other protocols are named."""
    out = []
    for entry in ports:
        proto, number = entry.split(" ")
        out.append(number if proto == "TCP" else f"{number}/{proto.lower()}")
    return ", ".join(out)


def stage(pod: Pod, model: Model) -> str:
    """The box a pod is drawn in: a fabric column, the edge controller, or the operators'."""
    if pod.namespace == model.settings.edge.controller_namespace:
        return "edge"
    if pod.namespace != model.fabric:
        return OPERATORS
    if pod.kind == POOLER_KIND:
        return "services"
    return next((sid for sid, _, layers in STAGES if pod.layer in layers), "other")


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    box: str  # a stage id, "edge", or the operators' namespace box "ns_<namespace>"
    pods: tuple[Pod, ...]


def _merged_label(pods: Sequence[Pod]) -> str:
    if len(pods) == 1:
        return f"{pods[0].name}<br/>{pods[0].kind}"
    base = {p.kind.split(" (")[0] for p in pods}
    roles = [p.kind[len(p.kind.split(" (")[0]) :].strip(" ()") for p in pods]
    kind = f"{base.pop()} ×{len(pods)}" + (f" ({', '.join(r for r in roles if r)})" if any(roles) else "")
    return f"{', '.join(p.name for p in pods)}<br/>{kind}"


def nodes(model: Model, allowed: Mapping[tuple[Endpoint, Endpoint], Sequence[str]], crossed) -> list[Node]:
    """One node per pod, except that pods of one box and kind whose flows are the same once the
    two are swapped (a database's instances) are one node."""
    flows = {(s, d, tuple(ps), "allowed") for (s, d), ps in allowed.items()}
    flows |= {(s, d, tuple(ps), "crossed") for (s, d), ps in crossed.items()}

    def swapped(a: Pod, b: Pod) -> set:
        def swap(e: Endpoint) -> Endpoint:
            return b if e == a else a if e == b else e

        return {(swap(s), swap(d), ps, how) for s, d, ps, how in flows}

    def key(pod: Pod) -> tuple[str, str, str]:
        return (stage(pod, model), pod.namespace, pod.kind.split(" (")[0])

    classes: list[list[Pod]] = []
    for pod in sorted(model.pods, key=lambda p: (p.namespace, p.name)):
        same = next((c for c in classes if key(c[0]) == key(pod) and swapped(c[0], pod) == flows), None)
        if same is None:
            classes.append([pod])
        else:
            same.append(pod)
    found = []
    for pods in classes:
        box = stage(pods[0], model)
        box = _id("ns", pods[0].namespace) if box == OPERATORS else box
        found.append(Node(pods[0].id, _merged_label(pods), box, tuple(pods)))
    return found


def mermaid(model: Model, objects: Sequence[Mapping[str, Any]]) -> str:
    """A Mermaid `flowchart` laid out in request order; flows as labelled arrows (see the module doc)."""
    allowed = edges(model)
    blocked, _ = verdicts(model)
    crossed: dict[tuple[Endpoint, Endpoint], list[str]] = {}
    for e in blocked:
        crossed.setdefault((e.source, e.target), []).append(f"{e.protocol} {e.port}")
    crossed = {pair: sorted(set(ports)) for pair, ports in crossed.items()}
    drawn = nodes(model, allowed, crossed)
    node_of: dict[Endpoint, str] = {p: n.id for n in drawn for p in n.pods}
    pod_by_id = {p.id: p for p in model.pods}
    rels = [
        (node, label, layer, verb, node_of[pod_by_id[target]])
        for node, label, layer, verb, target in relations(objects, model.pods)
    ]
    # An Ingress or autoscaler sits in its layer's box (an Ingress routing to a web compute stays at the entry).
    box_of = {n.id: n.box for n in drawn}
    rel_box = {
        node: next((sid for sid, _, layers in STAGES if layer in layers), box_of[target])
        for node, _, layer, _, target in rels
    }

    hosts = sorted({h for pair in allowed for h in pair if isinstance(h, Host)}, key=lambda h: h.id)
    hosts += sorted({t for (_, t) in crossed if isinstance(t, Host)} - set(hosts), key=lambda h: h.id)
    edge_pod = next((p for p in model.pods if stage(p, model) == "edge"), None)
    internet = model.host("internet") if model.public and edge_pod and model.has_host("internet") else None

    # Node-level arrows, then one arrow from (to) a box when every pod node in it shares it.
    arrows: dict[tuple[str, str], str] = {}
    for (src, dst), ports in allowed.items():
        arrows[(node_of[src], node_of.get(dst, dst.id))] = ports_text(ports)
    members: dict[str, list[str]] = {}
    for n in drawn:
        members.setdefault(n.box, []).append(n.id)
        if n.box in {sid for sid, _, _ in STAGES} | {"other"}:
            members.setdefault(_id("ns", model.fabric), []).append(n.id)
    boxes = sorted(members, key=lambda b: (b != _id("ns", model.fabric), b))  # the fabric first: the widest
    for box in boxes:
        inside = members[box]
        if len(inside) < 2:
            continue
        for outside in sorted({d for (s, d) in arrows if s in inside and d not in inside}):
            shared = {arrows.get((s, outside), "") for s in inside}
            if len(shared) == 1 and "" not in shared:
                for s in inside:
                    del arrows[(s, outside)]
                arrows[(box, outside)] = shared.pop()
        for outside in sorted({s for (s, d) in arrows if d in inside and s not in inside}):
            shared = {arrows.get((outside, d), "") for d in inside}
            if len(shared) == 1 and "" not in shared:
                for d in inside:
                    del arrows[(outside, d)]
                arrows[(outside, box)] = shared.pop()

    # ELK lays the boxes out in request order where Mermaid's default (dagre) staggers them.
    lines = ["---", "config:", "  layout: elk", "---", "flowchart TB"]
    if internet:
        # The internet as where requests come from: its own node, so it stays on top even when a
        # pod may also reach the internet (the login proxy's IdP rule) further down.
        lines.append(f'  clients(["{internet.name}<br/>tenants and admins"])')
    if edge_pod:
        ns = edge_pod.namespace
        lines.append(f'  subgraph edge["edge controller · namespace {ns}"]')
        lines += [f'    {n.id}["{n.label}"]' for n in drawn if n.box == "edge"]
        lines.append("  end")
    lines.append(f'  subgraph {_id("ns", model.fabric)}["namespace {model.fabric} (the fabric)"]')
    for sid, title, _ in (*STAGES, ("other", "other", ())):
        inside = [f'      {n.id}["{n.label}"]' for n in drawn if n.box == sid]
        inside += sorted({f'      {node}["{label}"]' for node, label, _, _, _ in rels if rel_box[node] == sid})
        if inside:
            lines += [f'    subgraph {sid}["{title}"]', *inside, "    end"]
    lines.append("  end")
    lines += [f'  {h.id}(["{h.name}<br/>{h.ip}"])' for h in hosts]
    operator_boxes = sorted({n.box for n in drawn if n.box.startswith("ns_") and n.box != _id("ns", model.fabric)})
    if operator_boxes:
        lines.append(f'  subgraph {OPERATORS}["operators and add-ons"]')
        for box in operator_boxes:
            ns = next(n.pods[0].namespace for n in drawn if n.box == box)
            lines.append(f'    subgraph {box}["namespace {ns}"]')
            lines += [f'      {n.id}["{n.label}"]' for n in drawn if n.box == box]
            lines.append("    end")
        lines.append("  end")
    if internet and edge_pod:
        entry = [p.name for p in edge_pod.ports if p.name in ("web", "websecure")]
        lines.append(f'  clients -->|"{", ".join(entry)}"| {node_of[edge_pod]}')
    order = {n.id: i for i, n in enumerate(drawn)}
    lines += [
        f'  {s} -->|"{text}"| {d}'
        for (s, d), text in sorted(arrows.items(), key=lambda kv: (order.get(kv[0][0], -1), kv[0]))
    ]
    for (src, dst), ports in sorted(crossed.items(), key=lambda kv: (kv[0][0].id, kv[0][1].id)):
        lines.append(f'  {node_of[src]} --x|"blocked: {ports_text(ports)}"| {node_of.get(dst, dst.id)}')
    lines += [f"  {node} -.->|{verb}| {target}" for node, _, _, verb, target in sorted(set(rels))]
    return "\n".join(lines) + "\n"


def architecture_markdown(
    model: Model, objects: Sequence[Mapping[str, Any]], title: str, layers: Sequence[tuple[str, str]]
) -> str:
    """The `architecture.md` the render writes: the blueprint's layers and the Mermaid diagram."""
    listed = "\n".join(f"- `{nome}` ({tipo})" for nome, tipo in layers)
    return (
        f"# Architecture: {title}\n\n"
        "Generated by `python -m components render` from the flow model (components/flows.py); do not edit.\n"
        "Nodes are the pods that will run: the program's, those operators create from its custom resources,\n"
        "and the add-ons' that talk to the fabric; rounded nodes are addresses outside the pod network.\n"
        "Solid arrows are the flows the NetworkPolicies allow (the receiver's ports on the arrow, TCP unless\n"
        "marked; the sender's egress and the receiver's ingress both checked); a crossed arrow is a required\n"
        "flow they block. An arrow from or to a box stands for every pod in it; pods with identical flows\n"
        "are one node (×n). Dotted arrows are routes (Ingress → pods) and scaling (autoscaler → workload).\n\n"
        f"Blueprint layers:\n\n{listed}\n\n"
        f"```mermaid\n{mermaid(model, objects)}```\n"
    )
