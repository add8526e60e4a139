"""Bridge from a transformers/TRL trainer's loop to the job: metrics events and cancellation."""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from core.methods.base import Reporter

# trainer log key → OpenAI metrics field
_KEYS = {
    "loss": "train_loss",
    "mean_token_accuracy": "train_mean_token_accuracy",
    "eval_loss": "valid_loss",
    "eval_mean_token_accuracy": "valid_mean_token_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


class ReporterCallback(TrainerCallback):
    """Turns each trainer log line into a metrics event and keeps the history for the
    results file; stops training when the job is cancelled."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.history: list[dict[str, Any]] = []
        self.cancelled = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        data: dict[str, Any] = {"step": state.global_step, "total_steps": state.max_steps}
        for key, name in _KEYS.items():
            if key in logs:
                data[name] = float(logs[key])
        if "valid_loss" in data:
            data["valid_perplexity"] = math.exp(min(data["valid_loss"], 50))
        if "train_loss" not in data and "valid_loss" not in data:
            return  # end-of-training summary line, not a step
        if "train_loss" in data:
            data["train_perplexity"] = math.exp(min(data["train_loss"], 50))
            self.history.append(data)
            self.reporter.metrics(data)
        else:
            self._merge_eval(data)

    def _merge_eval(self, data: dict[str, Any]) -> None:
        """Validation logs arrive separately; attach them to the step they belong to."""
        if self.history and self.history[-1]["step"] == data["step"]:
            self.history[-1].update({k: v for k, v in data.items() if k.startswith("valid")})
        else:
            self.history.append(data)
        self.reporter.message(
            f"Step {data['step']}: validation loss={data['valid_loss']:.4f}", data=data
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.reporter.should_stop():
            self.cancelled = True
            control.should_training_stop = True
        return control
