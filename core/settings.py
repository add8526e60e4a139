"""All of Lathe's configuration, in one object read from `LATHE_*` environment variables.

`Settings` holds a few general fields and one group per concern (`settings.inference.url`,
`settings.jobs.lease_timeout_s`, ...). Each grouped field keeps the flat variable it had before
settings were grouped (`LATHE_INFERENCE_URL`); `flat_names()` is that table.

The embedded default (SQLite, a local object directory, a filesystem broker) and production
(Postgres, S3, Redis) differ only in these values; the code paths are the same.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)


class BaseModelSource(BaseModel):
    """Where a base model's weights come from: `builtin` (built locally), a path, or a hub id."""

    source: Literal["builtin", "path", "hub"] = "path"
    path: str | None = None
    hub_id: str | None = None
    revision: str | None = None
    license: str | None = Field(
        None, description="The weights' licence, shown in downloads (e.g. apache-2.0)."
    )
    downloadable: bool | None = Field(
        None,
        description="Hand the weights out at GET /v1/models/{name}/content; default only for "
        "the builtin model: set it where the licence allows redistribution.",
    )

    @model_validator(mode="after")
    def _check(self) -> BaseModelSource:
        if self.source == "path" and not self.path:
            raise ValueError("a 'path' base model needs path")
        if self.source == "hub" and not self.hub_id:
            raise ValueError("a 'hub' base model needs hub_id")
        return self


def _default_base_models() -> dict[str, BaseModelSource]:
    # tiny-llama-pretrained (evals, #17): the same shape pretrained on a shipped corpus of
    # facts (core.tiny_pretrain), so forgetting and benchmark figures mean something.
    return {
        "tiny-llama": BaseModelSource(source="builtin"),
        "tiny-llama-pretrained": BaseModelSource(source="builtin"),
    }


class SettingsGroup(BaseModel):
    """One group of settings, a field of `Settings` (`settings.<group>.<field>`).

    Each field is also read from its flat `LATHE_*` variable, the name it had before settings
    were grouped (`flat_prefix` + field name, or `flat_names`), so no deployment's
    configuration breaks; the nested form `LATHE_<GROUP>__<FIELD>` works too.
    """

    model_config = ConfigDict(extra="forbid")

    flat_prefix: ClassVar[str] = ""
    flat_names: ClassVar[dict[str, str]] = {}

    @classmethod
    def flat_name(cls, field: str) -> str:
        """The field's flat name, without `LATHE_`: `inference_url` for `inference.url`."""
        return cls.flat_names.get(field, cls.flat_prefix + field)


class ServerSettings(SettingsGroup):
    """The API process: where it listens, how many threads it runs, what it starts beside
    it."""

    host: str = Field("127.0.0.1", description="Address `lathe serve` binds the API to.")
    port: int = Field(8000, description="Port `lathe serve` binds the API to.")
    api_threads: int = Field(
        40,
        ge=1,
        description="Worker threads of the API (sync routes, auth look-ups); the database pool "
        "holds as many connections, so a thread never waits on a connection another holds.",
    )
    max_json_bytes: int = Field(
        2 * 1024**2,
        ge=1024,
        description="Largest request body other than a file upload; larger ones get 413 "
        "before they are read.",
    )
    embedded_worker: bool | None = Field(
        None, description="Start a worker beside the API; default on for the filesystem broker."
    )
    bootstrap_org: str = Field("default", description="Org created for the embedded first key.")


class DatabaseSettings(SettingsGroup):
    """The SQL database (SQLite embedded, Postgres in production) and the API's connection
    pool."""

    flat_prefix: ClassVar[str] = "db_"
    flat_names: ClassVar[dict[str, str]] = {"url": "database_url"}

    url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir.")
    pool_size: int | None = Field(
        None, ge=1, description="Postgres connections kept open; default api_threads // 2."
    )
    max_overflow: int | None = Field(
        None,
        ge=0,
        description="Extra connections under load; default so that pool + overflow = "
        "api_threads + 4 (the reconciler and dependency teardown run beside the threads).",
    )
    pool_timeout_s: float = Field(
        10.0, gt=0, description="Wait this long for a pooled connection, then answer 503."
    )


