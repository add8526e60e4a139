"""What a trainer does with one request: the computation, given the request's body, on the
clients of a `LoraPool`. Database work is the caller's (core.tinker.trainer).

forward_backward pads a chunk's datums into one batch, computes each target's logprob, sums
the loss over tokens and datums and (unless forward-only) backpropagates into the client's
adapter, where gradients accumulate until optim_step, as the SDK documents.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from core.errors import InvalidRequest
from core.tinker import codec
from core.tinker.lora_pool import Client, LoraPool
from core.tinker.losses import LOSSES


def target_logprobs(model: Any, data: list[codec.Datum], device: str) -> list[torch.Tensor]:
    """Per datum: log p(target_tokens[i] | model_input[:i+1]), with grad when enabled."""
    width = max(d.tokens.size for d in data)
    ids = torch.zeros((len(data), width), dtype=torch.long)
    mask = torch.zeros((len(data), width), dtype=torch.long)
    targets = torch.zeros((len(data), width), dtype=torch.long)
    for i, d in enumerate(data):
        n = d.tokens.size
        ids[i, :n] = torch.from_numpy(d.tokens)
        mask[i, :n] = 1
        targets[i, :n] = torch.from_numpy(d.inputs["target_tokens"])
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    lp = torch.log_softmax(logits, -1).gather(-1, targets.to(device)[..., None]).squeeze(-1)
    return [lp[i, : d.tokens.size] for i, d in enumerate(data)]


def _check(client: Client, req: codec.FwdBwd) -> None:
    vocab = client.base.model.config.vocab_size
    for i, d in enumerate(req.data):
        if d.tokens.size > client.base.max_context:
            raise InvalidRequest(
                f"data[{i}].model_input has {d.tokens.size} tokens, over the model's context "
                f"of {client.base.max_context}",
                param=f"data[{i}].model_input",
            )
        for name, arr in (("model_input", d.tokens), ("target_tokens", d.inputs["target_tokens"])):
            if arr.size and (arr.min() < 0 or arr.max() >= vocab):
                raise InvalidRequest(
                    f"data[{i}].{name} has a token id outside the vocabulary (0..{vocab - 1})",
                    param=f"data[{i}].{name}",
                )


def forward_backward(pool: LoraPool, client: Client, body: bytes) -> bytes:
    req = codec.parse_forward_backward(body)
    _check(client, req)
    model = pool.activate(client)
    loss_fn = LOSSES[req.loss_fn]
    with torch.set_grad_enabled(not req.forward_only):
        lps = target_logprobs(model, req.data, pool.device)
        total = torch.zeros((), device=pool.device)
        for lp, d in zip(lps, req.data, strict=True):
            inputs = {
                k: torch.from_numpy(np.array(v)).to(pool.device)
                for k, v in d.inputs.items()
                if k != "target_tokens"
            }
            total = total + loss_fn(lp, inputs, req.config)
        if not req.forward_only:
            total.backward()
            client.accumulated = True
    metrics = {"loss:sum": float(total.detach())}
    return codec.forward_backward_output([lp.detach().cpu().numpy() for lp in lps], metrics)


def optim_step(client: Client, adam: dict[str, Any]) -> dict[str, Any]:
    """torch.optim.AdamW with the request's values; grad_clip_norm 0 = no clipping."""
    params = list(client.params.values())
    if not client.accumulated or all(p.grad is None for p in params):
        raise InvalidRequest(
            "optim_step with no gradients accumulated: call forward_backward first",
            param="adam_params",
            code="nothing_accumulated",
        )
    lr = float(adam.get("learning_rate", 1e-4))
    betas = (float(adam.get("beta1", 0.9)), float(adam.get("beta2", 0.95)))
    eps, wd = float(adam.get("eps", 1e-12)), float(adam.get("weight_decay", 0.0))
    clip = float(adam.get("grad_clip_norm", 0.0) or 0.0)
    if lr < 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or eps < 0 or wd < 0 or clip < 0:
        raise InvalidRequest("adam_params out of range", param="adam_params")
    if client.optimizer is None:
        client.optimizer = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    for group in client.optimizer.param_groups:
        group.update(lr=lr, betas=betas, eps=eps, weight_decay=wd)
    grads = [p.grad for p in params if p.grad is not None]
    norm = float(
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    )
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)
    client.optimizer.step()
    client.optimizer.zero_grad(set_to_none=True)
    client.accumulated = False
    return {"metrics": {"grad_norm:mean": norm if math.isfinite(norm) else -1.0}}
