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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LATHE_", env_nested_delimiter="__")

    data_dir: Path = Field(Path(".lathe"), description="Root for embedded-mode state.")
    temp_dir: Path | None = Field(
        None,
        description="This deployment's own temporary files (uploads being received, job runs); "
        "the sweeper removes stale ones here and nowhere else. Default: data_dir/tmp.",
    )
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
    max_line_bytes: int = Field(
        8 * 1024**2,
        ge=1024,
        description="Longest dataset line (JSONL line, CSV record, parquet row) read, in bytes "
        "(decompressed); a longer one is a dataset error naming the line, never read whole.",
    )
    max_dataset_lines: int = Field(
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
    max_dataset_columns: int = Field(
        1000, ge=1, description="Most columns a CSV header or a parquet schema may have."
    )
    max_parquet_row_group_bytes: int = Field(
        256 * 1024**2,
        ge=1024**2,
        description="Largest decoded (uncompressed) parquet row group, from the file's "
        "metadata, checked before anything is decoded.",
    )
    grader_row_budget_s: float = Field(
        1.0,
        gt=0,
        description="Most seconds grading one sampled completion may take; a row over it "
        "scores 0 (logged and counted).",
    )
    grader_job_budget_s: float = Field(
        3600.0,
        gt=0,
        description="Most seconds a job may spend grading in all; past it the job fails.",
    )
    dry_run_max_examples: int = Field(
        20_000,
        ge=1,
        description="Examples the dataset dry run keeps and measures (tokens, duplicates); "
        "the whole file is still validated.",
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
    batch_max_requests: int = Field(
        50_000, ge=1, description="Requests one batch input file may hold (more: a 400)."
    )
    batch_max_active: int = Field(
        2, ge=1, description="Unfinished batches one organization may have at once (more: 429)."
    )
    batch_concurrency: int = Field(
        4,
        ge=1,
        description="Requests of one batch in flight to the inference service at once: few, so "
        "live requests find room in the engine's batch.",
    )
    batch_slice: int = Field(
        64,
        ge=1,
        description="Requests a worker runs before storing their results and handing the "
        "batch back to the queue (so training jobs and other batches get their turn).",
    )
    reconcile_interval_s: float = Field(30.0, description="How often queued jobs are re-enqueued.")
    reconcile_after_s: float = Field(60.0, description="A job queued this long is re-enqueued.")
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
    job_timeout_s: float = Field(
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
    sweep_interval_s: float = Field(
        600.0, gt=0, description="How often the API removes orphaned objects and temp files."
    )
    sweep_after_s: float = Field(
        3600.0,
        ge=0,
        description="Orphaned objects, incomplete multipart uploads and temp files older than "
        "this are removed by the sweeper (younger ones may still be being written).",
    )
    fault_injection: bool = Field(
        False,
        description="Testing only, never in production: lets a job's metadata "
        "`lathe_fault_hang_step` / `lathe_fault_crash_step` make its training hang at that step "
        "(ignoring SIGTERM) or its training process die of SIGKILL there (tests/faults/).",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    api_threads: int = Field(
        40,
        ge=1,
        description="Worker threads of the API (sync routes, auth look-ups); the database pool "
        "holds as many connections, so a thread never waits on a connection another holds.",
    )
    db_pool_size: int | None = Field(
        None, ge=1, description="Postgres connections kept open; default api_threads // 2."
    )
    db_max_overflow: int | None = Field(
        None,
        ge=0,
        description="Extra connections under load; default so that pool + overflow = "
        "api_threads + 4 (the reconciler and dependency teardown run beside the threads).",
    )
    db_pool_timeout_s: float = Field(
        10.0, gt=0, description="Wait this long for a pooled connection, then answer 503."
    )
    max_json_bytes: int = Field(
        2 * 1024**2,
        ge=1024,
        description="Largest request body other than a file upload; larger ones get 413 "
        "before they are read.",
    )
    auth_cache_ttl_s: float = Field(
        2.0,
        ge=0,
        description="How long an API key's look-up is cached per API process (0: never). A "
        "key revoked through the admin API stops at once in that process, elsewhere within "
        "this time.",
    )
    admin_key: str | None = Field(
        None,
        description="Operator key for the /v1/admin endpoints (keys and organizations); "
        "unset: those endpoints answer 401.",
    )
    rate_limit_storage_url: str | None = Field(
        None,
        description="`limits` storage for rate limits and quotas: default Redis when the "
        "broker is redis://, else in this process's memory.",
    )
    requests_per_minute: int = Field(
        600, ge=1, description="Requests one organization may make per minute (then 429)."
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
    bootstrap_org: str = Field("default", description="Org created for the embedded first key.")
    log_level: str = Field("INFO", description="Python logging level of every process.")
    log_file: str | None = Field(
        None,
        description="Where `lathe serve` writes its own, its embedded worker's and its "
        "inference service's logs. Unset: `<data_dir>/lathe.log` on the embedded default "
        "(SQLite), the terminal otherwise; `-`: the terminal.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="json: one JSON object per log line, with job_id/org_id when known."
    )
    worker_metrics_port: int | None = Field(
        None, description="Serve the worker's Prometheus metrics on this port (off when unset)."
    )
    metrics_listen: str | None = Field(
        None,
        description="host:port where the API serves /metrics instead of its own port (e.g. "
        "127.0.0.1:9464, reachable by Prometheus only); unset: /metrics on the API port.",
    )
    metrics_token: str | None = Field(
        None,
        description="When set, /metrics answers only `Authorization: Bearer <token>` "
        "(Prometheus' `authorization` scrape setting); unset: open, Prometheus' convention.",
    )
    # --- graders (core/graders): cosine's encoder, model graders, the python sandbox ---
    grader_embedding_model: str | None = Field(
        None,
        description="Base model (a name in base_models, e.g. a sentence-transformers encoder "
        "such as all-MiniLM-L6-v2) that text_similarity's `cosine` embeds with; unset: cosine "
        "is refused with a 400.",
    )
    grader_judge_timeout_s: float = Field(
        60.0, gt=0, description="Most seconds one score_model/label_model judge call may take."
    )
    grader_python_sandbox: bool = Field(
        False,
        description="Run `python` graders (client code) in a sandboxed subprocess: no "
        "network (a network namespace of its own), CPU, memory and time limits. Off: refused.",
    )
    grader_python_timeout_s: float = Field(
        2.0, gt=0, description="Wall-clock seconds one python grader run may take."
    )
    grader_python_memory_mb: int = Field(
        512, ge=64, description="Address-space limit of one python grader run, in MiB."
    )
    # --- OpenAI's Evals API (core.evals): runs execute on workers, bounded per organization ---
    eval_max_items: int = Field(
        1000, ge=1, description="Rows one eval run may have (file_content or file_id); more is 400."
    )
    eval_max_source_bytes: int = Field(
        16 * 1024**2, ge=1, description="Bytes of an eval run's file_id source; more is 400."
    )
    max_active_eval_runs_per_org: int = Field(
        8,
        ge=1,
        description="Queued or running eval runs one organization may have; creating more is "
        "a 429, so one organization's runs cannot fill the workers' queue.",
    )
    max_running_eval_runs_per_org: int = Field(
        1,
        ge=1,
        description="Eval runs of one organization executing at once; a worker leaves further "
        "ones queued and the reconciler offers them again.",
    )
    # --- Distributed training (#18): worker sizes, queue routing, strategy defaults ---
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
    # --- One job across hosts (#23): the Ray cluster multi-node jobs are submitted to ---
    ray_address: str | None = Field(
        None,
        description="The Ray cluster's job-submission address (its dashboard, e.g. "
        "http://ray-head:8265). Set: jobs with resources.nodes above 1 are accepted, and "
        "workers with it consume their queue and submit them through Ray's Job Submission "
        "API (core.runs.ray_submit). Unset: such jobs are refused with a 400.",
    )
    ray_python: str = Field(
        "python",
        description="The interpreter of Lathe on the Ray nodes: the Ray job's entrypoint is "
        "`<ray_python> -m core.runs.ray_driver ...`.",
    )
    ray_forward_env: list[str] = Field(
        default_factory=lambda: ["LATHE_*", "AWS_*", "PYTHONPATH", "OMP_NUM_THREADS", "HF_*"],
        description="Environment variables (shell patterns) of the worker given to the Ray "
        "job (runtime_env.env_vars), so its ranks reach the same database and storage. "
        "They show in Ray's dashboard: [] where the Ray nodes carry Lathe's configuration "
        "themselves (the ranks inherit their node's environment).",
    )
    # The `lathe` client commands (files, jobs, models, chat) run on a user's machine, not the
    # server: where they send requests and with which key. A profile file fills in what is unset.
    base_url: str | None = Field(
        None, description="Client commands: the server, e.g. http://127.0.0.1:8000."
    )
    api_key: str | None = Field(None, description="Client commands: the bearer key they send.")

    # --- Uploads API (core.uploads): a file sent in parts, OpenAI's /v1/uploads ---
    max_upload_part_bytes: int = Field(
        64 * 1024**2, ge=1, description="Largest part of an Upload (OpenAI: 64 MB); more is 400."
    )
    upload_expires_s: float = Field(
        3600.0,
        gt=0,
        description="An Upload not completed this long after it was created expires (OpenAI: "
        "an hour); the sweeper removes its parts.",
    )
    # --- Webhooks (core.webhooks) and training integrations (core.integrations) ---
    webhook_max_endpoints_per_org: int = Field(
        20, ge=1, description="Webhook endpoints one organization may register."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="One delivery attempt's limit: connect, send and read."
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Attempts per delivery before it is marked failed."
    )
    webhook_retry_base_s: float = Field(
        10.0, gt=0, description="Backoff after the first failed attempt; doubles each time."
    )
    webhook_retry_max_s: float = Field(3600.0, gt=0, description="Longest wait between attempts.")
    webhook_poll_interval_s: float = Field(
        1.0, gt=0, description="How often the API's delivery loop looks for due deliveries."
    )
    webhook_batch_size: int = Field(16, ge=1, description="Deliveries sent per loop pass.")
    webhook_response_bytes: int = Field(
        1024, ge=0, description="Bytes of a receiver's response body kept in the delivery log."
    )
    webhook_log_retention_s: float = Field(
        30 * 86400, gt=0, description="Finished deliveries are dropped from the log after this."
    )
    allow_private_urls: bool = Field(
        False,
        description="Let URLs users give (webhook endpoints, MLflow tracking URIs) resolve "
        "to loopback/private addresses (tests, receivers beside a self-hosted Lathe). "
        "Link-local (cloud metadata) stays refused.",
    )
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
    # --- Drift monitoring (#17, core.drift): opt-in per organization, bounded storage ---
    drift_retention_days: float = Field(
        30.0, gt=0, description="Recorded inference samples older than this are deleted."
    )
    drift_samples_per_model: int = Field(
        1000, ge=1, description="Most samples kept per (organization, model); older ones go."
    )
    drift_prompt_chars: int = Field(
        2000, ge=1, description="Characters of each prompt kept (embedded when a report runs)."
    )
    drift_window_samples: int = Field(
        256, ge=2, description="Most recent samples a drift report compares with training."
    )
    drift_reference_rows: int = Field(
        256, ge=2, description="Training rows sampled (reservoir, fixed seed) as the reference."
    )
    drift_min_samples: int = Field(
        20, ge=2, description="Fewer recent samples than this: the report says too few."
    )
    drift_embedding_model: str | None = Field(
        None,
        description="Base model (an encoder in base_models, e.g. minilm) that prompts are "
        "embedded with for the drift score; unset: reports give length statistics only.",
    )
    drift_opt_in_cache_s: float = Field(
        10.0, ge=0, description="How long an API process trusts its view of an org's opt-in."
    )

    # --- Tinker-compatible training API (core.tinker, worker.tinker_trainer) ---
    tinker_max_clients_per_org: int = Field(
        4, ge=1, description="Live Tinker training clients (LoRAs held in memory) per organization."
    )
    tinker_max_lora_rank: int = Field(128, ge=1, description="Largest LoRA rank a client may ask.")
    tinker_max_samples: int = Field(64, ge=1, description="Largest num_samples of one sample call.")
    tinker_max_sample_tokens: int = Field(
        1024, ge=1, description="Largest max_tokens of one Tinker sample call."
    )
    tinker_session_idle_s: float = Field(
        120.0,
        gt=0,
        description="A Tinker session with no heartbeat for this long has its "
        "training clients released (their unsaved weights are dropped).",
    )
    tinker_lease_s: float = Field(
        30.0,
        gt=0,
        description="A trainer renews its training clients' lease this often x3; "
        "past it they count as lost with their trainer.",
    )
    tinker_poll_s: float = Field(
        25.0,
        gt=0,
        le=40,
        description="How long retrieve_future holds a poll (the SDK gives up at 45 s).",
    )
    tinker_trainer_capacity: int = Field(
        16, ge=1, description="Training clients one trainer process holds at most."
    )
    tinker_embedded_trainer: bool = Field(
        True,
        description="`lathe serve` with its embedded worker also starts one Tinker trainer "
        "(`lathe tinker-trainer`), so the Tinker API works on the embedded default; false "
        "leaves it to trainers started apart.",
    )

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
    def resolved_db_pool(self) -> tuple[int, int]:
        """(pool_size, max_overflow): together one connection per API thread, plus a few."""
        size = self.db_pool_size or max(1, self.api_threads // 2)
        total = self.api_threads + 4
        return size, self.db_max_overflow if self.db_max_overflow is not None else max(
            0, total - size
        )

    @property
    def resolved_rate_limit_storage_url(self) -> str:
        """An asyncio `limits` storage URI: shared Redis in production, memory embedded."""
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.resolved_broker_url.startswith(("redis://", "rediss://")):
            return "async+" + self.resolved_broker_url
        return "async+memory://"

    @property
    def runs_embedded_worker(self) -> bool:
        if self.embedded_worker is not None:
            return self.embedded_worker
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def resolved_model_cache_dir(self) -> Path:
        return (self.model_cache_dir or self.data_dir / "models").resolve()

    @property
    def resolved_temp_dir(self) -> Path:
        return (self.temp_dir or self.data_dir / "tmp").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()
