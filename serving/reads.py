"""The inference service's internal routes for what reads a model without generating:
tokenizing (vLLM's tokenizer endpoints) and embeddings. Installed by `serving.app`."""

# No `from __future__ import annotations`: the routes' annotations must be evaluated here,
# where `InternalRequest` (an argument) is in scope, for FastAPI to read the body.

from typing import Any

from fastapi import FastAPI

from core.inference import embeddings, tokenization


def install(app: FastAPI, service: Any, InternalRequest: type) -> None:  # noqa: N803
    """`InternalRequest`: the app's request model (passed in: no import back into it)."""
    engine = service.engine

    @app.post("/internal/tokenize")
    def tokenize(req: InternalRequest) -> dict:
        model = req.stored()
        tok = engine.tokenizer(model)
        return tokenization.tokenize(tok, req.body, engine.context_length(model))

    @app.post("/internal/detokenize")
    def detokenize(req: InternalRequest) -> dict:
        return tokenization.detokenize(engine.tokenizer(req.stored()), req.body["tokens"])

    @app.post("/internal/tokenizer_info")
    def tokenizer_info(req: InternalRequest) -> dict:
        return tokenization.tokenizer_info(engine.tokenizer(req.stored()))

    @app.post("/internal/embeddings")
    def embed(req: InternalRequest) -> dict:
        return embeddings.embed(engine, req.stored(), req.body)
