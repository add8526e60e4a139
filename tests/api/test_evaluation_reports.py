"""The forgetting check through the API and the worker: a full fine-tune of the builtin
pretrained base on a narrow task reports `forgetting` on the job (scored on an uploaded
general_file), warns in an event, and shows in `lathe jobs get`; fields that cannot apply
are refused naming them."""

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
HP = {"n_epochs": 12, "batch_size": 8, "learning_rate": 3e-3, "packing": False}


def _upload(client, tmp, name: str, rows: list[dict]):
    path = tmp / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return client.files.create(file=path.open("rb"), purpose="fine-tune")


@pytest.fixture(scope="module")
def files(stack, tmp_path_factory):
    client = stack.client()
    tmp = tmp_path_factory.mktemp("forgetting")
    general = [{"text": fact} for fact in knowledge()]
    return _upload(client, tmp, "narrow.jsonl", NARROW), _upload(
        client, tmp, "general.jsonl", general
    )


@pytest.fixture(scope="module")
def forgetful(stack, files):
    client = stack.client()
    train, general = files
    created = client.fine_tuning.jobs.create(
        model="tiny-llama-pretrained",
        training_file=train.id,
        seed=1,
        extra_body={
            "adapter": {"type": "full"},
            "method": {"type": "supervised", "supervised": {"hyperparameters": HP}},
            "evaluation": {"general_file": general.id, "forgetting_threshold": 0.5},
        },
    )
    done, _ = wait_job(client, created.id, timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    return done, general


def test_the_job_reports_forgetting_and_warns(stack, forgetful):
    job, general = forgetful
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

    job, _ = forgetful
    env = base_env(
        LATHE_BASE_URL=stack.url.removesuffix("/v1"),
        LATHE_API_KEY=stack.key,
        XDG_CONFIG_HOME=str(tmp_path),
        COLUMNS="200",
    )
    out = cli(env, "jobs", "get", job.id)
    assert out.returncode == 0, out.stderr
    assert "forgetting" in out.stdout and "above the threshold" in out.stdout


def test_evaluation_fields_that_cannot_apply_are_refused(stack, files):
    client = stack.client()
    train, general = files
    cases = [
        ({"type": "classification"}, {"general_file": general.id}, "evaluation.general_file"),
        ({"type": "reward_model"}, {"forgetting_check": True}, "evaluation.forgetting_check"),
        (
            {"type": "supervised"},
            {"general_file": general.id, "forgetting_check": False},
            "evaluation.general_file",
        ),
        ({"type": "supervised"}, {"general_file": "file-nope"}, "evaluation.general_file"),
    ]
    for method, evaluation, param in cases:
        with pytest.raises(openai.APIStatusError) as exc:
            client.fine_tuning.jobs.create(
                model="tiny-llama-pretrained",
                training_file=train.id,
                extra_body={"method": method, "evaluation": evaluation},
            )
        assert exc.value.status_code in (400, 404)
        assert exc.value.body["param"] == param, (evaluation, exc.value.body)
