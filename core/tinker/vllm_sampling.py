"""Tinker's `asample` on the inference service's vLLM server, where one serves the sampler's
base: a trainer then spends no time decoding, and vLLM batches the samples of every client
(RL loops post a whole batch of prompts at once) with whatever else that server runs.

Which samples go there: a sampler on a base model, or on sampler weights saved by name
(`save_weights_for_sampler(name)`, published as a peft artifact the OpenAI surface serves:
the adapter reaches vLLM by the same loading). The unnamed snapshots of
`save_weights_and_get_sampling_client` stay on the trainer, which already holds those weights
(exporting each to vLLM would cost an upload and an adapter load per RL step).

Two halves, one per process:

* The API (`submit`, `VllmSampling`): `asample` inserts its future as a `vllm_sample` row and
  a task hands the request to `lathe inference` (`POST /internal/tinker/sample`), writing back
  the proto it answers. Whatever vLLM cannot do here — the service says it does not serve the
  model (still starting, a rank over LATHE_VLLM_MAX_LORA_RANK), it fails or cannot be
  reached, the API stops, or the row outlives the inference timeout (an API that died) —
  turns the row into an ordinary `sample` for the trainer: slower, never lost. A refusal
  (a prompt over the context) fails the future, naming the field, as the trainer would.
* The inference service (`sample`): one vLLM completions request per call — the prompt as
  token ids, `n` samples, the sampled tokens' ids and raw logprobs, prompt logprobs when
  asked (through the scoring gate: vLLM's CPU engine dies computing them beside another
  request) — encoded with the codec the trainer uses, so the SDK reads the same wire.

Semantics match core.tinker.sampler: `stop` None stops at EOS, [] never stops, strings or
token ids stop when produced (and then EOS does not); the returned tokens include the stop;
logprobs are the model's own, before temperature/top-k/top-p (vLLM's `raw_logprobs`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidRequest
from core.inference.backends.vllm import VLLMBackend
from core.inference.client import InferenceClient
from core.model_store import StoredModel
from core.persistence.db import session_scope
from core.persistence.models import Model, utcnow
from core.persistence.tinker_models import TinkerRequest, TinkerSampler
from core.settings import Settings
from core.tinker import codec, service, wakeups

log = logging.getLogger("lathe.tinker.vllm")

VLLM_KIND = "vllm_sample"
"""A sample future that the API is running on vLLM; the trainer takes only `sample` rows."""
TRAINER_KIND = "sample"
LOST_MARGIN_S = 60.0
"""A `vllm_sample` row older than the inference timeout plus this has lost its API task."""
SEED_RANGE = 2**62
"""vLLM takes int64 seeds and gives sample i `seed + i`; the SDK sends any uint64."""
GREEDY_BELOW = 1e-5
"""vLLM's own threshold: a lower temperature is greedy decoding, and refuses n > 1."""


# --- the API's half ---


def vllm_may_serve(settings: Settings, base: str) -> bool:
    """Whether this deployment's settings give `base` a vLLM server (the inference service
    has the last word: it may not be up yet, or refuse the model)."""
    if base in settings.vllm.urls:
        return True
    bases = settings.vllm.base_models
    return settings.vllm.enabled and (bases is None or base in bases)


def target_of(db: Session, settings: Settings, sampler: TinkerSampler) -> dict | None:
    """The model the inference service would sample (its `InternalRequest.model`), or None
    where the trainer samples."""
    if not settings.tinker.sample_on_vllm or not vllm_may_serve(settings, sampler.base_model):
        return None
    if sampler.model_path is None:
        return {"id": sampler.base_model, "base_model": sampler.base_model, "artifact_key": None}
    row = db.get(Model, sampler.model_path)  # named sampler weights, published (trainer)
    if row is None or row.organization_id != sampler.organization_id or not row.artifact_key:
        return None
    return {"id": row.id, "base_model": row.base_model, "artifact_key": row.artifact_key}


def submit(
    db: Session, settings: Settings, org_id: str, body: dict[str, Any]
) -> tuple[str, list[str], dict | None]:
    """`asample`'s future (request id, sequence ids) and where it runs: a target for the
    inference service, or None for the trainer."""
    sampler = service.get_sampler(db, org_id, str(body.get("sampling_session_id", "")))
    target = target_of(db, settings, sampler)
    kind = TRAINER_KIND if target is None else VLLM_KIND
    rid, ids = service.submit_sample(db, settings, org_id, body, kind=kind)
    return rid, ids, target


def requeue_if_lost(db: Session, settings: Settings, row: TinkerRequest) -> None:
    """A `vllm_sample` future whose API task is gone (that API process died) goes to the
    trainer once it is older than any answer the task could still get."""
    if row.kind != VLLM_KIND or row.status not in ("pending", "running"):
        return
    lost = timedelta(seconds=settings.inference.timeout_s + LOST_MARGIN_S)
    if row.created_at < utcnow() - lost:
        log.warning("sample %s lost its API task; the trainer samples it", row.id)
        row.kind, row.status = TRAINER_KIND, "pending"
        wakeups.notify(db, wakeups.NEW_CHANNEL)  # wakes the trainers at commit


