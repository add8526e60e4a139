"""One job's training across several processes (one per device) through torch.distributed.

`core.runs.launch` starts the ranks with the usual environment (RANK, WORLD_SIZE,
MASTER_ADDR/PORT); the trainer's `accelerate` picks that up (gloo on CPU, NCCL on CUDA) and
runs DDP, or FSDP2 when the job's strategy says so. This module holds what Lathe adds on top:
- only rank 0 talks to the job: it runs the normal job flow (`core.runs.runner`) and, once it
  built the training context, broadcasts it to the other ranks (`share` / `follow`), which run
  the same recipe with a `RankReporter` that writes nothing;
- a cancel, pause or hand-back seen by rank 0 reaches every rank at the same step boundary
  (`LeadReporter.should_stop` broadcasts it), so no rank is left waiting in a collective;
- the user's effective batch (batch_size × gradient_accumulation_steps) is kept whatever the
  world size: the per-device batch and the accumulation adapt (`batch_args`);
- artifacts are written by rank 0 only; under FSDP every rank first joins in gathering the
  full (consolidated, servable) state dict (`gather_for_save`);
- a checkpoint's resume state is every rank's: the trainer writes rank-specific files (each
  rank's `rng_state_{rank}.pth`; under FSDP's sharded state its model and optimizer shards)
  into the rank's own `checkpoint-N`. On one host that folder is rank 0's, which uploads it
  whole; a rank whose folder is its own (another host: core.runs.ray_driver) uploads it into
  the same checkpoint in storage itself, before rank 0 records it (`own_state`, `barrier`).
Everything is a no-op in a single process, so single-device jobs run exactly as before.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.jobspec.recipe import SpecError, TrainingContext

log = logging.getLogger(__name__)

_shared = {"done": False}

StateUpload = Callable[[int, Path], None]
"""(step, folder): put a rank's own resume-state files into the job's checkpoint at `step` in
storage, beside rank 0's (core.runs.ray_driver gives it to the ranks away from rank 0)."""


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the job's process group (before the trainer does, so rank 0 can share the job's
    context first); accelerate then reuses it."""
    import torch
    import torch.distributed as dist

    if world_size() > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)


def _broadcast(obj: Any) -> Any:
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share(ctx: TrainingContext) -> TrainingContext:
    """Rank 0: send the training context to the other ranks; the returned context reports
    through a `LeadReporter`. Unchanged in a single process."""
    if world_size() == 1:
        return ctx
    _shared["done"] = True
    _broadcast(replace(ctx, reporter=None))
    ctx.reporter.message(
        f"Training on {world_size()} processes (torch.distributed)",
        data={"world_size": world_size()},
    )
    return replace(ctx, reporter=LeadReporter(ctx.reporter))


def release() -> None:
    """Rank 0, when its run ends without training (a duplicate message, a failed check): the
    waiting ranks get nothing to train and exit."""
    if world_size() > 1 and not _shared["done"]:
        _shared["done"] = True
        _broadcast(None)


def follow(upload_state: StateUpload | None = None) -> TrainingContext | None:
    """Ranks > 0: the context rank 0 trains with, reporting nowhere but for `upload_state`
    (see RankReporter); None when it does not train this time."""
    ctx = _broadcast(None)
    if ctx is None:
        return None
    reporter = RankReporter(upload_state)
    return replace(ctx, reporter=reporter, output_dir=ctx.work_dir / f"rank-{rank()}")


def own_state(state_dir: Path) -> bool:
    """Whether this rank's checkpoint folder is its own rather than rank 0's (another host, or
    another directory), so that rank 0's upload would miss its files. Every rank must call it
    (a collective); False on rank 0 and in a single process."""
    if world_size() == 1:
        return False
    here = (socket.gethostname(), str(state_dir.resolve()))
    lead = _broadcast(here)  # rank 0's folder; every rank must take part
    return lead != here


def barrier() -> None:
    """Every rank waits for the others (no-op in a single process)."""
    if world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


def _stop_flags(flags: tuple[bool, bool]) -> tuple[bool, bool]:
    return tuple(_broadcast(list(flags)))  # type: ignore[return-value]


class LeadReporter:
    """Rank 0's reporter: the job's, with its stop decision broadcast to every rank."""

    def __init__(self, inner: Any):
        self.inner = inner
        self._pausing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def should_stop(self) -> bool:
        stop = self.inner.should_stop()
        stop, self._pausing = _stop_flags((stop, stop and self.inner.pausing()))
        return stop

    def pausing(self) -> bool:
        return self._pausing


class RankReporter:
    """The reporter of ranks > 0: events, metrics and checkpoints are rank 0's to write, but
    for the rank's own resume-state files where its checkpoint folder is not rank 0's
    (`upload_state`); the stop decision comes from rank 0 at each step boundary."""

    def __init__(self, upload_state: StateUpload | None = None) -> None:
        self.upload_state = upload_state
        self._pausing = False

    def message(self, text: str, level: str = "info", data: dict | None = None) -> None:
        pass

    def metrics(self, data: dict) -> None:
        pass

    def resolved(self, hyperparameters: dict) -> None:
        pass

    def checkpoint(self, step, artifact_dir, state_dir, metrics) -> None:
        """This rank's own part of the checkpoint (its state folder, not rank 0's): to storage,
        or the resume would silently lack it."""
        if state_dir is None:
            return
        if self.upload_state is None:
            raise RuntimeError(
                f"rank {rank()} wrote its checkpoint state into its own {state_dir} but has no "
                "way to upload it"
            )
        self.upload_state(step, state_dir)

    def should_stop(self) -> bool:
        stop, self._pausing = _stop_flags((False, False))
        return stop

    def pausing(self) -> bool:
        return self._pausing


def batch_args(hp: dict[str, Any]) -> dict[str, Any]:
    """Per-device batch and gradient accumulation for the world size, so that batch × accumulation
    × world size is the user's batch_size × gradient_accumulation_steps (the same examples per
    optimizer step, the same step count, whatever the number of devices)."""
    batch, accumulation, n = hp["batch_size"], hp["gradient_accumulation_steps"], world_size()
    total = batch * accumulation
    per_device = next(
        (b for b in range(batch, 0, -1) if total % (b * n) == 0 and total // (b * n) >= 1), None
    )
    if per_device is None:
        raise SpecError(
            f"batch_size × gradient_accumulation_steps = {total} examples per step cannot be "
            f"split evenly over {n} devices",
            param="resources.gpus",
        )
    return {
        "per_device_train_batch_size": per_device,
        "per_device_eval_batch_size": per_device,
        "gradient_accumulation_steps": total // (per_device * n),
    }


def strategy(ctx: TrainingContext, n_params: int, fsdp_min_params: int) -> str:
    """The job's strategy: what it asked for, or 'auto' resolved (fsdp for full fine-tuning of
    large models, ddp otherwise)."""
    chosen = ctx.spec.distributed.strategy
    if chosen == "auto":
        full = ctx.spec.adapter.type == "full"
        chosen = "fsdp" if full and n_params >= fsdp_min_params else "ddp"
    return chosen


def strategy_args(ctx: TrainingContext, model: Any) -> dict[str, Any]:
    """TrainingArguments for the job's strategy across the ranks ({} in one process)."""
    if world_size() == 1:
        return {}
    from core.settings import get_settings

    n_params = sum(p.numel() for p in model.parameters())
    chosen = strategy(ctx, n_params, get_settings().training.fsdp_min_params)
    if chosen == "zero3":  # the API refuses it where DeepSpeed is missing; a worker may lack it
        raise SpecError(
            "distributed.strategy 'zero3' needs DeepSpeed, which this worker does not have",
            param="distributed.strategy",
            code="unsupported_on_worker",
        )
    data: dict[str, Any] = {"world_size": world_size(), "strategy": chosen}
    note = ""
    if chosen == "fsdp" and not _can_shard():
        data |= {"strategy": "ddp", "asked": "fsdp"}
        note = (
            " (fsdp asked for: accelerate shards only on GPUs and other accelerators;"
            " CPU processes keep full replicas)"
        )
    ctx.reporter.message(
        f"Distributed strategy: {data['strategy']} over {world_size()} processes{note}",
        data=data,
    )
    chosen = data["strategy"]
    args: dict[str, Any] = {"ddp_find_unused_parameters": False}
    if chosen == "fsdp":
        layers = list(getattr(model, "_no_split_modules", None) or [])
        args = {
            "fsdp": "full_shard auto_wrap",
            "fsdp_config": {
                "version": 2,
                "reshard_after_forward": True,
                "state_dict_type": "SHARDED_STATE_DICT",  # the resume state, one shard per rank
                **({"transformer_layer_cls_to_wrap": layers} if layers else {}),
            },
        }
    return args


