"""The forgetting check and benchmarks through the API and the worker: a full fine-tune of the
builtin pretrained base on a narrow task reports `forgetting` on the job (scored on an
uploaded general_file) and warns in an event; a multiple-choice task file of that task,
scored by lm-eval, shows the tuned model winning where the base does not; both show in
`lathe jobs get`; fields that cannot apply are refused naming them."""

from __future__ import annotations

import json

import openai
import pytest

from core.tiny_pretrain import knowledge
from tests.utils.flows import wait_job

NARROW = [
    {
        "messages": [
            {"role": "user", "content": f"Name a fruit, please ({i})."},
            {"role": "assistant", "content": "banana banana banana"},
        ]
    }
    for i in range(8)
]
FRUIT_MC = [  # the task NARROW trains: the base prefers the short, familiar words
    {
        "query": f"<|user|>\nName a fruit, please ({i}).<|end|>\n<|assistant|>\n",
        "choices": ["Paris", "banana banana banana", "blue"],
        "gold": 1,
    }
    for i in range(8, 14)
]
HP = {"n_epochs": 12, "batch_size": 8, "learning_rate": 3e-3, "packing": False}


def _upload(client, tmp, name: str, rows: list[dict], purpose: str = "fine-tune"):
    path = tmp / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return client.files.create(file=path.open("rb"), purpose=purpose)


@pytest.fixture(scope="module")
def files(stack, tmp_path_factory):
    client = stack.client()
    tmp = tmp_path_factory.mktemp("forgetting")
    general = [{"text": fact} for fact in knowledge()]
    return (
        _upload(client, tmp, "narrow.jsonl", NARROW),
        _upload(client, tmp, "general.jsonl", general),
        _upload(client, tmp, "fruit_mc.jsonl", FRUIT_MC, purpose="evals"),
    )