class StorageSettings(SettingsGroup):
    """The object store: a local directory embedded, S3 (or an S3-compatible service) in
    production."""

    flat_names: ClassVar[dict[str, str]] = {"url": "storage_url"}

    url: str | None = Field(
        None, description="file:///dir or s3://bucket/prefix; default data_dir/objects."
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto).")
    s3_region: str = Field("us-east-1", description="Region of the S3 bucket.")


class BrokerSettings(SettingsGroup):
    """The Celery broker jobs are queued on (a filesystem broker embedded, Redis in
    production)."""

    flat_prefix: ClassVar[str] = "broker_"
    flat_names: ClassVar[dict[str, str]] = {"queue_name": "queue_name"}

    url: str | None = Field(
        None, description="Celery broker; default a filesystem broker under data_dir."
    )
    queue_name: str = Field("lathe", description="Celery queue the workers consume.")


class LogSettings(SettingsGroup):
    """Logging of every Lathe process."""

    flat_prefix: ClassVar[str] = "log_"

    level: str = Field("INFO", description="Python logging level of every process.")
    file: str | None = Field(
        None,
        description="Where `lathe serve` writes its own, its embedded worker's and its "
        "inference service's logs. Unset: `<data_dir>/lathe.log` on the embedded default "
        "(SQLite), the terminal otherwise; `-`: the terminal.",
    )
    format: Literal["text", "json"] = Field(
        "text", description="json: one JSON object per log line, with job_id/org_id when known."
    )


class SecuritySettings(SettingsGroup):
    """Who may call the API, and which addresses users' URLs may reach."""

    admin_key: str | None = Field(
        None,
        description="Operator key for the /v1/admin endpoints (keys and organizations); "
        "unset: those endpoints answer 401.",
    )
    auth_cache_ttl_s: float = Field(
        2.0,
        ge=0,
        description="How long an API key's look-up is cached per API process (0: never). A "
        "key revoked through the admin API stops at once in that process, elsewhere within "
        "this time.",
    )
    failed_auth_per_minute: int = Field(
        30,
        ge=1,
        description="Requests with a wrong API key one client IP may make per minute (then "
        "429 for further wrong keys; a valid key is never held up by its address).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses (or CIDR ranges) of the reverse proxies in front of the API: "
        "only their X-Forwarded-For / X-Forwarded-Proto name the client. Empty: forwarded "
        "headers are ignored and the client is the connection's peer.",
    )
    allow_private_urls: bool = Field(
        False,
        description="Let URLs users give (webhook endpoints, MLflow tracking URIs) resolve "
        "to loopback/private addresses (tests, receivers beside a self-hosted Lathe). "
        "Link-local (cloud metadata) stays refused.",
    )


class QuotaSettings(SettingsGroup):
    """Per-organization rate limits and quotas, so one organization cannot take a
    deployment."""

    rate_limit_storage_url: str | None = Field(
        None,
        description="`limits` storage for rate limits and quotas: default Redis when the "
        "broker is redis://, else in this process's memory.",
    )
    requests_per_minute: int = Field(
        600, ge=1, description="Requests one organization may make per minute (then 429)."
    )
    max_queued_jobs_per_org: int = Field(
        20,
        ge=1,
        description="Unfinished, not running jobs (validating, queued, paused, waiting) one "
        "organization may have; creating more is a 429.",
    )
    max_running_jobs_per_org: int = Field(
        2,
        ge=1,
        description="Jobs of one organization running at once; a worker leaves further ones "
        "queued (fair share) and the reconciler offers them again.",
    )
    upload_bytes_per_day: int = Field(
        20 * 1024**3,
        ge=1,
        description="Bytes of files one organization may upload per day (then 429).",
    )


