"""Bad input gets OpenAI's error envelope naming the field or line; orgs never see each other."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.utils.flows import capitals_jsonl, wait_job


def _upload(client, path):
    return client.files.create(file=path.open("rb"), purpose="fine-tune")


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_requests_without_a_valid_key_are_401(stack):
    r = httpx.get(f"{stack.url}/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as exc:
        stack.client("sk-lathe-nope").models.list()
    assert _error(exc.value)["code"] == "invalid_api_key"
    assert httpx.get(f"{stack.url.removesuffix('/v1')}/health").status_code == 200


def test_unknown_base_model_and_missing_file(stack, tmp_path):
    client = stack.client()
    f = _upload(client, capitals_jsonl(tmp_path / "t.jsonl"))
    with pytest.raises(openai.NotFoundError) as exc:
        client.fine_tuning.jobs.create(model="no-such-model", training_file=f.id)
    assert _error(exc.value)["param"] == "model"
    with pytest.raises(openai.NotFoundError) as exc:  # names the models that do exist
        client.chat.completions.create(
            model="tiny-lama", messages=[{"role": "user", "content": "hi"}]
        )
    message = _error(exc.value)["message"]
    assert "'tiny-lama' does not exist" in message and "tiny-llama, " in message
    assert "Did you mean 'tiny-llama'" in message
    with pytest.raises(openai.NotFoundError) as exc:
        client.fine_tuning.jobs.create(model="tiny-llama", training_file="file-missing")
    assert _error(exc.value)["param"] == "training_file"


def test_bad_hyperparameter_names_the_field(stack, tmp_path):
    client = stack.client()
    f = _upload(client, capitals_jsonl(tmp_path / "t.jsonl"))
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=f.id,
            extra_body={
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"n_epochs": "many"}},
                }
            },
        )
    err = _error(exc.value)
    assert err["type"] == "invalid_request_error"
    assert err["param"].startswith("method.supervised.hyperparameters.n_epochs")
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=f.id, extra_body={"adapter": {"type": "lora", "r": 0}}
        )
    assert _error(exc.value)["param"] == "adapter.r"


def test_invalid_dataset_is_reported_with_its_line(stack, tmp_path):
    client = stack.client()
    path = tmp_path / "bad.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "wizard", "content": "yo"}]}
    path.write_text(f"{json.dumps(good)}\n{json.dumps(good)}\n{json.dumps(bad)}\n")
    f = _upload(client, path)
    assert f.status == "error" and "line 3" in f.status_details
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    assert _error(exc.value)["param"] == "training_file"
    assert "line 3" in _error(exc.value)["message"]


def test_wrong_purpose_is_rejected(stack, tmp_path):
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client().files.create(
            file=capitals_jsonl(tmp_path / "t.jsonl").open("rb"), purpose="assistants"
        )
    assert _error(exc.value)["param"] == "purpose"


def test_another_orgs_objects_are_404(stack, tmp_path):
    mine, theirs = stack.client(), stack.client(stack.other_key)
    f = _upload(mine, capitals_jsonl(tmp_path / "t.jsonl"))
    job = mine.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    mine.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.NotFoundError):
        theirs.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        theirs.files.content(f.id)
    with pytest.raises(openai.NotFoundError):
        theirs.fine_tuning.jobs.retrieve(job.id)
    with pytest.raises(openai.NotFoundError):
        theirs.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.NotFoundError):
        theirs.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    assert f.id not in {x.id for x in theirs.files.list().data}
    assert job.id not in {x.id for x in theirs.fine_tuning.jobs.list().data}
    assert all(not m.id.startswith("ft:") for m in theirs.models.list().data)


def test_files_roundtrip_list_and_delete(stack, tmp_path):
    client = stack.client()
    path = capitals_jsonl(tmp_path / "../etc passwd.jsonl")
    f = client.files.create(file=("../../etc/passwd.jsonl", path.read_bytes()), purpose="fine-tune")
    assert f.filename == "passwd.jsonl" and f.bytes == path.stat().st_size
    assert f.status == "processed"
    assert client.files.content(f.id).read() == path.read_bytes()
    assert f.id in {x.id for x in client.files.list().data}
    assert client.files.delete(f.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)


def test_cancel_stops_a_running_job(stack, tmp_path):
    client = stack.client()
    f = _upload(client, capitals_jsonl(tmp_path / "t.jsonl"))
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        extra_body={
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1000}}}
        },
    )
    running, _ = wait_job(client, job.id, until=lambda j: j.status == "running")
    assert running.status == "running"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    # the worker notices between steps and moves on to the next job
    done, _ = wait_job(client, job.id)
    assert done.status == "cancelled" and done.fine_tuned_model is None
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)
    follow, _ = wait_job(
        client,
        client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=f.id,
            extra_body={
                "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}}
            },
        ).id,
    )
    assert follow.status == "succeeded"


def test_jobs_list_pages_and_filters_by_metadata(stack, tmp_path):
    client = stack.client()
    f = _upload(client, capitals_jsonl(tmp_path / "t.jsonl"))
    tag = tmp_path.name
    ids = []
    for i in range(3):
        job = client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=f.id, metadata={"batch": tag, "i": str(i)}
        )
        client.fine_tuning.jobs.cancel(job.id)
        ids.append(job.id)
    tagged = client.fine_tuning.jobs.list(metadata={"batch": tag}).data
    assert [j.id for j in tagged] == ids[::-1]  # newest first
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"batch": tag, "i": "1"})] == [
        ids[1]
    ]
    first = client.fine_tuning.jobs.list(limit=1)
    assert first.has_more
    second = client.fine_tuning.jobs.list(limit=1, after=first.data[0].id)
    assert second.data[0].id != first.data[0].id