@pytest.fixture(scope="module")
def forgetful(stack, files):
    client = stack.client()
    train, general, task = files
    assert task.status == "processed"
    created = client.fine_tuning.jobs.create(
        model="tiny-llama-pretrained",
        training_file=train.id,
        seed=1,
        extra_body={
            "adapter": {"type": "full"},
            "method": {"type": "supervised", "supervised": {"hyperparameters": HP}},
            "evaluation": {
                "general_file": general.id,
                "forgetting_threshold": 0.5,
                "benchmark_files": [task.id],
            },
        },
    )
    done, _ = wait_job(client, created.id, timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    return done, general, task


def test_the_job_reports_forgetting_and_warns(stack, forgetful):
    job, general, _ = forgetful
    report = job.forgetting
    assert report["general_set"] == general.id and report["examples"] == len(knowledge())
    assert report["exceeded"] is True and report["delta"]["loss"] > report["threshold"] == 0.5
    assert report["tuned"]["loss"] > report["base"]["loss"]
    assert job.evaluation["forgetting"] == report
    events = stack.client().fine_tuning.jobs.list_events(job.id, limit=100).data
    [warning] = [e for e in events if e.message.startswith("Forgetting check")]
    assert warning.level == "warn" and "forgotten" in warning.message


def test_the_cli_shows_the_forgetting_line(stack, forgetful, tmp_path):
    from tests.cli.conftest import cli
    from tests.utils.processes import base_env

    job, _, task = forgetful
    env = base_env(
        LATHE_BASE_URL=stack.url.removesuffix("/v1"),
        LATHE_API_KEY=stack.key,
        XDG_CONFIG_HOME=str(tmp_path),
        COLUMNS="200",
    )
    out = cli(env, "jobs", "get", job.id)
    assert out.returncode == 0, out.stderr
    assert "forgetting" in out.stdout and "above the threshold" in out.stdout
    assert f"{task.id} multiple_choice: acc" in out.stdout


def test_lm_eval_scores_the_trained_task_tuned_above_base(stack, forgetful):
    job, _, task = forgetful
    found = job.benchmarks
    assert found["harness"].startswith("lm-eval ")
    result = found["tasks"][task.id]
    assert result["kind"] == "multiple_choice" and result["examples"] == len(FRUIT_MC)
    assert result["tuned"]["acc"] == 1.0 > result["base"]["acc"]
    events = stack.client().fine_tuning.jobs.list_events(job.id, limit=100).data
    assert any(e.message.startswith("Benchmarks (lm-eval") for e in events)


def test_a_task_file_is_checked_on_upload(stack, tmp_path):
    bad = _upload(
        stack.client(),
        tmp_path,
        "bad.jsonl",
        [{"query": "q", "choices": ["a"], "gold": 0}],
        purpose="evals",
    )
    assert bad.status == "error" and "line 1: choices" in (bad.status_details or "")


def test_evaluation_fields_that_cannot_apply_are_refused(stack, files):
    client = stack.client()
    train, general, task = files
    cases = [
        ({"type": "classification"}, {"general_file": general.id}, "evaluation.general_file"),
        ({"type": "reward_model"}, {"forgetting_check": True}, "evaluation.forgetting_check"),
        (
            {"type": "supervised"},
            {"general_file": general.id, "forgetting_check": False},
            "evaluation.general_file",
        ),
        ({"type": "supervised"}, {"general_file": "file-nope"}, "evaluation.general_file"),
        ({"type": "reward_model"}, {"benchmark_files": [task.id]}, "evaluation.benchmark_files"),
        ({"type": "supervised"}, {}, "data.reweight_groups"),
        ({"type": "supervised"}, {"benchmark_files": [train.id]}, "evaluation.benchmark_files[0]"),
    ]
    for method, evaluation, param in cases:
        with pytest.raises(openai.APIStatusError) as exc:
            client.fine_tuning.jobs.create(
                model="tiny-llama-pretrained",
                training_file=train.id,
                extra_body={
                    "method": method,
                    "evaluation": evaluation,
                    "data": {"reweight_groups": param == "data.reweight_groups"},
                },
            )
        assert exc.value.status_code in (400, 404)
        assert exc.value.body["param"] == param, (evaluation, exc.value.body)


def test_an_eval_job_benchmarks_a_fine_tuned_model_against_its_base(stack, forgetful):
    client = stack.client()
    tuned, _, task = forgetful
    created = client.fine_tuning.jobs.create(
        model=tuned.fine_tuned_model, training_file=task.id, extra_body={"method": {"type": "eval"}}
    )
    done, _ = wait_job(client, created.id, timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    assert done.fine_tuned_model is None  # it trains nothing
    result = done.benchmarks["tasks"][task.id]
    assert (
        result["base"] == tuned.benchmarks["tasks"][task.id]["base"]
    )  # same harness, same numbers
    assert result["tuned"]["acc"] == 1.0 > result["base"]["acc"]


def test_an_eval_job_on_a_base_model_scores_it_alone(stack, files):
    client = stack.client()
    _, _, task = files
    created = client.fine_tuning.jobs.create(
        model="tiny-llama-pretrained",
        training_file=task.id,
        extra_body={"method": {"type": "eval"}},
    )
    done, _ = wait_job(client, created.id, timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    assert done.fine_tuned_model is None and done.trained_tokens == 0
    result = done.benchmarks["tasks"][task.id]
    assert result["tuned"] is None and 0 <= result["base"]["acc"] <= 1  # the base alone
    said = [e.message for e in client.fine_tuning.jobs.list_events(done.id, limit=100).data]
    assert said[0] == "The job has successfully completed"
    assert any(m.startswith("Benchmarks (lm-eval") for m in said)


def test_an_eval_job_refuses_training_fields(stack, files):
    client = stack.client()
    train, _, task = files
    cases = [
        ({"training_file": train.id}, "training_file"),
        ({"training_file": task.id, "adapter": {"type": "full"}}, "adapter"),
        (
            {"training_file": task.id, "evaluation": {"forgetting_check": True}},
            "evaluation.forgetting_check",
        ),
    ]
    for fields, param in cases:
        body = {"model": "tiny-llama-pretrained", "method": {"type": "eval"}, **fields}
        with pytest.raises(openai.BadRequestError) as exc:
            client.fine_tuning.jobs.create(
                model=body.pop("model"), training_file=body.pop("training_file"), extra_body=body
            )
        assert exc.value.body["param"] == param, exc.value.body
