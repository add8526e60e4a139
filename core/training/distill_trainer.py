"""TRL's GKD trainer (Agarwal et al. 2024, https://arxiv.org/abs/2306.13649), set up for
Lathe's three distillation modes, with an evaluation that reports what a distillation job is
judged by.

GKD covers the modes with two knobs: `lmbda`, the share of batches whose completions the
student samples (on_policy), and `beta`, the generalized JSD between the two token
distributions (0 forward KL, 1 reverse KL). `sequence` mode trains the student with plain
cross-entropy on answers the teacher wrote beforehand (core.training.distill_data), so its
loss here is the supervised one; the teacher still scores the held-out rows.

Evaluation replaces the trainer's loop: `eval_loss` is the student's cross-entropy on the
held-out answers (so early stopping, checkpoints and sweeps read the task's loss, as for SFT),
beside `eval_agreement` and `eval_distillation_loss` (core.training.distill_eval).
"""

from __future__ import annotations

import warnings
from typing import Any

from transformers.trainer_utils import EvalLoopOutput

from core.training.distill_eval import held_out_scores

with warnings.catch_warnings():  # GKD lives in trl.experimental in TRL 1.x: it says so once
    warnings.simplefilter("ignore")
    from trl.experimental.gkd import GKDConfig, GKDTrainer


class DistillTrainer(GKDTrainer):
    def __init__(self, *args: Any, cross_entropy: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cross_entropy = cross_entropy

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.cross_entropy:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        out = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            labels=inputs["labels"],
        )
        return (out.loss, out) if return_outputs else out.loss

    def evaluation_loop(
        self,
        dataloader,
        description,
        prediction_loss_only=None,
        ignore_keys=None,
        metric_key_prefix="eval",
    ) -> EvalLoopOutput:
        scores = held_out_scores(self.model, self.teacher_model, dataloader, self.beta)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
        return EvalLoopOutput(None, None, metrics, len(dataloader.dataset))


__all__ = ["DistillTrainer", "GKDConfig"]