@dataclass
class Outcome:
    """What the inference service made of a sample: a result, a refusal, or neither (None
    in `VllmSampling._ask`: the trainer samples it)."""

    result: bytes | None = None
    error: str | None = None


class VllmSampling:
    """The API process's tasks that run `vllm_sample` futures through the inference service."""

    def __init__(self, settings: Settings, client: InferenceClient) -> None:
        self.settings, self.client = settings, client
        self.url = settings.resolved_database_url
        self.tasks: set[asyncio.Task] = set()

    def start(self, request_id: str, target: dict, body: dict[str, Any]) -> None:
        """Run the future in the background (a retried POST starts a task that finds the row
        already claimed and does nothing)."""
        task = asyncio.create_task(self._run(request_id, target, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """At shutdown: what is still running goes to the trainer."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _run(self, request_id: str, target: dict, body: dict[str, Any]) -> None:
        if not await asyncio.to_thread(self._claim, request_id):
            return
        try:
            outcome = await self._ask(target, body)
        except asyncio.CancelledError:
            self._requeue(request_id, "the API is stopping")
            raise
        except Exception as exc:  # never leave the future running
            log.exception("sample %s on vLLM failed", request_id)
            outcome, reason = None, f"{type(exc).__name__}: {exc}"
        else:
            reason = "the inference service did not sample it"
        if outcome is None:
            await asyncio.to_thread(self._requeue, request_id, reason)
        else:
            await asyncio.to_thread(self._finish, request_id, outcome)

    async def _ask(self, target: dict, body: dict[str, Any]) -> Outcome | None:
        url = f"{self.client.url}/internal/tinker/sample"
        try:
            r = await self.client.http.post(url, json={"model": target, "body": body})
        except httpx.HTTPError as exc:
            log.info("inference service unreachable for a Tinker sample (%s)", exc)
            return None
        if r.status_code == 200:
            return Outcome(result=r.content)
        if r.status_code in (400, 422):  # refused: the trainer would refuse it too
            try:
                return Outcome(error=r.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                return Outcome(error=r.text[:500])
        log.info("Tinker sample not run on vLLM (%s): %s", r.status_code, r.text[:300])
        return None

    def _claim(self, request_id: str) -> bool:
        with session_scope(self.url) as db:
            done = db.execute(
                update(TinkerRequest)
                .where(
                    TinkerRequest.id == request_id,
                    TinkerRequest.kind == VLLM_KIND,
                    TinkerRequest.status == "pending",
                )
                .values(status="running")
            )
            return done.rowcount == 1

    def _finish(self, request_id: str, outcome: Outcome) -> None:
        failed = outcome.error is not None
        with session_scope(self.url) as db:
            db.execute(
                update(TinkerRequest)
                .where(
                    TinkerRequest.id == request_id,
                    TinkerRequest.kind == VLLM_KIND,
                    TinkerRequest.status == "running",
                )
                .values(
                    status="failed" if failed else "done",
                    result=outcome.result,
                    result_type=None if failed else "proto",
                    error=outcome.error,
                    category="user" if failed else None,
                    finished_at=utcnow(),
                )
            )
            wakeups.notify(db, wakeups.DONE_CHANNEL, request_id)  # wakes its long-poll

    def _requeue(self, request_id: str, reason: str) -> None:
        log.info("sample %s goes to the trainer: %s", request_id, reason)
        try:
            with session_scope(self.url) as db:
                db.execute(
                    update(TinkerRequest)
                    .where(
                        TinkerRequest.id == request_id,
                        TinkerRequest.kind == VLLM_KIND,
                        TinkerRequest.status.in_(("pending", "running")),
                    )
                    .values(kind=TRAINER_KIND, status="pending")
                )
                wakeups.notify(db, wakeups.NEW_CHANNEL)  # wakes the trainers at commit
        except Exception:  # requeue_if_lost hands it over later
            log.exception("could not hand sample %s to the trainer", request_id)


# --- the inference service's half ---


class NotServed(Conflict):
    code = "vllm_not_serving"


@dataclass
class Plan:
    """The vLLM completions request(s) of a Tinker sample, and how to read the answers.

    `score`: a request of its own for the prompt logprobs when several samples are asked:
    vLLM runs `n` samples as `n` requests in one batch, and its CPU engine dies computing
    prompt logprobs in a batch of more than one (core.inference.backends.scoring_gate)."""

    body: dict[str, Any]
    score: dict[str, Any] | None
    prompt: list[int]
    max_tokens: int
    copies: int  # greedy sampling: one sample, copied (vLLM refuses n > 1 without sampling)


def _stop_fields(stop: Any) -> dict[str, Any]:
    """vLLM's fields for Tinker's `stop` (see the module docstring for the semantics)."""
    if stop is None:
        return {}
    if isinstance(stop, str):
        stop = [stop]
    if all(isinstance(s, int) for s in stop):
        return {"ignore_eos": True, "stop_token_ids": list(stop)}
    if all(isinstance(s, str) for s in stop):
        return {"ignore_eos": True, "stop": list(stop), "include_stop_str_in_output": True}
    raise InvalidRequest(
        "sampling_params.stop mixes strings and token ids", param="sampling_params.stop"
    )


def plan(req: dict[str, Any], model_id: str, context: int, cap: int) -> Plan:
    """The completions request for `req` on a server whose context is `context` tokens;
    `cap` is LATHE_TINKER_MAX_SAMPLE_TOKENS (the default max_tokens, as on the trainer)."""
    prompt = codec.sample_prompt(req, context)
    sp = req.get("sampling_params") or {}
    asked = sp.get("max_tokens")
    max_tokens = min(context - len(prompt), cap if asked is None else asked)
    n = int(req.get("num_samples", 1))
    temperature = float(sp.get("temperature", 1.0))
    greedy = temperature < GREEDY_BELOW  # vLLM samples greedily below it
    body: dict[str, Any] = {
        "model": model_id,
        "prompt": prompt,
        "n": 1 if greedy else n,
        "max_tokens": max(max_tokens, 1),  # vLLM's least; a 0 keeps none of it
        "temperature": temperature,
        "top_p": float(sp.get("top_p", 1.0)),
        "top_k": int(sp.get("top_k", -1)),
        # the model's generation_config.json must not change what Tinker's params mean
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "min_p": 0.0,
        "logprobs": 0,
        "return_token_ids": True,
        "return_tokens_as_token_ids": True,
        **_stop_fields(sp.get("stop")),
    }
    if sp.get("seed") is not None:
        body["seed"] = int(sp["seed"]) % SEED_RANGE
    score = None
    if req.get("prompt_logprobs") and body["n"] == 1:
        body["prompt_logprobs"] = 0  # the prompt token's own logprob only
    elif req.get("prompt_logprobs"):
        score = {"model": model_id, "prompt": prompt, "n": 1, "max_tokens": 1}
        score |= {"temperature": 0.0, "prompt_logprobs": 0}
    return Plan(body, score, prompt, max_tokens, n if greedy else 1)


def _sequence(choice: dict[str, Any], max_tokens: int) -> codec.Sequence:
    tokens = list(choice.get("token_ids") or [])[:max_tokens]
    logprobs = list((choice.get("logprobs") or {}).get("token_logprobs") or [])[:max_tokens]
    if len(logprobs) != len(tokens):
        raise RuntimeError(f"vLLM gave {len(tokens)} tokens but {len(logprobs)} logprobs")
    stopped = max_tokens > 0 and choice.get("finish_reason") == "stop"
    return codec.Sequence(tokens, [float(x) for x in logprobs], stopped)


def _prompt_logprobs(choice: dict[str, Any], prompt: list[int]) -> list[float]:
    """log p(prompt[i] | prompt[:i]), NaN for the first token (the SDK reads it as None)."""
    rows = choice.get("prompt_logprobs") or []
    if len(rows) != len(prompt):
        raise RuntimeError(f"vLLM gave {len(rows)} prompt logprobs for {len(prompt)} tokens")
    out = [math.nan]
    for token, row in zip(prompt[1:], rows[1:], strict=True):
        out.append(float(row[str(token)]["logprob"]))
    return out


def read(answer: dict[str, Any], p: Plan, scored: dict[str, Any] | None) -> bytes:
    """vLLM's completions answer as Tinker's `SampleResponse` proto; `scored`: the answer
    that holds the prompt logprobs, if asked for."""
    choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
    seqs = [_sequence(c, p.max_tokens) for c in choices] * p.copies
    plp = None if scored is None else _prompt_logprobs(scored["choices"][0], p.prompt)
    return codec.sample_response(seqs, plp)


async def sample(backend: VLLMBackend, model: StoredModel, req: dict[str, Any], cap: int) -> bytes:
    """One Tinker sample on `model`'s vLLM server (NotServed where it has none ready)."""
    if not await asyncio.to_thread(backend.serves, model):  # may read the adapter's files
        raise NotServed(f"vLLM does not serve {model.id} now", param="model")
    context = await backend.context_length(model.base_model)
    p = plan(req, model.id, context, cap)
    scored = None if p.score is None else await backend.completion(model, p.score)
    answer = await backend.completion(model, p.body)  # alone on the server if it scores
    if scored is None and req.get("prompt_logprobs"):
        scored = answer
    return read(answer, p, scored)
