"""Settings in groups, read from the flat `LATHE_*` variables every deployment already sets:
each name the flat Settings had (frozen below, as of its last flat version) still sets the same
value, now read at `settings.<group>.<field>`."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_settings import SettingsError

from core.settings import Settings, flat_names, setting_groups

# Every field of the flat Settings, by name: LATHE_<NAME> is each one's variable.
FLAT_FIELDS = [
    "data_dir",
    "temp_dir",
    "database_url",
    "storage_url",
    "s3_endpoint_url",
    "s3_region",
    "broker_url",
    "queue_name",
    "embedded_worker",
    "host",
    "port",
    "base_models",
    "model_cache_dir",
    "max_upload_bytes",
    "train_tokens_per_second",
    "max_line_bytes",
    "max_dataset_lines",
    "max_decompressed_bytes",
    "max_gzip_ratio",
    "max_dataset_columns",
    "max_parquet_row_group_bytes",
    "grader_row_budget_s",
    "grader_job_budget_s",
    "dry_run_max_examples",
    "inference_cache_size",
    "inference_pinned_models",
    "inference_url",
    "inference_port",
    "inference_max_batch",
    "inference_batch_window_ms",
    "inference_max_queue",
    "inference_timeout_s",
    "inference_torch_threads",
    "inference_max_stop_length",
    "vllm_enabled",
    "vllm_urls",
    "vllm_base_models",
    "vllm_python",
    "vllm_max_loras",
    "vllm_max_cpu_loras",
    "vllm_max_lora_rank",
    "vllm_max_model_len",
    "vllm_kv_cache_gib",
    "vllm_start_timeout_s",
    "max_checkpoints",
    "batch_max_requests",
    "batch_max_active",
    "batch_concurrency",
    "batch_slice",
    "reconcile_interval_s",
    "reconcile_after_s",
    "lease_heartbeat_s",
    "lease_timeout_s",
    "max_attempts",
    "job_timeout_s",
    "stop_grace_s",
    "cancel_grace_s",
    "warm_training",
    "retry_budget_s",
    "upload_retry_s",
    "sweep_interval_s",
    "sweep_after_s",
    "fault_injection",
    "device",
    "api_threads",
    "db_pool_size",
    "db_max_overflow",
    "db_pool_timeout_s",
    "max_json_bytes",
    "auth_cache_ttl_s",
    "admin_key",
    "rate_limit_storage_url",
    "requests_per_minute",
    "failed_auth_per_minute",
    "trusted_proxies",
    "max_queued_jobs_per_org",
    "max_running_jobs_per_org",
    "upload_bytes_per_day",
    "bootstrap_org",
    "log_level",
    "log_file",
    "log_format",
    "worker_metrics_port",
    "metrics_listen",
    "metrics_token",
    "grader_embedding_model",
    "grader_judge_timeout_s",
    "grader_python_sandbox",
    "grader_python_timeout_s",
    "grader_python_memory_mb",
    "eval_max_items",
    "eval_max_source_bytes",
    "max_active_eval_runs_per_org",
    "max_running_eval_runs_per_org",
    "worker_gpus",
    "worker_gpu_sizes",
    "fsdp_min_params",
    "ray_address",
    "ray_python",
    "ray_forward_env",
    "base_url",
    "api_key",
    "max_upload_part_bytes",
    "upload_expires_s",
    "webhook_max_endpoints_per_org",
    "webhook_timeout_s",
    "webhook_max_attempts",
    "webhook_retry_base_s",
    "webhook_retry_max_s",
    "webhook_poll_interval_s",
    "webhook_batch_size",
    "webhook_response_bytes",
    "webhook_log_retention_s",
    "allow_private_urls",
    "wandb_mode",
    "wandb_api_key",
    "mlflow_tracking_uri",
    "mlflow_file_root",
    "drift_retention_days",
    "drift_samples_per_model",
    "drift_prompt_chars",
    "drift_window_samples",
    "drift_reference_rows",
    "drift_min_samples",
    "drift_embedding_model",
    "drift_opt_in_cache_s",
    "tinker_max_clients_per_org",
    "tinker_max_lora_rank",
    "tinker_max_samples",
    "tinker_max_sample_tokens",
    "tinker_session_idle_s",
    "tinker_lease_s",
    "tinker_poll_s",
    "tinker_trainer_capacity",
    "tinker_embedded_trainer",
]


def _field(path: tuple[str, ...]) -> Any:
    """The FieldInfo at a settings path."""
    model: type[BaseModel] = Settings
    for name in path[:-1]:
        model = setting_groups()[name]
    return model.model_fields[path[-1]]


def _read(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for name in path:
        value = getattr(value, name)
    return value


def _sample(annotation: Any, default: Any) -> Any:
    """A value of this type other than the default, as the JSON-ish value an operator sets."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        first = options[0]
        plain = typing.get_origin(first) is None and isinstance(default, first)
        return _sample(first, default if plain else None)
    if origin is typing.Literal:
        return next(a for a in args if a != default)
    if origin is list:
        return [1, 2] if args[0] is int else ["a", "b"]
    if origin is dict:
        return {"m": {"source": "builtin"}} if args[1] is not str else {"a": "http://b"}
    if annotation is bool:
        return not default
    if annotation in (int, float):
        return (default or 0) + (1 if annotation is int else 0.5)
    if annotation is Path:
        return "/tmp/lathe-settings-test"
    return "sample-value"