class UploadSettings(SettingsGroup):
    """Files sent to /v1/files and OpenAI's multipart /v1/uploads (core.uploads)."""

    flat_names: ClassVar[dict[str, str]] = {
        "max_bytes": "max_upload_bytes",
        "max_part_bytes": "max_upload_part_bytes",
        "expires_s": "upload_expires_s",
    }

    max_bytes: int = Field(512 * 1024**2, description="Larger uploads get 413.")
    max_part_bytes: int = Field(
        64 * 1024**2, ge=1, description="Largest part of an Upload (OpenAI: 64 MB); more is 400."
    )
    expires_s: float = Field(
        3600.0,
        gt=0,
        description="An Upload not completed this long after it was created expires (OpenAI: "
        "an hour); the sweeper removes its parts.",
    )


class DatasetSettings(SettingsGroup):
    """Bounds on reading a training dataset (never read whole), and the dry-run report's
    estimates."""

    flat_names: ClassVar[dict[str, str]] = {
        "max_lines": "max_dataset_lines",
        "max_columns": "max_dataset_columns",
    }

    max_line_bytes: int = Field(
        8 * 1024**2,
        ge=1024,
        description="Longest dataset line (JSONL line, CSV record, parquet row) read, in bytes "
        "(decompressed); a longer one is a dataset error naming the line, never read whole.",
    )
    max_lines: int = Field(
        5_000_000,
        ge=1,
        description="Most lines (blank ones included) or parquet rows a dataset may have.",
    )
    max_decompressed_bytes: int = Field(
        4 * 1024**3,
        ge=1024**2,
        description="Most bytes a gzipped dataset may inflate to (or a parquet file decode to).",
    )
    max_gzip_ratio: float = Field(
        100.0,
        gt=1,
        description="Most a gzipped dataset may inflate relative to its compressed size "
        "(checked once it has inflated past 64 MiB, so small repetitive files pass).",
    )
    max_columns: int = Field(
        1000, ge=1, description="Most columns a CSV header or a parquet schema may have."
    )
    max_parquet_row_group_bytes: int = Field(
        256 * 1024**2,
        ge=1024**2,
        description="Largest decoded (uncompressed) parquet row group, from the file's "
        "metadata, checked before anything is decoded.",
    )
    dry_run_max_examples: int = Field(
        20_000,
        ge=1,
        description="Examples the dataset dry run keeps and measures (tokens, duplicates); "
        "the whole file is still validated.",
    )
    train_tokens_per_second: float = Field(
        3000.0,
        gt=0,
        description="Training throughput of this deployment's workers (tokens "
        "per second, as a job's trained_tokens / its training time), used only to estimate "
        "job time in the dataset dry-run report; measure it with one job on your hardware.",
    )


class JobSettings(SettingsGroup):
    """How a fine-tuning job runs on a worker: its lease, its limits, its stops and
    retries."""

    flat_names: ClassVar[dict[str, str]] = {"timeout_s": "job_timeout_s"}

    max_checkpoints: int = Field(
        3, ge=1, description="Checkpoints kept per job (the latest; older ones are deleted)."
    )
    lease_heartbeat_s: float = Field(
        10.0, gt=0, description="How often a worker renews the lease of the job it runs."
    )
    lease_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A running job whose lease was not renewed for this long is taken back "
        "(re-queued to resume from its latest checkpoint): its worker is presumed dead. Keep it "
        "several heartbeats long, so a short database outage does not expire a live lease.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Runs a job gets (a dead worker or a crashed run uses one) before "
        "it fails; a run handed back on a graceful shutdown does not count.",
    )
    timeout_s: float = Field(
        86400.0,
        gt=0,
        description="Wall-clock limit of one run of a job, from its claim; past it the run is "
        "ended and the job fails.",
    )
    stop_grace_s: float = Field(
        30.0,
        gt=0,
        description="After a pause or a worker shutdown, how long training gets to reach its "
        "next step boundary and checkpoint before its process is terminated.",
    )
    cancel_grace_s: float = Field(
        5.0,
        gt=0,
        description="After a cancel, a lost lease or a timeout, how long training gets to stop "
        "by itself before its process is terminated (then killed after as long again).",
    )
    warm_training: bool = Field(
        True,
        description="Fork each job's training process from a worker-side process that imported "
        "the training stack once (starts in well under a second instead of seconds); false "
        "starts a fresh interpreter per job (core.runs.forkserver).",
    )
    retry_budget_s: float = Field(
        120.0,
        ge=0,
        description="How long the worker retries a database or storage operation through an "
        "outage (with backoff) before the run fails.",
    )
    upload_retry_s: float = Field(
        3600.0,
        ge=0,
        description="How long a finished job's artifact is kept on the worker and its upload "
        "retried before the job fails: training is never thrown away for a short outage.",
    )


