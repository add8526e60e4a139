"""How close the student is to the teacher and to the task, on held-out rows.

- `loss`: the student's cross-entropy on the rows' trained tokens — the task's held-out loss,
  the number supervised fine-tuning reports as valid_loss;
- `agreement`: the share of those positions where the student's most likely next token is the
  teacher's (top-1 agreement, as in Stanton et al. 2021, https://arxiv.org/abs/2106.05945);
- `distillation_loss`: the divergence the job trains on (generalized JSD with `beta`),
  averaged over the same positions.

All three come from one forward pass of each model per batch of padded rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.training.tokenize import IGNORE


def generalized_jsd(student_logits: Any, teacher_logits: Any, beta: float) -> Any:
    """Per-position divergence [N] between two [N, V] logit rows: 0 is the forward KL
    KL(teacher || student), 1 the reverse KL, between them GKD's generalized JSD (TRL's
    GKDTrainer.generalized_jsd_loss, which the training loss uses)."""
    from trl.experimental.gkd import GKDTrainer

    return GKDTrainer.generalized_jsd_loss(
        student_logits, teacher_logits, beta=beta, reduction="none"
    ).sum(-1)


def held_out_scores(
    student: Any, teacher: Any | None, batches: Iterable[dict[str, Any]], beta: float
) -> dict[str, float]:
    """{"loss", "agreement", "distillation_loss"} of `student` (without a teacher: "loss")."""
    import torch
    import torch.nn.functional as F

    was_training = student.training
    student.eval()
    device = next(student.parameters()).device
    totals = {"loss": 0.0, "agreement": 0.0, "distillation_loss": 0.0}
    n = 0
    try:
        with torch.inference_mode():
            for batch in batches:
                ids = batch["input_ids"].to(device)
                mask = batch["attention_mask"].to(device)
                labels = batch["labels"][:, 1:].to(device)
                keep = labels != IGNORE
                logits = student(input_ids=ids, attention_mask=mask).logits[:, :-1][keep].float()
                target = labels[keep]
                totals["loss"] += F.cross_entropy(logits, target, reduction="sum").item()
                n += int(target.numel())
                if teacher is None:
                    continue
                t_logits = teacher(input_ids=ids, attention_mask=mask).logits[:, :-1][keep].float()
                totals["agreement"] += (logits.argmax(-1) == t_logits.argmax(-1)).sum().item()
                totals["distillation_loss"] += generalized_jsd(logits, t_logits, beta).sum().item()
    finally:
        student.train(was_training)
    keys = totals if teacher is not None else {"loss": 0}
    return {k: totals[k] / max(n, 1) for k in keys}
