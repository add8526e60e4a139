"""mkdocs hooks: the API reference and the configuration reference are generated at build time,
from the app's own `/openapi.json` and from the `Settings` field descriptions, so neither is
written twice nor drifts from the code (nothing generated is committed)."""

from __future__ import annotations

import json
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]

GENERATED = {"reference/api.md", "reference/configuration.md"}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    # This checkout's code, not whichever one the venv's editable install points at (mkdocs
    # restores sys.path after loading a hook, so this is done when the hook runs).
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))

    for uri, text in (
        ("reference/api.md", api_reference(openapi_document())),
        ("reference/configuration.md", configuration_reference()),
    ):
        files.append(File.generated(config, uri, content=text))
    return files


# --- the API reference ---------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """What `GET /openapi.json` serves, built from the app without starting it (the document
    does not depend on the database; an empty data dir keeps the build from touching one)."""
    from api.main import create_app
    from core.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        return create_app(Settings(data_dir=Path(tmp))).openapi()


def api_reference(spec: dict[str, Any]) -> str:
    out = [
        "# API reference",
        "",
        f"Generated from `/openapi.json` ({spec['info']['title']} {spec['info']['version']}) "
        "when this site was built. Every path is under the server's base URL; every operation "
        "but `/health` takes the bearer key. Errors are OpenAI's envelope: see "
        "[endpoints and errors](endpoints.md).",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method.upper(), path, op))
    for tag in sorted(by_tag):
        out += [f"## {tag}", ""]
        for method, path, op in by_tag[tag]:
            out += _operation(method, path, op, spec)
    return "\n".join(out) + "\n"


def _operation(method: str, path: str, op: dict, spec: dict) -> list[str]:
    out = [f"### `{method} {path}`", ""]
    if op.get("summary"):
        out += [f"**{op['summary']}**", ""]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    params = op.get("parameters") or []
    if params:
        out += ["| parameter | in | required | description |", "|---|---|---|---|"]
        for p in params:
            desc = p.get("description") or p.get("schema", {}).get("description") or ""
            out.append(
                f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                f"{_cell(desc)} |"
            )
        out.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        schema = _resolve(content.get("schema", {}), spec)
        out += [f"Request body (`{media}`):", ""] + _fields(schema, spec) + [""]
    codes = ", ".join(f"`{code}`" for code in op.get("responses", {}))
    out += [f"Responses: {codes}", ""]
    return out


def _resolve(schema: dict, spec: dict) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[-1]
    return {"title": name, **spec["components"]["schemas"][name]}


def _fields(schema: dict, spec: dict) -> list[str]:
    props = schema.get("properties")
    if not props:
        return [f"`{schema.get('title', 'body')}`"]
    required = set(schema.get("required", []))
    out = ["| field | required | description |", "|---|---|---|"]
    for name, prop in props.items():
        desc = prop.get("description") or _resolve(prop, spec).get("description") or ""
        out.append(f"| `{name}` | {'yes' if name in required else 'no'} | {_cell(desc)} |")
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# --- the configuration reference -----------------------------------------------------------


def configuration_reference() -> str:
    """One section per settings group, each setting under the flat `LATHE_*` variable that
    sets it and the `settings.<group>.<field>` path code reads it by."""
    from core.settings import Settings, setting_groups

    prefix = Settings.model_config.get("env_prefix", "").upper()
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    groups = setting_groups()
    out = [
        "# Configuration",
        "",
        "Every setting is an environment variable, read into the one `Settings` object "
        "(`core/settings.py`) in groups. Generated from the fields' descriptions when this "
        f"site was built. A group's field can also be set as `{prefix}<GROUP>{delimiter}<FIELD>` "
        f"(`{prefix}INFERENCE{delimiter}URL` is `{prefix}INFERENCE_URL`); JSON-typed values "
        "(lists, objects) are given as JSON.",
        "",
        "## General",
        "",
        *TABLE_HEAD,
    ]
    for name, field in Settings.model_fields.items():
        if name not in groups:
            out.append(_row(f"{prefix}{name.upper()}", f"settings.{name}", field))
    for group, model in groups.items():
        doc = " ".join((model.__doc__ or "").split())
        out += ["", f"## {group}", "", doc, "", *TABLE_HEAD]
        for name, field in model.model_fields.items():
            env = f"{prefix}{model.flat_name(name).upper()}"
            out.append(_row(env, f"settings.{group}.{name}", field))
    return "\n".join(out) + "\n"


TABLE_HEAD = ["| variable | read as | type | default | meaning |", "|---|---|---|---|---|"]


def _row(env: str, path: str, field: Any) -> str:
    default = field.get_default(call_default_factory=True)
    return (
        f"| `{env}` | `{path}` | {_cell(_type_name(field.annotation))} | "
        f"{_cell(_default(default))} | {_cell(field.description or '')} |"
    )


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "unset"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict | list):
        return "`" + json.dumps(value, default=_plain) + "`"
    return f"`{value}`"


def _plain(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else str(value)
