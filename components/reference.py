"""The configuration reference (docs/configuration.md), generated from the pydantic models.

Every key of the stack configuration (`Settings`, components/settings.py) and of the
blueprint (`Blueprint`, components/blueprint.py) with its type, default and validation
rules, read off the models themselves: constraints (`Field(ge=...)`, `Literal`), the
docstrings of the validators a field runs and of the models' cross-field validators, and
the comment written above the field in the source as its description. The page cannot
drift: tests/test_reference.py fails when it differs from what this module writes, and
`make golden` (or `python -m components config-reference --out docs/configuration.md`)
rewrites it.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, SecretStr
from pydantic.fields import FieldInfo

from .blueprint import TIPOS, Blueprint
from .settings import PROJECT, Settings

PAGE = "docs/configuration.md"
FIELD = re.compile(r"^    (\w+):")


def comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name → the comment block right above it in the class body (nearest class in the MRO)."""
    found: dict[str, str] = {}
    for cls in reversed([c for c in model.__mro__ if issubclass(c, BaseModel) and c is not BaseModel]):
        try:
            source = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        block: list[str] = []
        for line in source[1:]:
            stripped = line.strip()
            if line.startswith("    #"):
                block.append(stripped.lstrip("#").strip())
                continue
            match = FIELD.match(line)
            if match and block:
                found[match.group(1)] = " ".join(block)
            if not line.startswith("        "):
                block = []
    return found


def _doc(func: Any) -> str:
    """The first paragraph of an object's own docstring, on one line."""
    doc = inspect.cleandoc(func.__doc__ or "")
    return " ".join(doc.split("\n\n")[0].split())


def _constraint(item: Any, unit: str = "item") -> str | None:
    bounds = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
    for attr, sign in bounds:
        if isinstance(item, getattr(annotated_types, attr.capitalize())):
            return f"{sign} {getattr(item, attr)}"
    if isinstance(item, annotated_types.MinLen):
        return f"at least {item.min_length} {unit}{'' if item.min_length == 1 else 's'}"
    if isinstance(item, annotated_types.MaxLen):
        return f"at most {item.max_length} {unit}s"
    if isinstance(item, AfterValidator | BeforeValidator):
        return _doc(item.func).rstrip(".") or None
    if isinstance(item, FieldInfo):
        return "; ".join(r for r in (_constraint(m, unit) for m in item.metadata) if r) or None
    return None


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """An annotation without `Annotated` and `| None`, and the metadata found on the way."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *more = typing.get_args(annotation)
            metadata += more
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, metadata
            annotation = args[0]
        else:
            return annotation, metadata


def type_name(annotation: Any) -> str:
    annotation, _ = _unwrap(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is tuple:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} → {type_name(args[1])}"
    if origin in (typing.Union, types.UnionType):
        if all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
            return "object, by `tipo` (below)"
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if annotation is SecretStr:
        return "string (a Pulumi secret)"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return str(annotation)


def rules(info: FieldInfo) -> list[str]:
    """What a value must satisfy: the field's constraints, then its items' (`each: ...`)."""
    annotation, inner = _unwrap(info.annotation)
    unit = "character" if annotation is str else "item"
    found = [r for r in (_constraint(m, unit) for m in [*info.metadata, *inner]) if r]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        found.insert(0, "one of " + ", ".join(f"`{a}`" for a in args))
    if origin in (tuple, dict):
        for label, arg in zip(("each" if origin is tuple else "each key", "each value"), args, strict=False):
            if arg is Ellipsis:
                continue
            _, item_meta = _unwrap(arg)
            found += [f"{label}: {r}" for r in map(_constraint, item_meta) if r]
    return found


def _value(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None:
        return "unset"
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{json.dumps(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def default(info: FieldInfo, instance: BaseModel | None = None, name: str = "") -> str:
    """The field's default; inside an object whose default is set (rateLimits.business), that object's value."""
    if instance is not None:
        return _value(getattr(instance, name))
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return _value(info.default_factory())  # type: ignore[call-arg]  # the models' factories take no argument
    return _value(info.default)


def nested(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """(path suffix, model) when the field holds models: an object, a list or a map of them."""
    annotation, _ = _unwrap(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "", annotation
    if origin is tuple and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return "[]", args[0]
    if origin is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return ".<name>", args[1]
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) > 1:
            return "", models[0]
    return None


def key_of(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    return info.alias or name


def sections(
    model: type[BaseModel], path: str, instance: BaseModel | None = None
) -> Iterator[tuple[str, type[BaseModel], BaseModel | None]]:
    """(path, model, its default value if one is set) for the model and every model below it, depth first."""
    yield path, model, instance
    for name, info in model.model_fields.items():
        below = nested(info.annotation)
        if below:
            suffix, sub = below
            value = getattr(instance, name) if instance is not None else info.default
            sub_default = value if isinstance(value, BaseModel) and not suffix else None
            sub_path = f"{path}.{key_of(model, name)}{suffix}" if path else key_of(model, name) + suffix
            yield from sections(sub, sub_path, sub_default)


def anchor(title: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _text(text: str) -> str:
    """Prose for a table cell: placeholders like <id> shown, not read as HTML; pipes escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts).replace(
        "|", "\\|"
    )