class MaintenanceSettings(SettingsGroup):
    """The background loops: the reconciler re-enqueues stuck jobs, the sweeper removes
    orphans."""

    reconcile_interval_s: float = Field(30.0, description="How often queued jobs are re-enqueued.")
    reconcile_after_s: float = Field(60.0, description="A job queued this long is re-enqueued.")
    sweep_interval_s: float = Field(
        600.0, gt=0, description="How often the API removes orphaned objects and temp files."
    )
    sweep_after_s: float = Field(
        3600.0,
        ge=0,
        description="Orphaned objects, incomplete multipart uploads and temp files older than "
        "this are removed by the sweeper (younger ones may still be being written).",
    )


class TrainingSettings(SettingsGroup):
    """Distributed training (#18): worker sizes, queue routing, strategy defaults."""

    worker_gpus: int | Literal["auto"] = Field(
        "auto",
        description="Devices this worker trains one job on (`lathe worker --gpus N`); 'auto': "
        "torch.cuda.device_count(), 1 without CUDA. On a CPU worker N means N training "
        "processes (gloo backend), for testing. It consumes the queue for that size.",
    )
    worker_gpu_sizes: list[int] = Field(
        default_factory=lambda: [1],
        description="The GPU counts this deployment's worker classes have (e.g. [1, 2, 8]): a "
        "job asking for another count gets an event saying no worker can take it (it stays "
        "queued until one with that many starts).",
    )
    fsdp_min_params: int = Field(
        1_000_000_000,
        ge=0,
        description="Full fine-tuning of a model with at least this many parameters defaults "
        "to FSDP across the job's GPUs; smaller ones (and adapters) to DDP.",
    )


class RaySettings(SettingsGroup):
    """One job across hosts (#23): the Ray cluster multi-node jobs are submitted to."""

    flat_prefix: ClassVar[str] = "ray_"

    address: str | None = Field(
        None,
        description="The Ray cluster's job-submission address (its dashboard, e.g. "
        "http://ray-head:8265). Set: jobs with resources.nodes above 1 are accepted, and "
        "workers with it consume their queue and submit them through Ray's Job Submission "
        "API (core.runs.ray_submit). Unset: such jobs are refused with a 400.",
    )
    python: str = Field(
        "python",
        description="The interpreter of Lathe on the Ray nodes: the Ray job's entrypoint is "
        "`<ray_python> -m core.runs.ray_driver ...`.",
    )
    forward_env: list[str] = Field(
        default_factory=lambda: ["LATHE_*", "AWS_*", "PYTHONPATH", "OMP_NUM_THREADS", "HF_*"],
        description="Environment variables (shell patterns) of the worker given to the Ray "
        "job (runtime_env.env_vars), so its ranks reach the same database and storage. "
        "They show in Ray's dashboard: [] where the Ray nodes carry Lathe's configuration "
        "themselves (the ranks inherit their node's environment).",
    )