@pytest.mark.parametrize("name", FLAT_FIELDS)
def test_every_flat_variable_still_sets_its_setting(name, monkeypatch):
    path = flat_names()[name]
    field = _field(path)
    value = _sample(field.annotation, field.get_default(call_default_factory=True))
    raw = value if isinstance(value, str) else json.dumps(value)
    monkeypatch.setenv(f"LATHE_{name.upper()}", raw)
    expected = TypeAdapter(field.annotation).validate_python(value)
    assert _read(Settings(), path) == expected


def test_each_flat_name_is_one_setting_and_none_is_lost():
    """Fields added since keep the same rule: a flat name, unique, for each one."""
    assert set(FLAT_FIELDS) <= set(flat_names())
    paths = [(g, f) for g, model in setting_groups().items() for f in model.model_fields]
    paths += [(n,) for n in Settings.model_fields if n not in setting_groups()]
    assert sorted(flat_names().values()) == sorted(paths)  # every setting has one flat name


def test_the_nested_form_works_and_wins_over_the_flat_one(monkeypatch):
    monkeypatch.setenv("LATHE_INFERENCE_URL", "http://flat")
    monkeypatch.setenv("LATHE_INFERENCE__PORT", "9001")
    assert (Settings().inference.url, Settings().inference.port) == ("http://flat", 9001)
    monkeypatch.setenv("LATHE_INFERENCE__URL", "http://nested")
    assert Settings().inference.url == "http://nested"


def test_arguments_merge_with_the_environment_field_by_field(monkeypatch):
    monkeypatch.setenv("LATHE_DRIFT_MIN_SAMPLES", "7")
    settings = Settings(drift={"retention_days": 2})
    assert (settings.drift.min_samples, settings.drift.retention_days) == (7, 2)


def test_a_bad_flat_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("LATHE_TRUSTED_PROXIES", "[not json")
    with pytest.raises(SettingsError, match="LATHE_TRUSTED_PROXIES"):
        Settings()
    monkeypatch.setenv("LATHE_TRUSTED_PROXIES", "[]")
    monkeypatch.setenv("LATHE_VLLM_MAX_LORAS", "0")
    with pytest.raises(ValidationError, match="max_loras"):
        Settings()


def test_a_flat_name_is_no_argument():
    """One way to set a grouped field in code: its group (the codemod rewrote callers)."""
    with pytest.raises(ValidationError, match="inference_url"):
        Settings(inference_url="http://x")
