"""`/openapi.json` that says what the server really answers.

FastAPI declares 200 and a 422 with its own `{"detail": …}` for every operation; Lathe answers
400 (never 422) and every error in OpenAI's envelope. This rewrites the generated document in
one place instead of decorating each route: per operation the error statuses it can return
(below), each with the envelope schema and, for 429/503, the `Retry-After` header; a bearer
security scheme on every operation but `/health`; the media types of the download routes and
of the server-sent-event streams; binary multipart file parts; the `metadata[key]` list filter;
typed `method` / `adapter` / `data` / `hyperparameters` on the job object (stored as JSON, so
the route's model keeps them as dicts). Generated SDKs (tests/api/test_sdk.py) read this.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.gate import is_public

ENVELOPE = "#/components/schemas/ErrorResponse"
DESCRIPTIONS = {
    400: "Invalid request: `error.param` names the field",
    401: "Missing or incorrect API key",
    404: "No such object (another organization's ids are not found either)",
    409: "Conflict with the object's state",
    413: "Request body or file too large",
    429: "Rate limit or quota reached: retry after `Retry-After` seconds",
    503: "A database or storage outage: retry after `Retry-After` seconds",
}
EXTRA_STATUSES = {
    "deleteModel": {409},
    "adminDeleteOrganization": {409},
    "createFile": {413},
}
"""Statuses only some operations return, beyond those every operation of their kind returns."""

MEDIA_TYPES = {
    "downloadFile": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    },
    "downloadModel": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
}

SSE = {
    "type": "string",
    "description": "Server-sent events: `id:` and `data:` lines, each data a JSON object of "
    "the JSON response's item type; the last data is `[DONE]`.",
}
STREAMS = {"listFineTuningEvents": "stream=true", "createChatCompletion": '"stream": true'}
"""Operations that answer `text/event-stream` when asked (how), besides their JSON."""

METADATA_FILTER = {
    "name": "metadata",
    "in": "query",
    "required": False,
    "style": "deepObject",
    "explode": True,
    "description": "`metadata[key]=value`: only jobs whose metadata has these values.",
    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
}
FILTERS = {"listFineTuningJobs": [METADATA_FILTER]}
"""Query parameters a route reads from the raw query string (FastAPI cannot declare them)."""

JOB_FIELDS = {
    "method": {"$ref": "#/components/schemas/Method"},
    "adapter": {"$ref": "#/components/schemas/AdapterSpec"},
    "data": {"$ref": "#/components/schemas/DataOptions"},
    "hyperparameters": {"$ref": "#/components/schemas/JobHyperparameters"},
}
"""The job object's spec fields: the request's own schemas (what was asked, defaults filled)."""

JOB_HYPERPARAMETERS = {
    "type": "object",
    "description": "The method's hyperparameters: as requested ('auto' where not given) until "
    "the job starts, then resolved to numbers (with the steps they imply).",
    "properties": {
        name: {"anyOf": [{"type": kind}, {"type": "string", "enum": ["auto"]}]}
        for name, kind in (
            ("n_epochs", "integer"),
            ("batch_size", "integer"),
            ("learning_rate_multiplier", "number"),
            ("learning_rate", "number"),
        )
    },
    "additionalProperties": True,
}


def error_statuses(path: str, operation: dict[str, Any]) -> set[int]:
    """What an operation can answer besides 2xx. Authenticated ones: 401, 429 (request rate,
    failed-auth rate) and 503 (an outage); with parameters or a body: 400 (validation) and 404
    (an id that is not the organization's); with a body: 413 (size)."""
    if is_public(path):
        return set()
    statuses = {401, 429, 503}
    if operation.get("parameters") or operation.get("requestBody"):
        statuses |= {400, 404}
    if operation.get("requestBody"):
        statuses.add(413)
    return statuses | EXTRA_STATUSES.get(operation.get("operationId", ""), set())


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ENVELOPE}}},
    }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "string"},
            }
        }
    return response


def _components(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    schemas["ErrorBody"] = {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string"},
            "param": nullable,
            "code": nullable,
        },
    }
    schemas["ErrorResponse"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}},
    }
    _method_variants(schemas)
    _defaults_in_words(schemas)
    schemas["JobHyperparameters"] = JOB_HYPERPARAMETERS
    schemas["FineTuningJob"]["properties"].update(JOB_FIELDS)
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key as `lathe keys create` prints it, tml-lathe-… (keys "
            "issued before, sk-lathe-…, work too). The same key works with the tinker SDK.",
        }
    }