class InferenceSettings(SettingsGroup):
    """The inference service (`lathe inference`) and its in-process engine."""

    flat_prefix: ClassVar[str] = "inference_"

    url: str | None = Field(
        None,
        description="Base URL of the inference service (`lathe inference`) the API sends "
        "generation to; unset: `lathe serve` starts one beside it on a free port.",
    )
    port: int = Field(8001, description="Port `lathe inference` listens on.")
    cache_size: int = Field(
        4,
        ge=1,
        description="LoRA adapters kept attached per shared base in the in-process engine "
        "(least recently used evicted first), and whole models (full fine-tunes, IA3, soft "
        "prompts, classifiers) kept loaded.",
    )
    pinned_models: list[str] = Field(
        default_factory=list, description="Fine-tuned model ids the engine never evicts."
    )
    max_batch: int = Field(
        16, ge=1, description="Most requests the in-process engine decodes in one batch."
    )
    batch_window_ms: float = Field(
        5.0, ge=0, description="How long the engine waits for more requests to batch together."
    )
    max_queue: int = Field(
        256, ge=1, description="Requests waiting beyond this are refused (503, Retry-After)."
    )
    timeout_s: float = Field(
        300.0, gt=0, description="A generation running longer is cancelled (504)."
    )
    torch_threads: int = Field(
        1,
        ge=1,
        description="torch CPU threads of the in-process engine. 1 by default: on a shared "
        "CPU host OpenMP's spinning threads made decoding 8x slower (batching supplies the "
        "parallelism); raise it on a dedicated many-core host.",
    )
    max_stop_length: int = Field(64, ge=1, description="Longest stop string accepted (characters).")


class VllmSettings(SettingsGroup):
    """vLLM as the inference backend of the bases it can serve."""

    flat_prefix: ClassVar[str] = "vllm_"

    enabled: bool = Field(
        False,
        description="Serve LoRA/QLoRA adapters and base models of the bases vLLM can serve on "
        "vLLM: `lathe inference` starts and supervises one vLLM server per base model.",
    )
    urls: dict[str, str] = Field(
        default_factory=dict,
        description="Base model name → URL of a vLLM OpenAI server already running for it "
        "(started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True).",
    )
    base_models: list[str] | None = Field(
        None, description="Base models vLLM serves when enabled; default every causal-LM base."
    )
    python: Path = Field(
        Path(".venv-vllm/bin/python"),
        description="Python of the vLLM environment (scripts/install_vllm.sh creates it).",
    )
    max_loras: int = Field(4, ge=1, description="LoRAs vLLM batches at once (--max-loras).")
    max_cpu_loras: int = Field(
        8, ge=1, description="LoRAs vLLM keeps loaded; Lathe unloads the least recently used."
    )
    max_lora_rank: int = Field(16, ge=1, description="Largest LoRA rank vLLM accepts.")
    max_model_len: int | None = Field(
        None, description="vLLM's context length; default the model's own (at most 4096)."
    )
    kv_cache_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on CPU hosts.")
    start_timeout_s: float = Field(
        600.0, gt=0, description="How long a vLLM server may take to come up."
    )


class BatchSettings(SettingsGroup):
    """OpenAI's Batch API: batches run on workers, a slice at a time."""

    flat_prefix: ClassVar[str] = "batch_"

    max_requests: int = Field(
        50_000, ge=1, description="Requests one batch input file may hold (more: a 400)."
    )
    max_active: int = Field(
        2, ge=1, description="Unfinished batches one organization may have at once (more: 429)."
    )
    concurrency: int = Field(
        4,
        ge=1,
        description="Requests of one batch in flight to the inference service at once: few, so "
        "live requests find room in the engine's batch.",
    )
    slice: int = Field(
        64,
        ge=1,
        description="Requests a worker runs before storing their results and handing the "
        "batch back to the queue (so training jobs and other batches get their turn).",
    )


class GraderSettings(SettingsGroup):
    """Graders (core/graders): their time budgets, cosine's encoder, model graders, the
    python sandbox."""

    flat_prefix: ClassVar[str] = "grader_"

    row_budget_s: float = Field(
        1.0,
        gt=0,
        description="Most seconds grading one sampled completion may take; a row over it "
        "scores 0 (logged and counted).",
    )
    job_budget_s: float = Field(
        3600.0,
        gt=0,
        description="Most seconds a job may spend grading in all; past it the job fails.",
    )
    embedding_model: str | None = Field(
        None,
        description="Base model (a name in base_models, e.g. a sentence-transformers encoder "
        "such as all-MiniLM-L6-v2) that text_similarity's `cosine` embeds with; unset: cosine "
        "is refused with a 400.",
    )
    judge_timeout_s: float = Field(
        60.0, gt=0, description="Most seconds one score_model/label_model judge call may take."
    )
    python_sandbox: bool = Field(
        False,
        description="Run `python` graders (client code) in a sandboxed subprocess: no "
        "network (a network namespace of its own), CPU, memory and time limits. Off: refused.",
    )
    python_timeout_s: float = Field(
        2.0, gt=0, description="Wall-clock seconds one python grader run may take."
    )
    python_memory_mb: int = Field(
        512, ge=64, description="Address-space limit of one python grader run, in MiB."
    )


