"""The New job form's fields, read off the job spec's pydantic models, so the form offers
every method, adapter and data option the API accepts, with the API's own defaults and help."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from core.jobspec.job import AdapterSpec, DataOptions, Method


@dataclass(frozen=True)
class FormField:
    path: str  # dotted path in the job body, e.g. method.dpo.hyperparameters.beta
    name: str
    default: str  # as the form shows it: "auto", "8", "[]", "" for None
    choices: tuple[str, ...]  # for a select: the Literal values (and true/false for bools)
    help: str


@dataclass(frozen=True)
class MethodForm:
    type: str
    fields: list[FormField]


def _literals(annotation: Any) -> list[str]:
    """Every Literal value and bool an annotation admits (through unions and Annotated)."""
    if typing.get_origin(annotation) is Literal:
        return [str(v) for v in typing.get_args(annotation)]
    if annotation is bool:
        return ["true", "false"]
    return [v for arg in typing.get_args(annotation) for v in _literals(arg)]


def _free_form(annotation: Any) -> bool:
    """Whether the field also takes values no select could list (numbers, text, lists)."""
    if typing.get_origin(annotation) is Literal or annotation in (bool, type(None)):
        return False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_free_form(a) for a in args)
    if typing.get_origin(annotation) is typing.Annotated:
        return _free_form(args[0])
    return True


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _field(prefix: str, name: str, info: FieldInfo) -> FormField:
    # a required field (a distillation teacher, an RFT grader) has no default to show
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        default = default.model_dump()
    choices = () if _free_form(info.annotation) else tuple(_literals(info.annotation))
    return FormField(f"{prefix}.{name}", name, _shown(default), choices, info.description or "")


def fields_of(model: type[BaseModel], prefix: str, skip: tuple[str, ...] = ()) -> list[FormField]:
    return [_field(prefix, n, f) for n, f in model.model_fields.items() if n not in skip]


def _model_in(annotation: Any) -> type[BaseModel]:
    """The pydantic model in `X | None`."""
    return next(a for a in typing.get_args(annotation) if isinstance(a, type))


def method_forms() -> list[MethodForm]:
    """One form section per `method.type`: its block's own fields (a PPO/GRPO reward), then
    its hyperparameters."""
    forms = []
    for kind in typing.get_args(Method.model_fields["type"].annotation):
        block = _model_in(Method.model_fields[kind].annotation)
        own = fields_of(block, f"method.{kind}", skip=("hyperparameters",))
        if "hyperparameters" in block.model_fields:  # an eval job has none: it trains nothing
            hyper = block.model_fields["hyperparameters"].annotation
            own += fields_of(hyper, f"method.{kind}.hyperparameters")
        forms.append(MethodForm(kind, own))
    return forms


def adapter_fields() -> list[FormField]:
    return fields_of(AdapterSpec, "adapter")


def data_fields() -> list[FormField]:
    return fields_of(DataOptions, "data")
