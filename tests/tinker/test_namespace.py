"""One namespace: named sampler weights (`tinker://…/sampler_weights/NAME`) are served by
/v1/completions and /v1/chat/completions through the official `openai` client, listed,
downloadable and deletable like a fine-tuned model."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from urllib.parse import quote

import httpx
import openai
import pytest
import tinker

from tests.tinker.test_training_loop import BASE, train

PROMPT = "The capital of France is"


def test_sampler_weights_through_the_openai_surface(service, stack, tiny_model):
    import tinker
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    client = service.create_lora_training_client(base_model=BASE, rank=4, seed=11).result()
    train(client, tok.encode("The capital of France is Paris. Paris. Paris."), 3)
    path = client.save_weights_for_sampler("served").result().path
    assert path.endswith("/sampler_weights/served")

    # the same weights, sampled greedily through tinker and through the OpenAI API
    sampler = service.create_sampling_client(model_path=path).result()
    greedy = tinker.SamplingParams(max_tokens=4, temperature=0, stop=[])
    seq = sampler.sample(tinker.ModelInput.from_ints(tok.encode(PROMPT)), 1, greedy).result()
    oa = stack.client()
    completion = oa.completions.create(model=path, prompt=PROMPT, max_tokens=4, temperature=0)
    assert completion.choices[0].text == tok.decode(seq.sequences[0].tokens)
    chat = oa.chat.completions.create(
        model=path, messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert chat.model == path and chat.choices[0].message.content is not None

    assert path in [m.id for m in oa.models.list()]
    got = httpx.get(
        f"{stack.url}/models/{quote(path, safe='')}/content",
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=60,
    )
    assert got.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(got.content)).namelist()
    assert any(n.endswith("adapter_model.safetensors") for n in names)

    other = stack.client(stack.other_key)  # another organization: not found
    with pytest.raises(openai.NotFoundError):
        other.completions.create(model=path, prompt=PROMPT, max_tokens=2)
    oa.models.delete(path)
    with pytest.raises(tinker.NotFoundError):
        service.create_sampling_client(model_path=path).result()


def test_sweeper_keeps_saved_states_and_expires_by_ttl(connect, org_key, stack, tmp_path):
    """The sweeper (core.cleanup) removes what no row refers to: saved states are referred to
    and stay; a checkpoint past its ttl_seconds is dropped, then its bytes are swept."""
    from sqlalchemy import update

    from core.cleanup import sweep
    from core.persistence.db import session_scope
    from core.persistence.models import Model
    from core.persistence.tinker_models import TinkerCheckpoint
    from core.settings import Settings
    from core.storage import get_storage

    service = connect(org_key())
    client = service.create_lora_training_client(base_model=BASE, rank=2).result()
    keep = client.save_state("keep").result().path
    gone = client.save_weights_for_sampler("gone", ttl_seconds=3600).result().path
    settings = Settings(
        database={"url": stack.env["LATHE_DATABASE_URL"]},
        storage={
            "url": stack.env["LATHE_STORAGE_URL"],
            "s3_endpoint_url": stack.env["LATHE_S3_ENDPOINT_URL"],
        },
    )
    storage, url = get_storage(settings), settings.resolved_database_url
    with session_scope(url) as db:  # as if its hour had passed
        db.execute(
            update(TinkerCheckpoint)
            .where(TinkerCheckpoint.path == gone)
            .values(expires_at=TinkerCheckpoint.created_at - timedelta(seconds=1))
        )
        keys = {p: db.get(TinkerCheckpoint, p).storage_key for p in (keep, gone)}
    with session_scope(url) as db:
        sweep(db, storage, 0, tmp_path / "tmp")
    with session_scope(url) as db:
        assert db.get(TinkerCheckpoint, gone) is None and db.get(Model, gone) is None
        assert db.get(TinkerCheckpoint, keep) is not None
    assert storage.exists(keys[keep]) and not storage.exists(keys[gone])
    with pytest.raises(tinker.NotFoundError):
        service.create_sampling_client(model_path=gone).result()
