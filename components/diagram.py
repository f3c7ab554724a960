"""What can talk to what, as Mermaid: drawn from the flow model (flows.py), not re-derived.

Nodes are every pod the model says will run — the program's own, the ones operators create
from its custom resources, and the add-ons' that talk to the fabric — and the addresses
outside the pod network (the API server after DNAT, the IdP, the internet, the private cidr).
An arrow is a flow the NetworkPolicies allow, on the ports the receiver declares (for an
address, the ports the model gives it), drawn when one end is in the fabric. A required flow
the policies block is drawn crossed (`--x`), so a broken policy shows on the picture too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import meta
from .flows import Endpoint, Host, Model, Pod, selects, verdicts


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


def _ports_text(ports: Sequence[str]) -> str:
    return ", ".join(ports)


def mermaid(model: Model, objects: Sequence[Mapping[str, Any]]) -> str:
    """A Mermaid `flowchart`: namespaces and layers as subgraphs, flows as labelled arrows.

    A flow every pod of the fabric has (DNS) is drawn once, from the namespace itself.
    """
    allowed = edges(model)
    blocked, _ = verdicts(model)
    rels = relations(objects, model.pods)
    by_ns: dict[str, list[Pod]] = {}
    for p in model.pods:
        by_ns.setdefault(p.namespace, []).append(p)
    lines = ["flowchart LR"]
    for ns in sorted(by_ns):
        lines.append(f'  subgraph {_id("ns", ns)}["namespace {ns}"]')
        layers: dict[str, list[tuple[str, str]]] = {}
        for p in sorted(by_ns[ns], key=lambda p: p.name):
            layers.setdefault(p.layer or "other", []).append((p.id, f"{p.name}<br/>{p.kind}"))
        for node_id, label, layer, _, target in rels:
            owner = next(p for p in model.pods if p.id == target)
            if owner.namespace == ns and (node_id, label) not in layers.setdefault(layer, []):
                layers[layer].append((node_id, label))
        for layer in sorted(layers):
            lines.append(f'    subgraph {_id("layer", ns, layer)}["{layer}"]')
            lines += [f'      {node}["{label}"]' for node, label in layers[layer]]
            lines.append("    end")
        lines.append("  end")
    hosts = sorted({h for pair in allowed for h in pair if isinstance(h, Host)}, key=lambda h: h.id)
    hosts += sorted({e.target for e in blocked if isinstance(e.target, Host)} - set(hosts), key=lambda h: h.id)
    lines += [f'  {h.id}(["{h.name}<br/>{h.ip}"])' for h in hosts]
    fabric = by_ns.get(model.fabric, [])
    shared = {
        dst: ports
        for (src, dst), ports in allowed.items()
        if src == fabric[0] and len(fabric) > 1 and all(allowed.get((p, dst)) == ports for p in fabric)
    }
    for dst, ports in sorted(shared.items(), key=lambda kv: kv[0].id):
        lines.append(f'  {_id("ns", model.fabric)} -->|"{_ports_text(ports)}"| {dst.id}')
    for (src, dst), ports in sorted(allowed.items(), key=lambda kv: (kv[0][0].id, kv[0][1].id)):
        if src in fabric and shared.get(dst) == ports:
            continue
        lines.append(f'  {src.id} -->|"{_ports_text(ports)}"| {dst.id}')
    crossed: dict[tuple[Endpoint, Endpoint], set[str]] = {}
    for e in blocked:
        crossed.setdefault((e.source, e.target), set()).add(f"{e.protocol} {e.port}")
    for (src, dst), missing in sorted(crossed.items(), key=lambda kv: (kv[0][0].id, kv[0][1].id)):
        lines.append(f'  {src.id} --x|"blocked: {_ports_text(sorted(missing))}"| {dst.id}')
    lines += [f"  {node} -.->|{verb}| {target}" for node, _, _, verb, target in rels]
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
        "Solid arrows are the flows the NetworkPolicies allow (the receiver's ports on the arrow; the\n"
        "sender's egress and the receiver's ingress both checked); a crossed arrow is a required flow\n"
        "they block. Dotted arrows are routes (Ingress → pods) and scaling (autoscaler → workload).\n\n"
        f"Blueprint layers:\n\n{listed}\n\n"
        f"```mermaid\n{mermaid(model, objects)}```\n"
    )
