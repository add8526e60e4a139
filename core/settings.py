"""All of Lathe's configuration, in one object read from `LATHE_*` environment variables.

The embedded default (SQLite, a local object directory, a filesystem broker) and production
(Postgres, S3, Redis) differ only in these values; the code paths are the same.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BaseModelSource(BaseModel):
    """Where a base model's weights come from: `builtin` (built locally), a path, or a hub id."""

    source: Literal["builtin", "path", "hub"] = "path"
    path: str | None = None
    hub_id: str | None = None
    revision: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BaseModelSource:
        if self.source == "path" and not self.path:
            raise ValueError("a 'path' base model needs path")
        if self.source == "hub" and not self.hub_id:
            raise ValueError("a 'hub' base model needs hub_id")
        return self


def _default_base_models() -> dict[str, BaseModelSource]:
    return {"tiny-llama": BaseModelSource(source="builtin")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LATHE_", env_nested_delimiter="__")

    data_dir: Path = Field(Path(".lathe"), description="Root for embedded-mode state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite in data_dir."
    )
    storage_url: str | None = Field(
        None, description="file:///dir or s3://bucket/prefix; default data_dir/objects."
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto).")
    s3_region: str = "us-east-1"
    broker_url: str | None = Field(
        None, description="Celery broker; default a filesystem broker under data_dir."
    )
    queue_name: str = Field("lathe", description="Celery queue the workers consume.")
    embedded_worker: bool | None = Field(
        None, description="Start a worker beside the API; default on for the filesystem broker."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    base_models: dict[str, BaseModelSource] = Field(default_factory=_default_base_models)
    model_cache_dir: Path | None = Field(None, description="Where builtin/hub models are kept.")
    max_upload_bytes: int = Field(512 * 1024**2, description="Larger uploads get 413.")
    train_tokens_per_second: float = Field(
        3000.0,
        gt=0,
        description="Training throughput of this deployment's workers (tokens "
        "per second, as a job's trained_tokens / its training time), used only to estimate "
        "job time in the dataset dry-run report; measure it with one job on your hardware.",
    )
    inference_cache_size: int = Field(
        4,
        ge=1,
        description="LoRA adapters kept attached per shared base in the in-process engine "
        "(least recently used evicted first), and whole models (full fine-tunes, IA3, soft "
        "prompts, classifiers) kept loaded.",
    )
    inference_pinned_models: list[str] = Field(
        default_factory=list, description="Fine-tuned model ids the engine never evicts."
    )
    inference_url: str | None = Field(
        None,
        description="Base URL of the inference service (`lathe inference`) the API sends "
        "generation to; unset: `lathe serve` starts one beside it on a free port.",
    )
    inference_port: int = Field(8001, description="Port `lathe inference` listens on.")
    inference_max_batch: int = Field(
        16, ge=1, description="Most requests the in-process engine decodes in one batch."
    )
    inference_batch_window_ms: float = Field(
        5.0, ge=0, description="How long the engine waits for more requests to batch together."
    )
    inference_max_queue: int = Field(
        256, ge=1, description="Requests waiting beyond this are refused (503, Retry-After)."
    )
    inference_timeout_s: float = Field(
        300.0, gt=0, description="A generation running longer is cancelled (504)."
    )
    inference_torch_threads: int = Field(
        1,
        ge=1,
        description="torch CPU threads of the in-process engine. 1 by default: on a shared "
        "CPU host OpenMP's spinning threads made decoding 8x slower (batching supplies the "
        "parallelism); raise it on a dedicated many-core host.",
    )
    inference_max_stop_length: int = Field(
        64, ge=1, description="Longest stop string accepted (characters)."
    )
    vllm_enabled: bool = Field(
        False,
        description="Serve LoRA/QLoRA adapters and base models of the bases vLLM can serve on "
        "vLLM: `lathe inference` starts and supervises one vLLM server per base model.",
    )
    vllm_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Base model name → URL of a vLLM OpenAI server already running for it "
        "(started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True).",
    )
    vllm_base_models: list[str] | None = Field(
        None, description="Base models vLLM serves when enabled; default every causal-LM base."
    )
    vllm_python: Path = Field(
        Path(".venv-vllm/bin/python"),
        description="Python of the vLLM environment (scripts/install_vllm.sh creates it).",
    )
    vllm_max_loras: int = Field(4, ge=1, description="LoRAs vLLM batches at once (--max-loras).")
    vllm_max_cpu_loras: int = Field(
        8, ge=1, description="LoRAs vLLM keeps loaded; Lathe unloads the least recently used."
    )
    vllm_max_lora_rank: int = Field(16, ge=1, description="Largest LoRA rank vLLM accepts.")
    vllm_max_model_len: int | None = Field(
        None, description="vLLM's context length; default the model's own (at most 4096)."
    )
    vllm_kv_cache_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on CPU hosts.")
    vllm_start_timeout_s: float = Field(
        600.0, gt=0, description="How long a vLLM server may take to come up."
    )
    max_checkpoints: int = Field(
        3, ge=1, description="Checkpoints kept per job (the latest; older ones are deleted)."
    )
    reconcile_interval_s: float = Field(30.0, description="How often queued jobs are re-enqueued.")
    reconcile_after_s: float = Field(60.0, description="A job queued this long is re-enqueued.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bootstrap_org: str = Field("default", description="Org created for the embedded first key.")
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lathe.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'objects').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def runs_embedded_worker(self) -> bool:
        if self.embedded_worker is not None:
            return self.embedded_worker
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def resolved_model_cache_dir(self) -> Path:
        return (self.model_cache_dir or self.data_dir / "models").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()
