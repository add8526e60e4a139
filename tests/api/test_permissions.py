"""`client.fine_tuning.checkpoints.permissions.*` with the official SDK: acme shares a
checkpoint with globex, which may then serve it and fine-tune from it — and nothing else;
without the permission (or once it is deleted) the checkpoint is a 404 to globex."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.utils.flows import capitals_jsonl, wait_job

pytestmark = pytest.mark.slow

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def checkpoint(stack, tmp_path_factory) -> str:
    """A checkpoint of a two-step acme job (its ft: model when no checkpoint was kept)."""
    client = stack.client()
    path = capitals_jsonl(tmp_path_factory.mktemp("share") / "train.jsonl")
    training = client.files.create(file=path.open("rb"), purpose="fine-tune")
    created = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=training.id,
        suffix="shared",
        seed=3,
        hyperparameters={"n_epochs": 2, "batch_size": 4},
    )
    job, _ = wait_job(client, created.id, timeout=600)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    kept = client.fine_tuning.jobs.checkpoints.list(job.id).data
    return kept[0].fine_tuned_model_checkpoint if kept else job.fine_tuned_model


def _globex_file(client: openai.OpenAI, tmp) -> str:
    path = capitals_jsonl(tmp / "globex.jsonl")
    return client.files.create(file=path.open("rb"), purpose="fine-tune").id


def _no_access(stack, other: openai.OpenAI, model: str, training_file: str) -> None:
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.create(model=model, messages=CHAT, max_tokens=2)
    with pytest.raises(openai.NotFoundError) as exc:
        other.fine_tuning.jobs.create(model=model, training_file=training_file)
    assert exc.value.response.json()["error"]["param"] == "model"


def test_shared_checkpoint_is_servable_and_fine_tunable_by_the_grantee_only(
    stack, checkpoint, tmp_path
):
    owner, other = stack.client(), stack.client(stack.other_key)
    permissions = owner.fine_tuning.checkpoints.permissions
    globex_file = _globex_file(other, tmp_path)
    _no_access(stack, other, checkpoint, globex_file)

    created = permissions.create(checkpoint, project_ids=["globex"]).data
    assert len(created) == 1 and created[0].object == "checkpoint.permission"
    grant = created[0]
    assert grant.id.startswith("cp_") and grant.project_id.startswith("org-")
    again = permissions.create(checkpoint, project_ids=[grant.project_id]).data
    assert [p.id for p in again] == [grant.id]  # idempotent, by id or by name

    # the grantee serves it and fine-tunes from it (a real job on the shared weights) ...
    answer = other.chat.completions.create(model=checkpoint, messages=CHAT, max_tokens=2)
    assert answer.choices[0].message.content is not None
    job = other.fine_tuning.jobs.create(
        model=checkpoint,
        training_file=globex_file,
        hyperparameters={"n_epochs": 1, "batch_size": 4},
    )
    job, _ = wait_job(other, job.id, timeout=600)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    assert job.fine_tuned_model.split(":")[2] == "globex"

    # ... and nothing else: not listed, not retrievable, downloadable, deletable or manageable
    assert checkpoint not in {m.id for m in other.models.list().data}
    with pytest.raises(openai.NotFoundError):
        other.models.retrieve(checkpoint)
    with pytest.raises(openai.NotFoundError):
        other.models.delete(checkpoint)
    download = httpx.get(
        f"{stack.url}/models/{checkpoint}/content",
        headers={"Authorization": f"Bearer {stack.other_key}"},
        timeout=60,
    )
    assert download.status_code == 404
    with pytest.raises(openai.NotFoundError):
        other.fine_tuning.checkpoints.permissions.create(checkpoint, project_ids=["acme"])
    with pytest.raises(openai.NotFoundError):
        other.fine_tuning.checkpoints.permissions.retrieve(checkpoint)

    # the owner lists and deletes; then the checkpoint is a 404 to globex again
    listed = permissions.retrieve(checkpoint)
    assert listed.object == "list" and [p.id for p in listed.data] == [grant.id]
    assert [p.id for p in permissions.list(checkpoint)] == [grant.id]  # the paginated form
    assert permissions.retrieve(checkpoint, project_id="nobody").data == []
    deleted = permissions.delete(grant.id, fine_tuned_model_checkpoint=checkpoint)
    assert deleted.deleted and deleted.id == grant.id
    assert permissions.retrieve(checkpoint).data == []
    _no_access(stack, other, checkpoint, globex_file)
    with pytest.raises(openai.NotFoundError):
        permissions.delete(grant.id, fine_tuned_model_checkpoint=checkpoint)


def test_bad_permission_requests_name_the_field(stack, checkpoint):
    permissions = stack.client().fine_tuning.checkpoints.permissions
    for project_ids in (["no-such-org"], ["acme"], []):
        with pytest.raises(openai.BadRequestError) as exc:
            permissions.create(checkpoint, project_ids=project_ids)
        assert exc.value.response.json()["error"]["param"] == "project_ids", project_ids
    with pytest.raises(openai.NotFoundError):
        permissions.create("ft:tiny-llama:acme::nope", project_ids=["globex"])
    with pytest.raises(openai.NotFoundError):  # base models are everyone's already
        permissions.create("tiny-llama", project_ids=["globex"])