class EvalSettings(SettingsGroup):
    """OpenAI's Evals API (core.evals): runs execute on workers, bounded per organization."""

    flat_prefix: ClassVar[str] = "eval_"
    flat_names: ClassVar[dict[str, str]] = {
        "max_active_runs_per_org": "max_active_eval_runs_per_org",
        "max_running_runs_per_org": "max_running_eval_runs_per_org",
    }

    max_items: int = Field(
        1000, ge=1, description="Rows one eval run may have (file_content or file_id); more is 400."
    )
    max_source_bytes: int = Field(
        16 * 1024**2, ge=1, description="Bytes of an eval run's file_id source; more is 400."
    )
    max_active_runs_per_org: int = Field(
        8,
        ge=1,
        description="Queued or running eval runs one organization may have; creating more is "
        "a 429, so one organization's runs cannot fill the workers' queue.",
    )
    max_running_runs_per_org: int = Field(
        1,
        ge=1,
        description="Eval runs of one organization executing at once; a worker leaves further "
        "ones queued and the reconciler offers them again.",
    )


class WebhookSettings(SettingsGroup):
    """Webhook delivery (core.webhooks): endpoints, attempts, backoff, the delivery log."""

    flat_prefix: ClassVar[str] = "webhook_"

    max_endpoints_per_org: int = Field(
        20, ge=1, description="Webhook endpoints one organization may register."
    )
    timeout_s: float = Field(
        10.0, gt=0, description="One delivery attempt's limit: connect, send and read."
    )
    max_attempts: int = Field(
        8, ge=1, description="Attempts per delivery before it is marked failed."
    )
    retry_base_s: float = Field(
        10.0, gt=0, description="Backoff after the first failed attempt; doubles each time."
    )
    retry_max_s: float = Field(3600.0, gt=0, description="Longest wait between attempts.")
    poll_interval_s: float = Field(
        1.0, gt=0, description="How often the API's delivery loop looks for due deliveries."
    )
    batch_size: int = Field(16, ge=1, description="Deliveries sent per loop pass.")
    response_bytes: int = Field(
        1024, ge=0, description="Bytes of a receiver's response body kept in the delivery log."
    )
    log_retention_s: float = Field(
        30 * 86400, gt=0, description="Finished deliveries are dropped from the log after this."
    )


class IntegrationSettings(SettingsGroup):
    """Training integrations (core.integrations): Weights & Biases and MLflow."""

    wandb_mode: Literal["auto", "online", "offline"] = Field(
        "auto", description="'auto': online when LATHE_WANDB_API_KEY is set, else offline."
    )
    wandb_api_key: str | None = Field(None, description="Weights & Biases key for online runs.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI for jobs whose mlflow block names none."
    )
    mlflow_file_root: Path | None = Field(
        None,
        description="Directory under which file: tracking URIs may write; unset: file: URIs "
        "are refused (they would write on the worker's disk).",
    )


class DriftSettings(SettingsGroup):
    """Drift monitoring (#17, core.drift): opt-in per organization, bounded storage."""

    flat_prefix: ClassVar[str] = "drift_"

    retention_days: float = Field(
        30.0, gt=0, description="Recorded inference samples older than this are deleted."
    )
    samples_per_model: int = Field(
        1000, ge=1, description="Most samples kept per (organization, model); older ones go."
    )
    prompt_chars: int = Field(
        2000, ge=1, description="Characters of each prompt kept (embedded when a report runs)."
    )
    window_samples: int = Field(
        256, ge=2, description="Most recent samples a drift report compares with training."
    )
    reference_rows: int = Field(
        256, ge=2, description="Training rows sampled (reservoir, fixed seed) as the reference."
    )
    min_samples: int = Field(
        20, ge=2, description="Fewer recent samples than this: the report says too few."
    )
    embedding_model: str | None = Field(
        None,
        description="Base model (an encoder in base_models, e.g. minilm) that prompts are "
        "embedded with for the drift score; unset: reports give length statistics only.",
    )
    opt_in_cache_s: float = Field(
        10.0, ge=0, description="How long an API process trusts its view of an org's opt-in."
    )


