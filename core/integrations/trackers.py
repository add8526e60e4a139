"""The experiment trackers a job's integrations log to, from the training process.

Each is started before training (a failure then fails the job, naming the entry: the user
asked for tracking and would not get it), is fed every metrics event and the resolved
hyperparameters, and is finished with the run's outcome. The packages are imported here
only, lazily: the API never loads them.
"""

from __future__ import annotations

import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.integrations.spec import MlflowIntegration, WandbIntegration
from core.settings import Settings


@dataclass
class RunInfo:
    """What a tracker says about the job's run."""

    job_id: str
    base_model: str
    params: dict[str, Any]
    work_dir: Path


class Tracker(Protocol):
    label: str
    """The entry it serves, as the job's spec names it: `integrations.0 (wandb)`."""

    def start(self, run: RunInfo) -> None: ...
    def params(self, values: dict[str, Any]) -> None: ...
    def metrics(self, step: int, values: dict[str, float]) -> None: ...
    def finish(self, outcome: str) -> Path | None:
        """`outcome`: succeeded | failed | stopped. Returns a file to keep as a job result."""
        ...


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"adapter": {"r": 8}} → {"adapter.r": 8}: MLflow params are flat."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


class WandbTracker:
    """A Weights & Biases run: online with LATHE_WANDB_API_KEY (or LATHE_WANDB_MODE=online),
    else offline. Its run directory is archived (.tar.gz) as a job result file: extract it
    and `wandb sync` it to upload an offline run."""

    def __init__(self, index: int, spec: WandbIntegration, settings: Settings):
        self.label = f"integrations.{index} (wandb)"
        self.options = spec.wandb
        self.settings = settings
        self.run: Any = None
        self.dir: Path | None = None

    def _mode(self) -> str:
        if self.settings.integrations.wandb_mode != "auto":
            return self.settings.integrations.wandb_mode
        return "online" if self.settings.integrations.wandb_api_key else "offline"

    def start(self, run: RunInfo) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        if self.settings.integrations.wandb_api_key:
            os.environ["WANDB_API_KEY"] = self.settings.integrations.wandb_api_key
        import wandb

        self.dir = run.work_dir / self.label.split()[0].replace(".", "-")
        self.dir.mkdir(parents=True, exist_ok=True)
        default_tags = ["lathe/finetune", f"lathe/{run.base_model}"[:64], f"lathe/{run.job_id}"]
        self.run = wandb.init(
            project=self.options.project,
            entity=self.options.entity,
            name=self.options.name or run.job_id,
            group=run.job_id,  # a paused and resumed job: one run per run, in one group
            tags=default_tags + self.options.tags,
            config=run.params,
            dir=str(self.dir),
            mode=self._mode(),
            reinit="create_new",
            settings=wandb.Settings(
                console="off", x_disable_stats=True, save_code=False, disable_git=True
            ),
        )

    def params(self, values: dict[str, Any]) -> None:
        self.run.config.update({"hyperparameters": values}, allow_val_change=True)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def finish(self, outcome: str) -> Path | None:
        if self.run is None:
            return None
        import wandb

        self.run.finish(exit_code=0 if outcome == "succeeded" else 1)
        wandb.teardown()  # waits for wandb-core to write the whole run before it is archived
        run_dir = Path(self.run.dir).parent  # .../wandb/offline-run-<time>-<id>
        archive = run_dir.parents[1] / f"wandb-run-{self.run.id}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:  # links (wandb's debug logs) point elsewhere
            tar.add(run_dir, run_dir.name, filter=lambda m: None if m.issym() else m)
        return archive


class MlflowTracker:
    """An MLflow run in `experiment_name` on the entry's tracking URI, tagged with the job."""

    STATUS = {"succeeded": "FINISHED", "failed": "FAILED"}

    def __init__(self, index: int, spec: MlflowIntegration, settings: Settings):
        self.label = f"integrations.{index} (mlflow)"
        self.options = spec.mlflow
        self.client: Any = None
        self.run_id: str | None = None
        self._logged: set[str] = set()

    def start(self, run: RunInfo) -> None:
        uri = self.options.tracking_uri
        assert uri is not None  # filled in by spec.parse
        if uri.startswith("file:"):  # MLflow 3 keeps its file store behind this opt-in
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        # bounded: MLflow's defaults retry a dead server for minutes (7 tries, 120 s each)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        name = self.options.experiment_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(name)
            except Exception:  # another job created it meanwhile
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        tags = {"lathe.job_id": run.job_id, "lathe.base_model": run.base_model}
        name = self.options.run_name or run.job_id
        tags |= self.options.tags
        created = self.client.create_run(experiment_id, run_name=name, tags=tags)
        self.run_id = created.info.run_id
        self.params(run.params)

    def params(self, values: dict[str, Any]) -> None:
        """MLflow params are write-once: a key logged before keeps its first value."""
        from mlflow.entities import Param

        fresh = {k: v for k, v in flatten(values).items() if k not in self._logged}
        if fresh:
            batch = [Param(k, str(v)[:6000]) for k, v in fresh.items()]
            self.client.log_batch(self.run_id, params=batch)
            self._logged |= set(fresh)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def finish(self, outcome: str) -> Path | None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, self.STATUS.get(outcome, "KILLED"))
        return None


def make(index: int, spec: WandbIntegration | MlflowIntegration, settings: Settings) -> Tracker:
    if isinstance(spec, WandbIntegration):
        return WandbTracker(index, spec, settings)
    return MlflowTracker(index, spec, settings)
