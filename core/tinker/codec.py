"""Tinker's protobuf bodies <-> plain Python, with numpy only (the API process parses and
validates requests with it, without torch).

A request that can be refused at submit time is refused here with a 400 naming the field, so
the SDK raises `BadRequestError` at once instead of poisoning its client on a failed future.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import InvalidRequest
from core.tinker import tinker_public_pb2 as pb

LOSS_INPUTS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("target_tokens", "weights"),
    "importance_sampling": ("target_tokens", "logprobs", "advantages"),
    "ppo": ("target_tokens", "logprobs", "advantages"),
    "cispo": ("target_tokens", "logprobs", "advantages"),
    "dro": ("target_tokens", "logprobs", "advantages"),
}
"""The losses this server computes and the inputs each needs (`weights` may be omitted:
then every position counts once)."""

OPTIONAL_INPUTS = {"weights"}
INT_INPUTS = {"target_tokens"}
LOSS_CONFIG_KEYS: dict[str, set[str]] = {
    "cross_entropy": set(),
    "importance_sampling": set(),
    "ppo": {"clip_low_threshold", "clip_high_threshold"},
    "cispo": {"clip_low_threshold", "clip_high_threshold"},
    "dro": {"beta"},
}

_DTYPES = {
    pb.DTYPE_FLOAT32: np.float32,
    pb.DTYPE_INT64: np.int64,
    pb.DTYPE_INT32: np.int32,
}


@dataclass
class Datum:
    tokens: np.ndarray  # int64 [N]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FwdBwd:
    model_id: str
    seq_id: int
    loss_fn: str
    forward_only: bool
    config: dict[str, float]
    data: list[Datum]


def _tensor(msg: pb.Tensor, where: str) -> np.ndarray:
    if msg.WhichOneof("encoding") != "dense":
        raise InvalidRequest(f"{where}: only dense tensors are supported", param=where)
    dtype = _DTYPES.get(msg.dtype)
    if dtype is None:
        raise InvalidRequest(f"{where}: unsupported dtype {msg.dtype}", param=where)
    if len(msg.dense) % np.dtype(dtype).itemsize:
        raise InvalidRequest(f"{where}: byte length is not a multiple of its dtype", param=where)
    arr = np.frombuffer(msg.dense, dtype=dtype)
    if len(msg.shape) > 1 and int(np.prod(msg.shape)) != arr.size:
        raise InvalidRequest(f"{where}: shape {list(msg.shape)} does not match data", param=where)
    return arr


def _tokens(datum: pb.Datum, where: str) -> np.ndarray:
    parts = []
    for j, chunk in enumerate(datum.model_input):
        if chunk.WhichOneof("chunk") != "encoded_text":
            raise InvalidRequest(
                f"{where}.model_input.chunks[{j}]: only encoded_text chunks are supported",
                param=f"{where}.model_input",
            )
        parts.append(np.frombuffer(chunk.encoded_text.tokens, dtype=np.int32))
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _config(req: pb.ForwardBackwardRequest) -> dict[str, float]:
    out = {k: float(v) for k, v in req.loss_fn_config.items()}
    for k, v in req.loss_fn_config_v2.items():
        if v.WhichOneof("value") != "number":
            raise InvalidRequest(f"loss_fn_config.{k} must be a number", param="loss_fn_config")
        out[k] = float(v.number)
    return out


def parse_forward_backward(body: bytes) -> FwdBwd:
    """Parse and validate a `ForwardBackwardRequest` (lengths, dtypes, loss, config keys)."""
    req = pb.ForwardBackwardRequest()
    try:
        req.ParseFromString(body)
    except Exception as exc:
        raise InvalidRequest(f"body is not a ForwardBackwardRequest: {exc}") from exc
    if req.loss_fn not in LOSS_INPUTS:
        raise InvalidRequest(
            f"unsupported loss_fn {req.loss_fn!r}; this server supports "
            f"{', '.join(sorted(LOSS_INPUTS))} (forward_backward_custom runs on the client)",
            param="loss_fn",
            code="unsupported_loss",
        )
    config = _config(req)
    unknown = set(config) - LOSS_CONFIG_KEYS[req.loss_fn]
    if unknown:
        raise InvalidRequest(
            f"loss_fn_config key(s) {sorted(unknown)} do not apply to {req.loss_fn}",
            param="loss_fn_config",
        )
    if not req.data:
        raise InvalidRequest("data is empty", param="data")
    data = [_datum(d, i, req.loss_fn) for i, d in enumerate(req.data)]
    return FwdBwd(req.model_id, req.seq_id, req.loss_fn, req.forward_only, config, data)


def _datum(d: pb.Datum, i: int, loss_fn: str) -> Datum:
    where = f"data[{i}]"
    tokens = _tokens(d, where)
    if tokens.size == 0:
        raise InvalidRequest(f"{where}.model_input is empty", param=f"{where}.model_input")
    needed = LOSS_INPUTS[loss_fn]
    inputs: dict[str, np.ndarray] = {}
    for name, tensor in d.loss_fn_inputs.items():
        at = f"{where}.loss_fn_inputs.{name}"
        if name not in needed:
            raise InvalidRequest(f"{at} is not an input of {loss_fn}", param=at)
        arr = _tensor(tensor, at)
        if name in INT_INPUTS and arr.dtype.kind != "i":
            raise InvalidRequest(f"{at} must be int64, got {arr.dtype}", param=at)
        if name not in INT_INPUTS and arr.dtype != np.float32:
            raise InvalidRequest(f"{at} must be float32, got {arr.dtype}", param=at)
        if arr.size != tokens.size:
            raise InvalidRequest(
                f"{at} has {arr.size} elements but model_input has {tokens.size} tokens",
                param=at,
            )
        inputs[name] = arr.astype(np.int64) if name in INT_INPUTS else arr
    missing = [n for n in needed if n not in inputs and n not in OPTIONAL_INPUTS]
    if missing:
        raise InvalidRequest(
            f"{where}.loss_fn_inputs lacks {', '.join(missing)} (needed by {loss_fn})",
            param=f"{where}.loss_fn_inputs",
        )
    return Datum(tokens, inputs)


def forward_backward_output(logprobs: list[np.ndarray], metrics: dict[str, float]) -> bytes:
    """A `ForwardBackwardOutput` with one batched ArrayRecord: per-datum `logprobs`."""
    arrays = [np.asarray(a, dtype=np.float32) for a in logprobs]
    offsets = np.cumsum([0] + [a.nbytes for a in arrays]).astype(np.int64)
    out = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord")
    record = out.loss_fn_outputs.add(num_datums=len(arrays))
    bt = record.fields["logprobs"]
    bt.data = b"".join(a.tobytes() for a in arrays)
    bt.offsets = offsets.tobytes()
    bt.dtype = pb.DTYPE_FLOAT32
    for k, v in metrics.items():
        out.metrics[k] = float(v)
    return out.SerializeToString()


@dataclass
class Sequence:
    tokens: list[int]
    logprobs: list[float]
    stopped: bool


def sample_response(seqs: list[Sequence], prompt_logprobs: list[float] | None) -> bytes:
    out = pb.SampleResponse()
    for s in seqs:
        msg = out.sequences.add()
        msg.stop_reason = pb.STOP_REASON_STOP if s.stopped else pb.STOP_REASON_LENGTH
        msg.tokens = np.asarray(s.tokens, dtype=np.int32).tobytes()
        msg.logprobs = np.asarray(s.logprobs, dtype=np.float32).tobytes()
    if prompt_logprobs is not None:
        out.prompt_logprobs = np.asarray(prompt_logprobs, dtype=np.float32).tobytes()
    return out.SerializeToString()


def sample_prompt(req: dict, context: int) -> list[int]:
    """A SampleRequest's prompt tokens (its encoded_text chunks, which the API checked), refused
    where they leave the model's `context` no room to sample: the same on the trainer and on
    vLLM."""
    prompt = [t for c in (req.get("prompt") or {}).get("chunks") or [] for t in c.get("tokens", [])]
    if len(prompt) >= context:
        raise InvalidRequest(
            f"prompt has {len(prompt)} tokens, the model's context is {context}", param="prompt"
        )
    return prompt
