"""The in-process backend: OpenAI's chat and completion fields applied to the engine
(chat template with tools, context-length check, `n` choices batched together, logprobs,
JSON and tool-call constraints, tool-call parsing), answered as OpenAI's objects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from core.data.tools import template_messages, template_tools
from core.errors import InvalidRequest
from core.ids import new_id
from core.inference import tool_calls
from core.inference.engine import InferenceEngine, now
from core.inference.params import Delta, Generation, GenerationParams, Grammar, TokenLogprob
from core.model_store import StoredModel

DEFAULT_MAX_TOKENS = 256


class LocalBackend:
    name = "in-process"

    def __init__(self, engine: InferenceEngine):
        self.engine = engine

    def serves(self, model: StoredModel) -> bool:
        return True

    async def chat(self, model: StoredModel, body: dict) -> Any:
        prepared = await asyncio.to_thread(self._prepare_chat, model, body)
        if body.get("stream"):
            return _aiter(self._chat_chunks(model, body, *prepared))
        return await asyncio.to_thread(self._chat_object, model, body, *prepared)

    async def completion(self, model: StoredModel, body: dict) -> Any:
        prepared = await asyncio.to_thread(self._prepare_completion, model, body)
        if body.get("stream"):
            return _aiter(self._completion_chunks(model, body, prepared))
        return await asyncio.to_thread(self._completion_object, model, body, prepared)

    # chat

    def _prepare_chat(self, model: StoredModel, body: dict) -> tuple[list, dict | None]:
        self.engine.require_task(model, "causal_lm")
        tok = self.engine.tokenizer(model)
        tools = body.get("tools") or None
        choice = body.get("tool_choice") or ("auto" if tools else "none")
        if tools and not tool_calls.template_supports_tools(tok):
            raise InvalidRequest(f"{model.id}'s chat template has no tool support", param="tools")
        kwargs = template_tools(tools) if choice != "none" else {}  # as training renders them
        rendered = tok.apply_chat_template(
            template_messages(body["messages"]), add_generation_prompt=True, return_dict=True,
            **kwargs,
        )  # fmt: skip
        prompt = list(rendered["input_ids"])
        forced = tool_calls.forced_call_schema(tools, choice) if tools else None
        grammar = _grammar(body.get("response_format"))
        if forced is not None:
            if grammar is not None:
                raise InvalidRequest(
                    "response_format cannot be combined with a forced tool_choice",
                    param="response_format",
                )
            grammar = Grammar(forced)
        params = self._params(model, body, len(prompt), grammar, "messages")
        requests = [(prompt, _reseeded(params, i)) for i in range(body.get("n") or 1)]
        return requests, forced

    def _chat_object(self, model: StoredModel, body: dict, requests: list, forced: Any) -> dict:
        done = self.engine.generate(model, requests)
        choices = [_chat_choice(i, g, body, forced) for i, g in enumerate(done)]
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": now(),
            "model": body["model"],
            "choices": choices,
            "usage": _usage(done, len(done)),
        }

    def _chat_chunks(
        self, model: StoredModel, body: dict, requests: list, forced: Any
    ) -> Iterator[dict]:
        cid, created = new_id("chatcmpl-"), now()
        tools_on = bool(body.get("tools")) and body.get("tool_choice") != "none"

        def chunk(choices: list[dict], usage: dict | None = None) -> dict:
            out = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": choices,
            }
            return {**out, "usage": usage} if usage else out

        done: list[Generation] = []
        started = False
        for index, item in self.engine.stream(model, requests):
            if not started:  # after the engine took the request: a refusal is still a 4xx/503
                started = True
                for i in range(len(requests)):
                    yield chunk([_delta_choice(i, {"role": "assistant", "content": ""})])
            if isinstance(item, Delta):
                if not tools_on and (item.text or item.logprobs):
                    lp = _chat_logprobs(item.logprobs) if body.get("logprobs") else None
                    yield chunk([_delta_choice(index, {"content": item.text}, logprobs=lp)])
                continue
            done.append(item)
            if tools_on:  # a tool call is only known whole: sent as one delta
                message = _chat_choice(index, item, body, forced)["message"]
                delta = {"content": message["content"]}
                if message.get("tool_calls"):
                    calls = message["tool_calls"]
                    delta["tool_calls"] = [{**c, "index": k} for k, c in enumerate(calls)]
                yield chunk([_delta_choice(index, delta)])
            finish = _chat_choice(index, item, body, forced)["finish_reason"]
            yield chunk([_delta_choice(index, {}, finish)])
        if (body.get("stream_options") or {}).get("include_usage"):
            yield chunk([], _usage(done, len(done)))

    # completions

    def _prepare_completion(self, model: StoredModel, body: dict) -> list:
        self.engine.require_task(model, "causal_lm")
        requests = []
        for index, item in enumerate(body["prompt"]):
            if isinstance(item, str):
                prompt = self._text_prompt(model, item)
            else:
                prompt = self._id_prompt(model, item, index, len(body["prompt"]))
            params = self._params(model, body, len(prompt), None, "prompt")
            if body.get("logprobs") is not None:  # legacy: an int, the top ones to return
                params = replace(params, logprobs=True, top_logprobs=body["logprobs"])
                if body.get("echo"):  # the prompt's own scores: lm-eval's loglikelihood
                    params = replace(params, prompt_logprobs=body["logprobs"])
            requests += [(prompt, _reseeded(params, i)) for i in range(body.get("n") or 1)]
        return requests

    def _id_prompt(self, model: StoredModel, ids: list[int], index: int, count: int) -> list[int]:
        """A prompt given as token ids, used as they are (no BOS added), once each id is
        known to be in the model's vocabulary."""
        vocab = len(self.engine.tokenizer(model))
        bad = next((t for t in ids if not 0 <= t < vocab), None)
        if bad is not None:
            where = "prompt" if count == 1 else f"prompt[{index}]"
            raise InvalidRequest(
                f"{where} holds token id {bad}, outside the vocabulary (0..{vocab - 1})",
                param=where,
            )
        return list(ids)

    def _echo(self, model: StoredModel, item: str | list[int]) -> str:
        if isinstance(item, str):
            return item
        return self.engine.tokenizer(model).decode(item)

    def _text_prompt(self, model: StoredModel, text: str) -> list[int]:
        """Token ids of raw text, with the BOS the tokenizer adds (not twice, when the text is
        a rendered template that already starts with it). Empty text starts from BOS, or from
        EOS as a document boundary, as OpenAI's models start from <|endoftext|>."""
        tok = self.engine.tokenizer(model)
        bos = tok.bos_token
        ids = list(tok(text, add_special_tokens=not (bos and text.startswith(bos)))["input_ids"])
        if not ids:
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            ids = [start] if start is not None else []
        if not ids:
            raise InvalidRequest("prompt must not be empty for this model", param="prompt")
        return ids

    def _completion_object(self, model: StoredModel, body: dict, requests: list) -> dict:
        done = self.engine.generate(model, requests)
        n = body.get("n") or 1
        choices = []
        for i, g in enumerate(done):
            echoed = self._echo(model, body["prompt"][i // n]) if body.get("echo") else ""
            scored = (g.prompt_logprobs or []) + (g.logprobs or [])
            choices.append(
                {
                    "text": echoed + g.text,
                    "index": i,
                    "finish_reason": g.finish_reason,
                    "logprobs": _legacy_logprobs(scored, body),
                }
            )
        return {
            "id": new_id("cmpl-"),
            "object": "text_completion",
            "created": now(),
            "model": body["model"],
            "choices": choices,
            "usage": _usage(done, n),
        }

    def _completion_chunks(self, model: StoredModel, body: dict, requests: list) -> Iterator[dict]:
        cid, created, n = new_id("cmpl-"), now(), body.get("n") or 1

        def chunk(index: int, text: str, finish: str | None = None, lp: Any = None) -> dict:
            choice = {"text": text, "index": index, "finish_reason": finish, "logprobs": lp}
            return {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": body["model"],
                "choices": [choice],
            }

        done: list[Generation] = []
        for index in range(len(requests)):  # in order, each choice whole before the next
            if body.get("echo"):
                yield chunk(index, self._echo(model, body["prompt"][index // n]))
            offset = 0  # where the next token's text starts in the choice's text
            for _, item in self.engine.stream(model, [requests[index]]):
                if isinstance(item, Generation):
                    done.append(item)
                    yield chunk(index, "", item.finish_reason)
                elif item.text or item.logprobs:
                    lp = _legacy_logprobs(item.logprobs, body, offset)
                    offset += sum(len(t.token) for t in item.logprobs or [])
                    yield chunk(index, item.text, lp=lp)
        if (body.get("stream_options") or {}).get("include_usage"):
            last = chunk(0, "")
            yield {**last, "choices": [], "usage": _usage(done, n)}

    # shared

    def _params(
        self, model: StoredModel, body: dict, n_prompt: int, grammar: Grammar | None, field: str
    ) -> GenerationParams:
        context = self.engine.context_length(model)
        # Unset: up to 256 tokens, within what the context leaves (OpenAI: the context's rest).
        # 0 (completions): score the prompt, generate nothing.
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = max(1, min(DEFAULT_MAX_TOKENS, context - n_prompt))
        if n_prompt + max_tokens > context:
            raise InvalidRequest(
                f"This model's maximum context length is {context} tokens. However, you "
                f"requested {n_prompt + max_tokens} tokens ({n_prompt} in the {field}, "
                f"{max_tokens} for the completion). Please reduce the length of the {field} "
                "or the completion.",
                param=field,
                code="context_length_exceeded",
            )
        vocab = len(self.engine.tokenizer(model))
        bias = {int(k): float(v) for k, v in (body.get("logit_bias") or {}).items()}
        if any(not 0 <= k < vocab for k in bias):
            raise InvalidRequest(
                f"logit_bias names a token id outside the vocabulary (0..{vocab - 1})",
                param="logit_bias",
            )
        return GenerationParams(
            max_tokens=max_tokens,
            temperature=body.get("temperature", 1.0),
            top_p=body.get("top_p", 1.0),
            stop=body.get("stop") or None,
            seed=body.get("seed"),
            frequency_penalty=body.get("frequency_penalty") or 0.0,
            presence_penalty=body.get("presence_penalty") or 0.0,
            logit_bias=bias or None,
            logprobs=bool(body.get("logprobs")),
            top_logprobs=body.get("top_logprobs") or 0,
            grammar=grammar,
        )


def _grammar(response_format: dict | None) -> Grammar | None:
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return Grammar(None)
    if kind == "json_schema":
        return Grammar(response_format["json_schema"].get("schema") or {"type": "object"})
    return None


def _reseeded(params: GenerationParams, index: int) -> GenerationParams:
    """Choice `index` of `n`: its own seed, so seeded choices differ yet repeat."""
    if index == 0 or params.seed is None:
        return params
    return replace(params, seed=(params.seed + index) % 2**64)


def _chat_choice(index: int, g: Generation, body: dict, forced: Any) -> dict:
    content: str | None = g.text
    message: dict[str, Any] = {"role": "assistant", "content": content}
    finish = g.finish_reason
    if body.get("tools") and body.get("tool_choice") != "none":
        parallel = body.get("parallel_tool_calls") is not False
        names = [t["function"]["name"] for t in body["tools"]]
        cut = g.finish_reason == "length"
        content, calls = tool_calls.parse(g.text, forced is not None, parallel, names, cut)
        message["content"] = content
        if calls:
            message["tool_calls"] = calls
            # OpenAI: "tool_calls" when the model called (auto or required), "stop" when one
            # named function was forced, "length" when max_tokens cut the call
            named = isinstance(body.get("tool_choice"), dict)
            finish = "length" if cut else "stop" if named else "tool_calls"
    choice = {"index": index, "message": message, "finish_reason": finish, "logprobs": None}
    if body.get("logprobs"):
        choice["logprobs"] = _chat_logprobs(g.logprobs)
    return choice


def _legacy_logprobs(items: list[TokenLogprob] | None, body: dict, offset: int = 0) -> Any:
    """`/v1/completions` logprobs as OpenAI's legacy shape: per token its text, logprob, the
    likeliest `logprobs` tokens (with the chosen one, so up to logprobs + 1) and where its text
    starts in the choice's text."""
    if body.get("logprobs") is None:
        return None
    keys = ("tokens", "token_logprobs", "top_logprobs", "text_offset")
    out: dict[str, list] = {k: [] for k in keys}
    for t in items or []:
        out["tokens"].append(t.token)
        out["token_logprobs"].append(t.logprob)
        tops = {s: lp for s, lp, _ in t.top_logprobs} | {t.token: t.logprob}
        out["top_logprobs"].append(None if t.logprob is None else tops)
        out["text_offset"].append(offset)
        offset += len(t.token)
    return out


def _chat_logprobs(items: list[TokenLogprob] | None) -> dict:
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": t.bytes,
                "top_logprobs": [
                    {"token": s, "logprob": lp, "bytes": b} for s, lp, b in t.top_logprobs
                ],
            }
            for t in items or []
        ],
        "refusal": None,
    }


def _delta_choice(index: int, delta: dict, finish: str | None = None, logprobs: Any = None):
    return {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}


def _usage(done: list[Generation], n: int = 1) -> dict:
    """The `n` choices of one prompt share it: its tokens count once, as OpenAI's."""
    prompt = sum(g.prompt_tokens for g in done) // n
    completion = sum(g.completion_tokens for g in done)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _aiter(chunks: Iterator[dict]) -> AsyncIterator[dict]:
    """A blocking chunk iterator read in worker threads, so the event loop stays free."""
    sentinel = object()
    while True:
        item = await asyncio.to_thread(next, chunks, sentinel)
        if item is sentinel:
            return
        yield item  # type: ignore[misc]
