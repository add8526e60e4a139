"""Hyperparameter sweeps end to end in production mode (uvicorn, Celery on Redis, Postgres,
S3), driven with the official openai client's raw requests: a 2×2 grid whose best trial is the
one with the lowest validation loss, trials that are real jobs, max_parallel, cancel, errors."""

from __future__ import annotations

import time

import openai
import pytest

from tests.utils.distill import LORA, TRAIN_QUESTIONS, VALID_QUESTIONS, task_rows
from tests.utils.rlhf import write_jsonl

pytestmark = pytest.mark.slow

ACTIVE = {"pending": False, "validating_files": True, "queued": True, "running": True}


@pytest.fixture(scope="module")
def files(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweeps")
    client = stack.client()

    def upload(name: str, rows: list[dict]) -> str:
        path = write_jsonl(tmp / name, rows)
        return client.files.create(file=path.open("rb"), purpose="fine-tune").id

    return upload("train.jsonl", task_rows(TRAIN_QUESTIONS)), upload(
        "valid.jsonl", task_rows(VALID_QUESTIONS)
    )


def sweep_body(files, space: dict, **extra) -> dict:
    train, valid = files
    return {
        "model": "tiny-llama",
        "training_file": train,
        "validation_file": valid,
        "seed": 7,
        "adapter": LORA,
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"batch_size": 4, "packing": False}},
        },
        "search_space": space,
        "objective": {"metric": "valid_loss", "goal": "minimize"},
        "max_parallel": 2,
        **extra,
    }


def post(client: openai.OpenAI, path: str, body: dict | None = None) -> dict:
    return client.post(path, body=body or {}, cast_to=object)


def get(client: openai.OpenAI, path: str) -> dict:
    return client.get(path, cast_to=object)


def wait_sweep(client, sweep_id: str, timeout: float = 400) -> tuple[dict, int]:
    """The finished sweep, and the most trials seen unfinished at once while polling."""
    most = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = get(client, f"/fine_tuning/sweeps/{sweep_id}")
        most = max(most, sum(ACTIVE.get(t["status"], False) for t in sweep["trials"]))
        if sweep["status"] != "running":
            return sweep, most
        time.sleep(0.5)
    raise TimeoutError(f"sweep {sweep_id} still running after {timeout}s")


def most_overlapping(jobs) -> int:
    """The most jobs alive (created, not yet finished) at any one moment, from their stamps."""
    edges = sorted(
        [(j.created_at, 1) for j in jobs] + [(j.finished_at, -1) for j in jobs],
        key=lambda e: (e[0], e[1]),  # a finish at the same second comes first
    )
    alive = most = 0
    for _, delta in edges:
        alive += delta
        most = max(most, alive)
    return most


def test_grid_sweep_finds_the_best_learning_rate(stack, files):
    client = stack.client()
    space = {"learning_rate": [3e-3, 1e-9], "n_epochs": [2, 3]}
    created = post(client, "/fine_tuning/sweeps", sweep_body(files, space))
    assert created["object"] == "fine_tuning.sweep" and created["status"] == "running"
    assert len(created["trials"]) == 4
    assert sum(t["job_id"] is not None for t in created["trials"]) == 2  # max_parallel

    sweep, most_active = wait_sweep(client, created["id"])
    assert sweep["status"] == "succeeded", sweep
    assert most_active <= 2
    trials = sweep["trials"]
    jobs = [client.fine_tuning.jobs.retrieve(t["job_id"]) for t in trials]
    for trial, job in zip(trials, jobs, strict=True):  # every trial is a real, finished job
        assert job.status == "succeeded" and trial["status"] == "succeeded"
        assert job.metadata["lathe_sweep"] == sweep["id"]
        assert job.metadata["lathe_sweep_trial"] == str(trial["index"])
        assert trial["objective"] == pytest.approx(job.evaluation["tuned"]["valid_loss"])
        assert job.hyperparameters.learning_rate == trial["parameters"]["learning_rate"]
        assert job.hyperparameters.n_epochs == trial["parameters"]["n_epochs"]
        assert client.fine_tuning.jobs.list_events(job.id).data
    assert most_overlapping(jobs) <= 2  # never more than max_parallel unfinished trials
    lowest = min(trials, key=lambda t: t["objective"])
    assert sweep["best_trial"]["index"] == lowest["index"]
    assert sweep["best_trial"]["parameters"]["learning_rate"] == 3e-3
    assert sweep["fine_tuned_model"] == jobs[lowest["index"]].fine_tuned_model
    tiny = [t["objective"] for t in trials if t["parameters"]["learning_rate"] == 1e-9]
    assert min(tiny) > 2 * lowest["objective"]  # the absurd rate learned nothing
    listed = get(client, "/fine_tuning/sweeps")
    assert sweep["id"] in [s["id"] for s in listed["data"]]
    mine = client.fine_tuning.jobs.list(extra_query={"metadata[lathe_sweep]": sweep["id"]})
    assert {j.id for j in mine.data} == {j.id for j in jobs}