def _method_variants(schemas: dict[str, Any]) -> None:
    """`method` as a union discriminated on `type`: each variant carries only its own block
    (required where the type needs it: ppo, grpo, reinforcement, distillation), so generators
    type `method.dpo.hyperparameters.beta` per type. `type` may be left out only for
    supervised, the default, and another type's block only as null (as the server accepts)."""
    flat = schemas["Method"]
    blocks = flat["properties"]["type"]["enum"]
    mapping = {}
    for kind in blocks:
        block = flat["properties"][kind]
        needed = kind in ("ppo", "grpo", "reinforcement", "distillation")
        name = "Method" + "".join(part.title() for part in kind.split("_"))
        schemas[name] = {
            "type": "object",
            "title": name,
            "properties": {
                "type": {"type": "string", "enum": [kind]},
                kind: {**block, "anyOf": block["anyOf"][:1]} if needed else block,
                **{other: {"type": "null"} for other in blocks if other != kind},
            },
            "required": ["type", kind] if needed else ([] if kind == "supervised" else ["type"]),
            "additionalProperties": False,
        }
        mapping[kind] = f"#/components/schemas/{name}"
    schemas["Method"] = {
        "title": "Method",
        "description": "The training method: `type` and that type's block, as OpenAI's.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }


def _refs(node: Any, schemas: dict[str, Any], seen: set[str]) -> set[str]:
    """Every component `node` reaches through `$ref`s."""
    if isinstance(node, dict):
        if isinstance(ref := node.get("$ref"), str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                _refs(schemas[name], schemas, seen)
        for value in node.values():
            _refs(value, schemas, seen)
    elif isinstance(node, list):
        for value in node:
            _refs(value, schemas, seen)
    return seen


RELAYED = {"createChatCompletion", "createCompletion", "createReward", "createClassification"}
"""Answers passed on as the inference backend wrote them (vLLM's own JSON, say), not
serialized from Lathe's models here: their optional fields may be left out."""


def _outputs_complete(schema: dict[str, Any]) -> None:
    """A model only ever sent (never received) is serialized whole, so each of its fields is
    required: generated types need no `?.` on `job.status`. Those shared with requests (the
    job's spec blocks, sent back as stored), the relayed inference answers and
    JobHyperparameters keep their optional fields."""
    schemas = schema["components"]["schemas"]
    operations = [op for item in schema["paths"].values() for op in item.values()]
    taken = _refs(
        [[op.get("requestBody"), op.get("parameters")] for op in operations], schemas, set()
    )
    sent = _refs([op.get("responses") for op in operations], schemas, set())
    relayed = [op["responses"] for op in operations if op.get("operationId") in RELAYED]
    for name in sent - taken - _refs(relayed, schemas, set()) - {"JobHyperparameters"}:
        if "properties" in schemas[name]:
            schemas[name]["required"] = list(schemas[name]["properties"])


def _defaults_in_words(schemas: dict[str, Any]) -> None:
    """A property's `default` moves into its description: openapi-typescript (with its default
    `defaultNonNullable`) types a defaulted property as required, so a request would have to
    spell out `adapter`, `method`, `r`, ... that the server fills in. Left out, the server's
    default applies (generated clients then send nothing rather than a copy of it)."""
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            if "default" not in prop:
                continue
            value = json.dumps(prop.pop("default"))
            said = (
                f"Default: `{value}`." if len(value) <= 60 else "Its defaults apply when left out."
            )
            prop["description"] = f"{prop.get('description', '')} {said}".strip()


def _enum_not_const(node: Any) -> None:
    """A union member `{"const": "auto"}` as the equivalent `{"enum": ["auto"]}`:
    openapi-python-client parses a const member by raising on any other value, so the
    union's next member (`n_epochs: 3`) is never tried."""
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf"):
            for member in node.get(key, []):
                if isinstance(member, dict) and "const" in member:
                    member["enum"] = [member.pop("const")]
        for value in node.values():
            _enum_not_const(value)
    elif isinstance(node, list):
        for value in node:
            _enum_not_const(value)


def _binary_file_parts(schema: dict[str, Any]) -> None:
    """Multipart file parts as `format: binary` (OpenAPI 3.0's spelling, beside 3.1's
    `contentMediaType`): generators type them as bytes/Blob, not as a text part."""
    for item in schema["paths"].values():
        for operation in item.values():
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if form is None:
                continue
            ref = form["schema"]["$ref"].rsplit("/", 1)[-1]
            for prop in schema["components"]["schemas"][ref]["properties"].values():
                if "contentMediaType" in prop:
                    prop["format"] = "binary"


def operation_words(name: str) -> str:
    """`adminListKeys` → "Admin list keys": FastAPI titles a camelCase name into one squashed
    word ("Adminlistkeys"), which is what Swagger UI shows for each operation."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _components(schema)
    _binary_file_parts(schema)
    _enum_not_const(schema)
    for path, item in schema["paths"].items():
        for operation in item.values():
            responses = operation["responses"]
            responses.pop("422", None)
            name = operation.get("operationId", "")
            if operation.get("summary") == name.replace("_", " ").title():  # FastAPI's default
                operation["summary"] = operation_words(name)
            if (media := MEDIA_TYPES.get(name)) is not None:
                responses["200"]["content"] = media
            if name in STREAMS:
                responses["200"]["content"]["text/event-stream"] = {"schema": SSE}
                responses["200"]["description"] = f"JSON, or with {STREAMS[name]} an SSE stream"
            if name in FILTERS:
                operation.setdefault("parameters", []).extend(FILTERS[name])
            for status in sorted(error_statuses(path, operation)):
                responses[str(status)] = _error_response(status)
            if not is_public(path):
                operation["security"] = [{"bearerAuth": []}]
    _outputs_complete(schema)
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