def table(model: type[BaseModel], path: str, instance: BaseModel | None = None) -> list[str]:
    notes = comments(model)
    rows = ["| key | type | default | rules | description |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = key_of(model, name)
        below = nested(info.annotation)
        kind = type_name(info.annotation)
        note = notes.get(name, "")
        if below:
            suffix, sub = below
            note = note or (_doc(sub) if sub.__doc__ else "")
            target = f"{path}.{key}{suffix}" if path else key + suffix
            kind = f"{kind}: [`{target}`](#{anchor(target)})"
        shown = default(info, instance, name).replace("|", "\\|")
        cells = [f"`{key}`", kind, shown, _text("; ".join(rules(info))), _text(note)]
        rows.append("| " + " | ".join(cells) + " |")
    checks = [_doc(v.func) for v in model.__pydantic_decorators__.model_validators.values()]
    if any(checks):
        rows += ["", *(f"Also checked: {_text(c)}" for c in checks if c)]
    return rows


def page() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m components config-reference` from the pydantic models in",
        "components/settings.py and components/blueprint.py; do not edit (tests/test_reference.py",
        "fails when this page and the models differ; `make golden` rewrites it). -->",
        "",
        "Two inputs, both validated before anything is registered (`make validate` runs the same",
        "checks offline). Unknown keys anywhere are errors that list the accepted keys; every",
        "problem is reported as `path: message`. Checks that span keys or resources run once each",
        "part is well-formed: `cross_check_settings` in components/settings.py (tenant ids and",
        "domains, purge and protect, the connection budget, the WAF's map size) and `cross_check`",
        "in components/blueprint.py (unique names, targets, one fabric).",
        "",
        f"- [Stack configuration (`{PROJECT}:*`)](#stack-configuration):",
        f"  `pulumi config set --path '{PROJECT}:<key>' <value>`,",
        "  or the stack file `Pulumi.<stack>.yaml`.",
        "- [Blueprint](#blueprint): the vendor's JSON (Portuguese keys), `blueprints/b2b-platform.json`.",
        "",
        "## Stack configuration",
        "",
        'Values from `pulumi config` arrive as strings (`"true"`, `"3"`, JSON for objects) and are',
        "read as the type below; list keys marked *comma list* also take one comma-separated string.",
        "",
    ]
    for path, model, instance in sections(Settings, ""):
        title = path or f"{PROJECT}:*"
        lines += [f"### `{title}`", ""]
        if model.__doc__ and model is not Settings:
            lines += [_text(_doc(model)), ""]
        lines += [*table(model, path, instance), ""]
    lines += [
        "## Blueprint",
        "",
        "Every resource is `{nome, tipo, config}`; `tipo` picks the config below.",
        "",
    ]
    resource_models = {tipo: _resource_config(tipo) for tipo in TIPOS}
    for path, model, _ in sections(Blueprint, ""):
        lines += [f"### `{path or 'blueprint'}`", "", *table(model, path), ""]
    for tipo, model in resource_models.items():
        lines += [f"### `recursos[]` with `tipo: {tipo}`", "", *table(model, f"recursos[].config ({tipo})"), ""]
    return "\n".join(lines).rstrip() + "\n"


def _resource_config(tipo: str) -> type[BaseModel]:
    from . import blueprint

    resource = getattr(blueprint, tipo.capitalize())
    return resource.model_fields["config"].annotation
