"""What a distillation job's teacher (and student) must be, checked when the job is created.

The student's adapter must not be a soft prompt. The teacher (`method.distillation.teacher`)
is a model of the organization or a base model that generates text, whose weights the worker
can materialise (an adapter it can merge), and whose tokenizer is the student's: distillation
compares the two token distributions id by id.
Fine-tunes share their root base's tokenizer, so only different roots need a look at the
tokenizers — done here when both are local (builtin or a path), else by the worker as the job
starts, failing it with the same param.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.errors import InvalidRequest
from core.jobspec.job import JobCreate
from core.persistence.models import Model
from core.registry import base_model_path, get_model
from core.settings import Settings, get_settings

PARAM = "method.distillation.teacher"
UNMERGEABLE = frozenset({"prompt_tuning", "prefix_tuning"})
"""Soft prompts: nothing to merge into a teacher's weights, and extra positions in a student."""


def check_teacher(
    session: Session, org_id: str, body: JobCreate, student: Model, settings: Settings | None = None
) -> None:
    if body.method.type != "distillation":
        return
    if body.adapter.type in UNMERGEABLE:
        raise InvalidRequest(
            f"a {body.adapter.type} student cannot be distilled: its soft prompt shifts the "
            "student's tokens against the teacher's (use lora, qlora, ia3 or full)",
            param="adapter.type",
        )
    name = body.method.distillation.teacher  # type: ignore[union-attr]
    teacher = get_model(session, org_id, name, param=PARAM)
    if (teacher.task or "causal_lm") != "causal_lm":
        raise InvalidRequest(
            f"{name} is a {teacher.task.replace('_', ' ')}: a teacher must generate text",  # type: ignore[union-attr]
            param=PARAM,
        )
    if teacher.adapter_type in UNMERGEABLE:
        raise InvalidRequest(
            f"{name} is a {teacher.adapter_type} model: its soft prompt cannot be merged into "
            "weights to teach with",
            param=PARAM,
        )
    if teacher.base_model != student.base_model and not _same_tokenizer(
        settings or get_settings(), teacher.base_model, student.base_model
    ):
        raise InvalidRequest(
            f"{name} (base {teacher.base_model}) does not share the tokenizer of the student "
            f"{body.model} (base {student.base_model}): distillation compares their token "
            "distributions id by id",
            param=PARAM,
            code="tokenizer_mismatch",
        )


def _same_tokenizer(settings: Settings, a: str, b: str) -> bool:
    """True unless both bases are local and their tokenizers differ (the worker checks the
    rest). Loads transformers in the API process, once per such request."""
    sources = [settings.base_models.get(name) for name in (a, b)]
    if any(s is None or s.source == "hub" for s in sources):
        return True
    from transformers import AutoTokenizer

    from core.training.distill_data import same_tokenizer

    first, second = (AutoTokenizer.from_pretrained(base_model_path(settings, n)) for n in (a, b))
    return same_tokenizer(first, second)