def test_cancel_stops_every_trial(stack, files):
    client = stack.client()
    space = {"learning_rate": [3e-3, 1e-3], "n_epochs": [60, 80]}
    created = post(client, "/fine_tuning/sweeps", sweep_body(files, space))
    started = [t["job_id"] for t in created["trials"] if t["job_id"]]
    deadline = time.monotonic() + 120
    while client.fine_tuning.jobs.retrieve(started[0]).status != "running":
        assert time.monotonic() < deadline, "the first trial never started"
        time.sleep(0.3)
    cancelled = post(client, f"/fine_tuning/sweeps/{created['id']}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
    for trial in cancelled["trials"]:  # those that never started will never start either
        assert trial["status"] == "cancelled", trial
    assert cancelled["best_trial"] is None and cancelled["fine_tuned_model"] is None
    assert _reconciler_pass(stack, created["id"]) == []  # what the reconciler's pass would start
    after = get(client, f"/fine_tuning/sweeps/{created['id']}")
    assert [t["job_id"] for t in after["trials"] if t["job_id"]] == started
    for job_id in started:
        assert client.fine_tuning.jobs.retrieve(job_id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        post(client, f"/fine_tuning/sweeps/{created['id']}/cancel")


def _reconciler_pass(stack, sweep_id: str) -> list[str]:
    """The jobs a reconciler pass over the sweep creates (core.sweeps.service.advance, run
    here on the stack's database rather than waited for in the worker)."""
    from core.persistence.db import session_scope
    from core.persistence.models import Sweep
    from core.sweeps.service import advance

    with session_scope(stack.env["LATHE_DATABASE_URL"]) as session:
        return advance(session, session.get(Sweep, sweep_id))


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


@pytest.mark.parametrize(
    ("space", "extra", "param"),
    [
        ({"learning_rate": [-1.0, 1e-3]}, {}, "search_space.learning_rate"),
        ({"learning_rate": {"min": 1e-5, "max": 1e-3}}, {}, "search_space.learning_rate"),
        ({"bogus": [1, 2]}, {}, "search_space.bogus"),
        ({"adapter.r": [0, 8]}, {}, "search_space.adapter.r"),
        ({"learning_rate": {"min": 1e-3, "max": 1e-5, "log": True}}, {}, "search_space"),
        ({"learning_rate": [1e-3]}, {"search": {"type": "random"}}, "search"),
        ({"learning_rate": [1e-3]}, {"objective": {"metric": "vibes"}}, "objective.metric"),
        ({"learning_rate": [1e-3]}, {"max_parallel": 0}, "max_parallel"),
        ({"learning_rate": [1e-3]}, {"validation_file": None}, "objective.metric"),
    ],
)
def test_bad_sweeps_are_400_naming_the_field(stack, files, space, extra, param):
    with pytest.raises(openai.BadRequestError) as exc:
        post(stack.client(), "/fine_tuning/sweeps", sweep_body(files, space, **extra))
    assert _error(exc.value)["param"].startswith(param)


def test_random_search_draws_log_uniform_points_and_another_org_sees_404(stack, files):
    client = stack.client()
    space = {"learning_rate": {"min": 1e-5, "max": 1e-2, "log": True}, "adapter.r": [4, 8]}
    body = sweep_body(
        files, space, search={"type": "random", "n_trials": 3, "seed": 1}, max_parallel=1
    )
    body["method"]["supervised"]["hyperparameters"]["n_epochs"] = 1
    created = post(client, "/fine_tuning/sweeps", body)
    points = [t["parameters"] for t in created["trials"]]
    assert all(1e-5 <= p["learning_rate"] <= 1e-2 and p["adapter.r"] in (4, 8) for p in points)
    with pytest.raises(openai.NotFoundError):
        get(stack.client(stack.other_key), f"/fine_tuning/sweeps/{created['id']}")
    with pytest.raises(openai.NotFoundError):
        post(stack.client(stack.other_key), f"/fine_tuning/sweeps/{created['id']}/cancel")
    first = client.fine_tuning.jobs.retrieve(created["trials"][0]["job_id"])
    assert first.adapter["r"] == points[0]["adapter.r"]
    post(client, f"/fine_tuning/sweeps/{created['id']}/cancel")


EPOCHS = 200


def test_median_rule_stops_the_clearly_worse_trial(stack, files):
    """One trial at a time: the good rate finishes first; the absurd one is stopped by the
    reconciler's pass once its first evaluation is worse than the first trial's curve."""
    client = stack.client()
    body = sweep_body(
        files,
        {"learning_rate": [3e-3, 1e-9]},
        max_parallel=1,
        pruning={"type": "median", "min_trials": 1},
    )
    hp = body["method"]["supervised"]["hyperparameters"]
    # long enough that the reconciler's pass (every 2 s) comes well before the last step even
    # on a fast machine (a quiet CPU ran 40 epochs, 120 steps, inside one pass); no checkpoints
    hp.update(n_epochs=EPOCHS, checkpoint_interval=10_000)
    sweep, _ = wait_sweep(client, post(client, "/fine_tuning/sweeps", body)["id"])
    good, absurd = sweep["trials"]
    assert sweep["status"] == "succeeded" and sweep["best_trial"]["index"] == good["index"]
    assert good["status"] == "succeeded" and not good["pruned"]
    assert absurd["pruned"] and absurd["status"] == "cancelled" and absurd["objective"] is None
    events = client.fine_tuning.jobs.list_events(absurd["job_id"], limit=100).data
    stop = [e for e in events if e.message.startswith(f"Stopped by sweep {sweep['id']}")]
    assert stop and stop[0].data["step"] < EPOCHS * 3  # stopped before its last step
