"""The `integrations` entries a job may carry, and the check that they can be honoured.

`{"type": "wandb", "wandb": {"project", "name"?, "entity"?, "tags"?}}` is OpenAI's;
`{"type": "mlflow", "mlflow": {"tracking_uri"?, "experiment_name"?, "run_name"?, "tags"?}}`
is Lathe's. Whatever the job was given is checked at creation (400s name the field) and read
again by the worker.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidRequest
from core.settings import Settings
from core.webhooks import urls

Tag = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WandbOptions(_Strict):
    project: Name
    entity: Name | None = None
    name: Name | None = Field(None, description="The run's display name; default the job id.")
    tags: list[Tag] = Field(default_factory=list, max_length=32)


class MlflowOptions(_Strict):
    tracking_uri: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        None, description="file:, http: or https:; default LATHE_MLFLOW_TRACKING_URI."
    )
    experiment_name: Name = "lathe"
    run_name: Name | None = Field(None, description="Default: the job id.")
    tags: dict[Tag, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=32
    )


class WandbIntegration(_Strict):
    type: Literal["wandb"]
    wandb: WandbOptions


class MlflowIntegration(_Strict):
    type: Literal["mlflow"]
    mlflow: MlflowOptions


Integration = WandbIntegration | MlflowIntegration
KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "wandb": (WandbIntegration, "wandb"),
    "mlflow": (MlflowIntegration, "mlflow"),
}
"""type → (its model, the package that must be installed on the worker)."""


def parse(entries: list[dict[str, Any]] | None, settings: Settings) -> list[Integration]:
    """The entries as typed integrations, or a 400 naming the first one that cannot work."""
    parsed: list[Integration] = []
    for i, entry in enumerate(entries or []):
        param = f"integrations.{i}"
        kind = entry.get("type")
        if kind not in KINDS:
            raise InvalidRequest(
                f"unknown integration type {kind!r} (supported: {', '.join(KINDS)})",
                param=f"{param}.type",
                code="unsupported_integration",
            )
        model, package = KINDS[kind]
        try:
            item = model.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(f"{first['msg']}", param=f"{param}.{where}") from exc
        if importlib.util.find_spec(package) is None:
            raise InvalidRequest(
                f"the {kind} integration needs the {package!r} package, which this server "
                "does not have (pip install 'lathe[integrations]')",
                param=f"{param}.type",
                code="integration_unavailable",
            )
        if isinstance(item, MlflowIntegration):
            item.mlflow.tracking_uri = tracking_uri(item.mlflow, settings, f"{param}.mlflow")
        parsed.append(item)
    return parsed


def tracking_uri(options: MlflowOptions, settings: Settings, param: str) -> str:
    """The URI the run logs to. One the user gives may be file: (under LATHE_MLFLOW_FILE_ROOT
    only: it writes on the worker's disk) or http(s): (to public addresses unless
    LATHE_ALLOW_PRIVATE_URLS); the operator's default is trusted as it is."""
    if options.tracking_uri is None:
        if settings.integrations.mlflow_tracking_uri is None:
            raise InvalidRequest(
                "give mlflow.tracking_uri: this server has no default (LATHE_MLFLOW_TRACKING_URI)",
                param=f"{param}.tracking_uri",
            )
        return settings.integrations.mlflow_tracking_uri
    uri, param = options.tracking_uri, f"{param}.tracking_uri"
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        root = settings.integrations.mlflow_file_root
        path = Path(unquote(urlsplit(uri).path)).resolve()
        if root is None or not path.is_relative_to(root.resolve()):
            where = f"under {root}" if root else "on this server (no LATHE_MLFLOW_FILE_ROOT)"
            raise InvalidRequest(
                f"file: tracking URIs are allowed only {where}", param=param, code="invalid_uri"
            )
        return uri
    if scheme in ("http", "https"):
        urls.check_param(uri, settings.security.allow_private_urls, param)
        return uri
    raise InvalidRequest(
        f"tracking URI scheme {scheme!r} is not supported (file:, http:, https:)",
        param=param,
        code="invalid_uri",
    )
