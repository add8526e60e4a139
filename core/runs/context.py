"""What one run knows about its job, read once where the run starts (`core.runs.runner`).

A job's spec is stored as JSON; a run parses it here, once, into the `JobCreate` model the API
validated it as, so every step after (data, weights, training, checks, publishing) reads typed
fields (`run.spec.resources.gpus`, `run.method`) instead of digging through a dict with
defaults of its own that could drift from the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from core.jobspec.job import JobCreate
from core.persistence.models import Job
from core.runs.failures import JobFailure
from core.settings import Settings
from core.storage import Storage, worker_storage


def resolve_device(settings: Settings) -> str:
    """LATHE_DEVICE, or with "auto" the first CUDA device when there is one."""
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class RunContext:
    """One run of one job: the settings, the job's row (detached: ids, model names, seed,
    files, metadata), its parsed spec, the run's scratch directory and its device."""

    settings: Settings
    job: Job
    spec: JobCreate
    work: Path
    device: str

    @classmethod
    def start(cls, settings: Settings, job: Job, work: Path) -> RunContext:
        """The context of a run of `job`; a JobFailure when its stored spec no longer parses
        (stored by another release): the job fails saying so, not as an internal error."""
        try:
            spec = JobCreate.model_validate(job.spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(part) for part in first["loc"]) or None
            message = f"the job's stored spec no longer parses: {param}: {first['msg']}"
            raise JobFailure("invalid_spec", message, param) from exc
        return cls(settings, job, spec, work, resolve_device(settings))

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def organization_id(self) -> str:
        return self.job.organization_id

    @property
    def method(self) -> str:
        """`method.type`: the registered method that runs the job (core.methods)."""
        return self.spec.method.type

    def storage(self, retry_s: float | None = None) -> Storage:
        """The worker's storage client, retrying through an outage for `retry_s` if given."""
        return worker_storage(self.settings, retry_s)
