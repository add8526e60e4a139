"""Bridge from a transformers/TRL trainer's loop to the job: metrics events and cancellation."""

from __future__ import annotations

import logging
import math
from typing import Any

from transformers import PrinterCallback, TrainerCallback

from core.jobspec.recipe import Reporter
from core.observability import StepTimer

log = logging.getLogger("lathe.training")

# trainer log key → OpenAI metrics field
_KEYS = {
    "loss": "train_loss",
    "mean_token_accuracy": "train_mean_token_accuracy",
    "eval_loss": "valid_loss",
    "eval_mean_token_accuracy": "valid_mean_token_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}
# Preference methods (TRL's DPOTrainer / RewardTrainer): implicit or explicit rewards of the
# chosen and rejected completions, their margin, and the share of pairs ranked right.
for _prefix, _split in (("", "train"), ("eval_", "valid")):
    _KEYS |= {
        f"{_prefix}rewards/chosen": f"{_split}_rewards_chosen",
        f"{_prefix}rewards/rejected": f"{_split}_rewards_rejected",
        f"{_prefix}rewards/margins": f"{_split}_reward_margin",
        f"{_prefix}rewards/accuracies": f"{_split}_pair_accuracy",
        f"{_prefix}margin": f"{_split}_reward_margin",
        f"{_prefix}accuracy": f"{_split}_pair_accuracy",
    }
# Sequence classification (core.methods.classification): argmax-label accuracy and macro-F1.
_KEYS |= {"eval_label_accuracy": "valid_accuracy", "eval_macro_f1": "valid_macro_f1"}
# Distillation (core.training.distill_trainer): top-1 agreement with the teacher and the
# divergence trained on, on the held-out rows.
_KEYS |= {"eval_agreement": "valid_agreement", "eval_distillation_loss": "valid_distillation_loss"}
# Online RL (TRL's GRPOTrainer): mean and spread of the sampled completions' rewards, KL to
# the reference, policy entropy, completion length.
_KEYS |= {
    "reward": "mean_reward",
    "reward_std": "reward_std",
    "kl": "kl",
    "entropy": "entropy",
    "completions/mean_length": "completion_length",
}


def rename_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """A trainer log's known keys under their metrics-event names (e.g. `evaluate()`'s)."""
    return {name: float(logs[key]) for key, name in _KEYS.items() if key in logs}


class ReporterCallback(TrainerCallback):
    """Turns each trainer log line into a metrics event and keeps the history for the
    results file; stops training when the job is cancelled.

    When an evaluation is due at a step (`control.should_evaluate` is set before the step's log
    line), the step's metrics event waits for it, so valid_* arrive in the same event, as in
    OpenAI's. Evaluations outside training (the base model's, the final one) are not step metrics.
    """

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.history: list[dict[str, Any]] = []
        self.cancelled = False
        self._pending: dict[str, Any] | None = None
        self._training = False
        self.timer = StepTimer()  # the worker's Prometheus metrics

    @staticmethod
    def _convert(logs: dict[str, Any], step: int, total: int) -> dict[str, Any]:
        data: dict[str, Any] = {"step": step, "total_steps": total}
        for key, name in _KEYS.items():
            if key in logs:
                data[name] = float(logs[key])
        for split in ("train", "valid"):
            if f"{split}_loss" in data:
                data[f"{split}_perplexity"] = math.exp(min(data[f"{split}_loss"], 50))
        return data

    def on_train_begin(self, args, state, control, **kwargs):
        """On resume the trainer state carries the log so far: the results file stays whole."""
        self._training = True
        for logs in state.log_history:
            if logs.get("step", 0) > 0 and ("loss" in logs or "eval_loss" in logs):
                self._record(self._convert(logs, logs["step"], state.max_steps))

    def _record(self, data: dict[str, Any]) -> None:
        if self.history and self.history[-1]["step"] == data["step"]:
            self.history[-1].update(data)
        else:
            self.history.append(data)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not self._training or state.global_step == 0:
            return  # evaluations before or after training are reported by the method
        if self.cancelled and not self.reporter.pausing():
            return  # the trainer logs the step it stopped on: after a cancel, nothing more
        self.timer.logged(logs)
        data = self._convert(logs, state.global_step, state.max_steps)
        if "train_loss" in data:
            log.info("step %d/%d: train_loss=%.4f", data["step"], data["total_steps"],
                     data["train_loss"], extra=data)  # fmt: skip
            self._record(data)
            if control.should_evaluate:
                self._pending = data
            else:
                self.reporter.metrics(data)
        elif "valid_loss" in data:
            self._merge_eval(data)

    def _merge_eval(self, data: dict[str, Any]) -> None:
        """Validation logs arrive after the step's; attach them to the step they belong to."""
        self._record({k: v for k, v in data.items() if k == "step" or k.startswith("valid")})
        if self._pending is not None and self._pending["step"] == data["step"]:
            self._pending = None
            self.reporter.metrics(self.history[-1])
        else:  # an evaluation the trainer scheduled on its own (e.g. at an epoch end)
            self.reporter.message(
                f"Step {data['step']}: validation loss={data['valid_loss']:.4f}", data=data
            )

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False
        self.timer.finished(stopped=self.cancelled)
        if self.cancelled and not self.reporter.pausing():
            self._pending = None
        if self._pending is not None:  # an evaluation was due but did not run
            self.reporter.metrics(self._pending)
            self._pending = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.timer.step_begin()

    def on_step_end(self, args, state, control, **kwargs):
        self.timer.step_end()
        if self.reporter.should_stop():
            self.cancelled = True
            control.should_training_stop = True
        return control


def quiet(trainer: Any) -> Any:
    """Drop transformers' PrinterCallback, which prints each log dict to stdout (in a Celery
    worker: `WARNING:celery.redirected:{'loss': ...}`, with no job id). ReporterCallback
    already turns those logs into job events and `lathe.training` log lines."""
    trainer.remove_callback(PrinterCallback)
    return trainer