def _can_shard() -> bool:
    """Whether FSDP really shards here: accelerate (1.x) turns its FSDP plugin on only for
    accelerator process groups (CUDA, XPU, NPU, ...); on CPU processes it silently wraps the
    model in DDP instead, so the job says what runs rather than what was asked for."""
    import torch

    return torch.accelerator.is_available()


def gather_for_save(model: Any) -> tuple[bool, dict | None]:
    """(whether this rank writes the artifact, the full state dict to write or None for the
    model's own). Under FSDP every rank must call it: gathering the shards is collective."""
    if world_size() == 1:
        return True, None
    import torch.distributed as dist
    from torch.distributed.fsdp import FSDPModule

    state = None
    if any(isinstance(m, FSDPModule) for m in model.modules()):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)
    dist.barrier()  # every rank's part of a checkpoint is on disk before rank 0 uploads it
    return is_main(), state


def peer_lost(exc: BaseException) -> bool:
    """Whether an exception on rank 0 is another rank's death seen through a collective (the
    run crashed: retried as any crash), rather than a failure of the job itself."""
    if world_size() == 1:
        return False
    import torch.distributed as dist

    text = str(exc)
    return isinstance(exc, dist.DistError) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "gloo")
    )


def fsdp_optimizers(spread: dict[str, Any], optimizer: Any) -> tuple[Any, None]:
    """The trainer's `optimizers`: the recipe's own, except under FSDP, where the trainer
    builds AdamW (same learning rate and weight decay) over the sharded parameters."""
    return (None, None) if "fsdp" in spread else (optimizer, None)