class TinkerSettings(SettingsGroup):
    """The Tinker-compatible training API (core.tinker, worker.tinker_trainer)."""

    flat_prefix: ClassVar[str] = "tinker_"

    max_clients_per_org: int = Field(
        4, ge=1, description="Live Tinker training clients (LoRAs held in memory) per organization."
    )
    max_lora_rank: int = Field(128, ge=1, description="Largest LoRA rank a client may ask.")
    max_samples: int = Field(64, ge=1, description="Largest num_samples of one sample call.")
    max_sample_tokens: int = Field(
        1024, ge=1, description="Largest max_tokens of one Tinker sample call."
    )
    session_idle_s: float = Field(
        120.0,
        gt=0,
        description="A Tinker session with no heartbeat for this long has its "
        "training clients released (their unsaved weights are dropped).",
    )
    lease_s: float = Field(
        30.0,
        gt=0,
        description="A trainer renews its training clients' lease this often x3; "
        "past it they count as lost with their trainer.",
    )
    poll_s: float = Field(
        25.0,
        gt=0,
        le=40,
        description="How long retrieve_future holds a poll (the SDK gives up at 45 s).",
    )
    trainer_capacity: int = Field(
        16, ge=1, description="Training clients one trainer process holds at most."
    )
    sample_on_vllm: bool = Field(
        True,
        description="Run `asample` on the inference service's vLLM server when it serves the "
        "sampler's base (and its sampler weights, if any, were saved by name); false, or "
        "where vLLM does not serve it: on the Tinker trainer.",
    )
    embedded_trainer: bool = Field(
        True,
        description="`lathe serve` with its embedded worker also starts one Tinker trainer "
        "(`lathe tinker-trainer`), so the Tinker API works on the embedded default; false "
        "leaves it to trainers started apart.",
    )


class MetricsSettings(SettingsGroup):
    """Prometheus metrics of the API and the workers."""

    flat_prefix: ClassVar[str] = "metrics_"
    flat_names: ClassVar[dict[str, str]] = {"worker_port": "worker_metrics_port"}

    worker_port: int | None = Field(
        None, description="Serve the worker's Prometheus metrics on this port (off when unset)."
    )
    listen: str | None = Field(
        None,
        description="host:port where the API serves /metrics instead of its own port (e.g. "
        "127.0.0.1:9464, reachable by Prometheus only); unset: /metrics on the API port.",
    )
    token: str | None = Field(
        None,
        description="When set, /metrics answers only `Authorization: Bearer <token>` "
        "(Prometheus' `authorization` scrape setting); unset: open, Prometheus' convention.",
    )


class ClientSettings(SettingsGroup):
    """The `lathe` client commands (files, jobs, models, chat) run on a user's machine, not
    the server: where they send requests and with which key. A profile file fills in what
    is unset."""

    base_url: str | None = Field(
        None, description="Client commands: the server, e.g. http://127.0.0.1:8000."
    )
    api_key: str | None = Field(None, description="Client commands: the bearer key they send.")


