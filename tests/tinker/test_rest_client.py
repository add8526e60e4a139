"""The SDK's RestClient on Lathe: an organization lists its training runs and their
checkpoints, reads a checkpoint's LoRA settings, deletes one; another organization's run or
path is a not-found."""

from __future__ import annotations

import pytest

from tests.tinker.test_training_loop import BASE, train


def test_runs_and_checkpoints_through_the_rest_client(connect, org_key):
    import tinker

    service = connect(org_key())
    client = service.create_lora_training_client(base_model=BASE, rank=4, seed=5).result()
    train(client, list(range(5, 30)), 1)
    state = client.save_state("s1").result().path
    sampler = client.save_weights_for_sampler("w1").result().path
    rest = service.create_rest_client()

    listed = rest.list_training_runs().result()
    assert [r.training_run_id for r in listed.training_runs] == [client.model_id]
    assert listed.cursor.total_count == 1
    with pytest.raises(tinker.BadRequestError, match="project_id"):
        rest.list_training_runs(project_id="p1").result()
    run = rest.get_training_run(client.model_id).result()
    assert (run.base_model, run.lora_rank, run.is_lora) == (BASE, 4, True)
    assert run.last_checkpoint.tinker_path == state
    assert run.last_sampler_checkpoint.tinker_path == sampler
    assert (
        rest.get_training_run_by_tinker_path(state).result().training_run_id == run.training_run_id
    )

    checkpoints = rest.list_checkpoints(client.model_id).result().checkpoints
    assert {(c.checkpoint_type, c.tinker_path) for c in checkpoints} == {
        ("training", state),
        ("sampler", sampler),
    }
    assert rest.list_user_checkpoints().result().cursor.total_count == 2
    info = rest.get_weights_info_by_tinker_path(state).result()
    assert (info.base_model, info.lora_rank, info.train_mlp) == (BASE, 4, True)

    rest.delete_checkpoint_from_tinker_path(sampler).result()
    left = rest.list_checkpoints(client.model_id).result().checkpoints
    assert [c.tinker_path for c in left] == [state]
    with pytest.raises(tinker.NotFoundError):
        service.create_sampling_client(model_path=sampler).result()

    other = connect(org_key()).create_rest_client()
    assert other.list_training_runs().result().training_runs == []
    with pytest.raises(tinker.NotFoundError):
        other.get_training_run(client.model_id).result()
    with pytest.raises(tinker.NotFoundError):
        other.get_weights_info_by_tinker_path(state).result()
