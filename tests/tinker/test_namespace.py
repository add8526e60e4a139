"""One namespace: named sampler weights (`tinker://…/sampler_weights/NAME`) are served by
/v1/completions and /v1/chat/completions through the official `openai` client, listed,
downloadable and deletable like a fine-tuned model."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import quote

import httpx
import openai
import pytest

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