class Settings(BaseSettings):
    """Everything configurable, in groups: `settings.inference.url` is `LATHE_INFERENCE_URL`."""

    model_config = SettingsConfigDict(env_prefix="LATHE_", env_nested_delimiter="__")

    data_dir: Path = Field(Path(".lathe"), description="Root for embedded-mode state.")
    temp_dir: Path | None = Field(
        None,
        description="This deployment's own temporary files (uploads being received, job runs); "
        "the sweeper removes stale ones here and nowhere else. Default: data_dir/tmp.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where jobs train; auto: CUDA when the worker has a GPU, else CPU."
    )
    base_models: dict[str, BaseModelSource] = Field(
        default_factory=_default_base_models,
        description="Base models by name (JSON): where each one's weights come from "
        "(source builtin, path or hub, see BaseModelSource).",
    )
    model_cache_dir: Path | None = Field(None, description="Where builtin/hub models are kept.")
    fault_injection: bool = Field(
        False,
        description="Testing only, never in production: lets a job's metadata "
        "`lathe_fault_hang_step` / `lathe_fault_crash_step` make its training hang at that step "
        "(ignoring SIGTERM) or its training process die of SIGKILL there (tests/faults/).",
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    graders: GraderSettings = Field(default_factory=GraderSettings)
    evals: EvalSettings = Field(default_factory=EvalSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    integrations: IntegrationSettings = Field(default_factory=IntegrationSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    tinker: TinkerSettings = Field(default_factory=TinkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The flat `LATHE_*` names come after the nested form and before the defaults."""
        flat = FlatEnvSource(settings_cls, env_prefix=cls.model_config.get("env_prefix"))
        return init_settings, env_settings, flat, dotenv_settings, file_secret_settings

    @property
    def resolved_database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'lathe.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage.url or f"file://{(self.data_dir / 'objects').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker.url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def resolved_db_pool(self) -> tuple[int, int]:
        """(pool_size, max_overflow): together one connection per API thread, plus a few."""
        threads = self.server.api_threads
        size = self.database.pool_size or max(1, threads // 2)
        overflow = self.database.max_overflow
        return size, overflow if overflow is not None else max(0, threads + 4 - size)

    @property
    def resolved_rate_limit_storage_url(self) -> str:
        """An asyncio `limits` storage URI: shared Redis in production, memory embedded."""
        if self.quotas.rate_limit_storage_url:
            return self.quotas.rate_limit_storage_url
        if self.resolved_broker_url.startswith(("redis://", "rediss://")):
            return "async+" + self.resolved_broker_url
        return "async+memory://"

    @property
    def runs_embedded_worker(self) -> bool:
        if self.server.embedded_worker is not None:
            return self.server.embedded_worker
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def resolved_model_cache_dir(self) -> Path:
        return (self.model_cache_dir or self.data_dir / "models").resolve()

    @property
    def resolved_temp_dir(self) -> Path:
        return (self.temp_dir or self.data_dir / "tmp").resolve()


def setting_groups() -> dict[str, type[SettingsGroup]]:
    """Settings' groups by field name (`inference` → InferenceSettings), in declaration order."""
    return {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, SettingsGroup)
    }


def flat_names() -> dict[str, tuple[str, ...]]:
    """Every setting's flat name (its `LATHE_*` variable without the prefix, lower case) →
    its path in `Settings`: `inference_url` → ("inference", "url"), `data_dir` → ("data_dir",).
    The one table of the names settings had before they were grouped."""
    groups = setting_groups()
    names: dict[str, tuple[str, ...]] = {}
    for name in Settings.model_fields:
        if name not in groups:
            names[name] = (name,)
            continue
        for field in groups[name].model_fields:
            names[groups[name].flat_name(field)] = (name, field)
    return names


class FlatEnvSource(EnvSettingsSource):
    """Reads each group's fields from their flat variables (`LATHE_INFERENCE_URL` →
    `inference.url`), parsed as pydantic-settings parses any variable (JSON for lists)."""

    def __call__(self) -> dict[str, Any]:
        values: dict[str, dict[str, Any]] = {}
        groups = setting_groups()
        for flat, path in flat_names().items():
            if len(path) == 1:
                continue  # an ungrouped field: pydantic-settings reads it under the same name
            group, field = path
            raw = self.env_vars.get(f"{self.env_prefix}{flat}".lower())
            if raw is None:
                continue
            info = groups[group].model_fields[field]
            try:
                value = self.prepare_field_value(field, info, raw, False)
            except ValueError as exc:
                name = f"{self.env_prefix}{flat}".upper()
                raise SettingsError(f"error parsing value for {name}") from exc
            values.setdefault(group, {})[field] = value
        return values


@lru_cache
def get_settings() -> Settings:
    return Settings()
