"""Validation problems: one type for every input error, one formatter for pydantic's.

Every layer of input checking (JSON syntax, field types, cross-references, stack
config) reports `Problem(path, message)`; the CLI prints them and the Pulumi program
raises them as one `pulumi.RunError`, so users never see a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidInput(Exception):
    """Raised with every problem found; never partially applied."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def join_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = f" (got {_describe(err['input'])})" if "input" in err else ""
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"must be {ctx['expected']}{got}"
    if kind == "union_tag_invalid":
        return f"must be one of {ctx['expected_tags']} (got {ctx['tag']!r})"
    if kind == "union_tag_not_found":
        return "required key is missing"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound}{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false{got}"
    if kind == "string_type":
        return f"must be a string{got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number{got}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list{got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object{got}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s){got}"
    if kind == "extra_forbidden":
        return "unknown key"
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _step(tp: Any, part: Any) -> Any:
    """The type found one loc part below `tp` (None when it cannot be followed)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _step(get_args(tp)[0], part)
    if origin in (Union, UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        for option in options:  # a discriminated union's tag names the member
            fields = getattr(option, "model_fields", {})
            tag = fields.get("tipo")
            if tag is not None and get_origin(tag.annotation) is Literal and part in get_args(tag.annotation):
                return option
        return next((found for found in (_step(o, part) for o in options) if found is not None), None)
    if origin in (tuple, list) and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict and isinstance(part, str):
        return get_args(tp)[1]
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
        for name, info in tp.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
    return None


def accepted_keys(model: type, loc: tuple) -> list[str] | None:
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    while get_origin(tp) in (Annotated, Union, UnionType):
        tp = next(a for a in get_args(tp) if a is not type(None))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return sorted(info.alias or name for name, info in tp.model_fields.items())
    return None


def from_validation_error(
    exc: ValidationError, prefix: tuple = (), drop: frozenset = frozenset(), model: type | None = None
) -> list[Problem]:
    """Turn pydantic errors into Problems.

    `drop` names loc parts that pydantic inserts but users never wrote (the tag of a
    discriminated union, e.g. `compute` in `recursos[2].compute.config`).
    """
    problems = []
    errors = exc.errors(include_url=False)
    for err in errors:
        if err["type"] == "too_short" and any(
            len(o["loc"]) > len(err["loc"]) and o["loc"][: len(err["loc"])] == err["loc"] for o in errors
        ):
            continue  # pydantic counts only the valid items; the invalid ones are reported already
        loc = tuple(p for p in err["loc"] if p not in drop)
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += (err["ctx"]["discriminator"].strip("'"),)
        if err["type"] == "field_error":
            loc += (err["ctx"]["field"],)
        message = _message(err)
        if err["type"] == "extra_forbidden" and model is not None:
            keys = accepted_keys(model, tuple(err["loc"][:-1]))
            if keys:
                message = f"unknown key; accepted: {', '.join(keys)}"
        problems.append(Problem(join_path(prefix + loc), message))
    return sorted(set(problems))
