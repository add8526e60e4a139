"""When to evaluate, checkpoint and stop early: one callback that owns the schedule.

The trainer's own eval/save strategies are left off; this callback decides at each step end,
so an evaluation always precedes a checkpoint at the same step (every checkpoint carries full
validation metrics) and the "epoch" intervals resolve to steps once the trainer knows how many
optimizer steps an epoch has. Early stopping judges each evaluation's loss; on resume its
state is rebuilt from the trainer state's log, so a resumed job stops where the original would.
A pause (the job's status, seen by ReporterCallback) saves a checkpoint with resume state at
the step it is noticed, beside the scheduled ones, so the resumed run loses no steps; only the
evaluations the schedule has due run there, so the resumed history matches an uninterrupted one.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from core.jobspec.recipe import Reporter
from core.training.auto import with_steps
from core.training.callbacks import ReporterCallback
from core.training.distributed import barrier, is_main, own_state

CHECKPOINT_METRICS = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
)


def checkpoint_metrics(history: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """OpenAI's checkpoint metrics. Lathe evaluates on the whole validation set, so the
    `full_valid_*` numbers are the step's `valid_*` ones."""
    row = next((h for h in reversed(history) if h["step"] == step), {})
    metrics: dict[str, Any] = {"step": step}
    metrics.update({k: row[k] for k in CHECKPOINT_METRICS if k in row})
    for key in ("valid_loss", "valid_mean_token_accuracy"):
        if key in row:
            metrics[f"full_{key}"] = row[key]
    return metrics


class ScheduleCallback(TrainerCallback):
    def __init__(
        self,
        hp: dict[str, Any],
        reporter: Reporter,
        log: ReporterCallback,
        save_artifact: Callable[[Path], Any],
    ):
        self.hp = hp
        self.reporter = reporter
        self.log = log
        self.save_artifact = save_artifact
        self.training = False
        self.best = math.inf
        self.evals_without_gain = 0
        self.stopped_at: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        steps_per_epoch = max(1, math.ceil(state.max_steps / args.num_train_epochs))
        self.hp = with_steps(self.hp, steps_per_epoch)
        self.reporter.resolved(self.hp)
        self.training = True
        for logs in state.log_history:  # resumed: replay the evaluations so far
            if logs.get("step", 0) > 0 and "eval_loss" in logs:
                self._judge(logs["eval_loss"])

    def on_step_end(self, args, state, control, **kwargs):
        pause = self.log.cancelled and self.reporter.pausing()
        if self.log.cancelled and not pause:
            return control
        step = state.global_step
        save = step % self.hp["checkpoint_interval"] == 0
        every = self.hp.get("eval_interval")  # RL methods without validation have none
        if every is not None and (step % every == 0 or save):
            control.should_evaluate = True
        control.should_save = save or pause
        return control

    def _judge(self, loss: float) -> bool:
        """True when early stopping says stop after this evaluation."""
        rule = self.hp.get("early_stopping")
        if rule is None:
            return False
        if loss < self.best - rule["min_delta"]:
            self.best, self.evals_without_gain = loss, 0
        else:
            self.evals_without_gain += 1
        return self.evals_without_gain >= rule["patience"]

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self.training or metrics is None or "eval_loss" not in metrics:
            return control  # the base model's evaluation, or the final one
        if self._judge(metrics["eval_loss"]) and state.global_step < state.max_steps:
            self.stopped_at = state.global_step
            control.should_training_stop = True
            self.reporter.message(
                f"Early stopping at step {state.global_step}: validation loss has not improved "
                f"on {self.best:.4f} for {self.evals_without_gain} evaluations",
                data={"step": state.global_step, "best_valid_loss": self.best},
            )
        return control

    def on_save(self, args, state, control, **kwargs):
        """Every rank: the artifact (rank 0 writes it), then the resume state, whose files
        each rank wrote. One job across devices: a rank whose state folder is its own (on
        another host) uploads it into the checkpoint; once all did, rank 0 uploads its own,
        records the checkpoint and cleans up."""
        step = state.global_step
        state_dir = Path(args.output_dir) / f"checkpoint-{step}"
        artifact_dir = Path(args.output_dir) / f"artifact-{step}"
        self.save_artifact(artifact_dir)
        own = own_state(state_dir)
        if own and state_dir.is_dir():
            self.reporter.checkpoint(step, artifact_dir, state_dir, {})
            shutil.rmtree(state_dir, ignore_errors=True)
        barrier()  # no checkpoint is recorded before every rank's files are in storage
        if not is_main():
            return control
        self.reporter.checkpoint(
            step,
            artifact_dir,
            state_dir if state_dir.is_dir() else None,
            checkpoint_metrics(self.log.history, step),
        )
        shutil.rmtree(artifact_dir, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)  # uploaded; local disk is not the store
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False
