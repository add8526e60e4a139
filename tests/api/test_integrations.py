"""`integrations` honoured: a tiny job logs its per-step metrics and hyperparameters to W&B
(offline: no network here; the run directory comes back as a result file) and to MLflow (a
file: tracking URI), read back from both; entries that cannot be honoured are 400s."""

from __future__ import annotations

import os
import tarfile

import openai
import pytest

from tests.utils.flows import capitals_jsonl, wait_job
from tests.utils.processes import free_port
from tests.utils.wandb_records import read_run

TINY = {"method": {"type": "supervised", "supervised": {"hyperparameters": {
    "n_epochs": 2, "batch_size": 4}}}}  # fmt: skip


def _training_file(client, tmp_path):
    return client.files.create(
        file=capitals_jsonl(tmp_path / "t.jsonl").open("rb"), purpose="fine-tune"
    )


def test_a_job_logs_to_wandb_and_mlflow(stack, tmp_path):
    client = stack.client()
    f = _training_file(client, tmp_path)
    store = f"file://{stack.env['LATHE_MLFLOW_FILE_ROOT']}/store"
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        integrations=[  # the SDK's own parameter; mlflow is Lathe's type in the same list
            {"type": "wandb", "wandb": {"project": "lathe-ci", "tags": ["ci"]}},
            {"type": "mlflow", "mlflow": {"tracking_uri": store, "experiment_name": "ci"}},
        ],
        extra_body=TINY,
    )
    done, _ = wait_job(client, job.id)
    assert done.status == "succeeded", done.error
    listed = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    events = [e for e in listed if e.type == "metrics"]
    steps = sorted(e.data["step"] for e in events)
    assert steps and steps[-1] == events[0].data["total_steps"]

    # W&B: the offline run directory, kept as a result file
    names = {client.files.retrieve(r).filename: r for r in done.result_files}
    archive = next(n for n in names if n.startswith("wandb-run-"))
    (tmp_path / archive).write_bytes(client.files.content(names[archive]).read())
    with tarfile.open(tmp_path / archive) as tar:
        tar.extractall(tmp_path / "wandb", filter="data")
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    config, history = read_run(run_file)
    logged = {row["_step"]: row for row in history if "train_loss" in row}
    warnings = [e.message for e in listed if e.level == "warning"]
    assert sorted(logged) == steps, (history, warnings)
    by_step = {e.data["step"]: e.data for e in events}
    assert all(logged[s]["train_loss"] == pytest.approx(by_step[s]["train_loss"]) for s in steps)
    assert config["method"] == "supervised" and config["seed"] == done.seed
    assert config["hyperparameters"]["batch_size"] == 4

    # MLflow: the run in the file store, tagged with the job
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    mlflow = MlflowClient(tracking_uri=store)
    (run,) = mlflow.search_runs(
        [mlflow.get_experiment_by_name("ci").experiment_id],
        filter_string=f"tags.`lathe.job_id` = '{job.id}'",
    )
    assert run.info.status == "FINISHED"
    history = mlflow.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == steps
    assert run.data.params["method"] == "supervised" and run.data.params["batch_size"] == "4"
    assert run.data.params["adapter.type"] == "lora"


def test_a_tracker_that_cannot_start_fails_the_job_naming_it(stack, tmp_path):
    client = stack.client()
    f = _training_file(client, tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        integrations=[{"type": "mlflow", "mlflow": {"tracking_uri": dead}}],
        extra_body=TINY,
    )
    done, _ = wait_job(client, job.id)
    assert done.status == "failed"
    assert (done.error.code, done.error.param) == ("integration_failed", "integrations.0")


@pytest.mark.parametrize(
    ("entry", "param"),
    [
        ({"type": "comet", "comet": {}}, "integrations.0.type"),
        ({"type": "wandb", "wandb": {}}, "integrations.0.wandb.project"),
        ({"type": "wandb", "wandb": {"project": "p", "colour": "red"}},
         "integrations.0.wandb.colour"),
        ({"type": "mlflow", "mlflow": {}}, "integrations.0.mlflow.tracking_uri"),
        ({"type": "mlflow", "mlflow": {"tracking_uri": "file:///etc/x"}},
         "integrations.0.mlflow.tracking_uri"),
        ({"type": "mlflow", "mlflow": {"tracking_uri": "http://169.254.169.254/"}},
         "integrations.0.mlflow.tracking_uri"),
        ({"type": "mlflow", "mlflow": {"tracking_uri": "databricks"}},
         "integrations.0.mlflow.tracking_uri"),
    ],
)  # fmt: skip
def test_integrations_that_cannot_be_honoured_are_refused(stack, tmp_path, entry, param):
    client = stack.client()
    f = _training_file(client, tmp_path)
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=f.id, extra_body={"integrations": [entry]}
        )
    assert bad.value.body["param"] == param, bad.value.body
