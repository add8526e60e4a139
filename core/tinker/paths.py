"""`tinker://{model_id}/{kind}/{name}` paths and where their bytes live in storage."""

from __future__ import annotations

import re

from core.errors import InvalidRequest

KINDS = ("weights", "sampler_weights")
_PATH = re.compile(r"^tinker://(?P<model>[^/]+)/(?P<kind>weights|sampler_weights)/(?P<name>[^/]+)$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def make_path(model_id: str, kind: str, name: str) -> str:
    return f"tinker://{model_id}/{kind}/{name}"


def parse_path(path: str, param: str = "path") -> tuple[str, str, str]:
    """(model_id, kind, name), or a 400 naming `param`."""
    m = _PATH.match(path or "")
    if m is None:
        raise InvalidRequest(
            f"{param} must look like tinker://<model_id>/weights|sampler_weights/<name>, "
            f"got {path!r}",
            param=param,
        )
    return m["model"], m["kind"], m["name"]


def check_name(name: str, param: str = "path") -> str:
    if not _NAME.match(name or ""):
        raise InvalidRequest(
            f"{param} must be 1-128 characters of letters, digits, '.', '_' or '-'", param=param
        )
    return name


def storage_key(org_id: str, model_id: str, kind: str, name: str) -> str:
    safe = model_id.replace(":", "_")
    return f"orgs/{org_id}/tinker/{safe}/{kind}/{name}.pt"
