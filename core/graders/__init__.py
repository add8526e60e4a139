"""Graders: score a sampled completion against a dataset row, OpenAI-style, in-process.

    grader = parse_grader({"type": "string_check", "name": "exact",
                           "input": "{{sample.output_text}}",
                           "reference": "{{item.reference_answer}}", "operation": "eq"})
    grade(grader, "Paris", {"reference_answer": "Paris"})          # 1.0
    make_reward_fn(grader)(["Paris", "Rome"], [row, row])         # [1.0, 0.0]

Templates are substitutions, formulas are checked arithmetic; every regex has a timeout and
every row and job a grading time budget (core.graders.budget). Graders that need more than the
sample and the row are bound to their tools first (`bind`): score_model/label_model a judge
served through the inference service (core.graders.judge), cosine an encoder
(core.graders.embedding), python the operator's sandbox (core.graders.sandbox; client code
runs nowhere else, and only where the operator enabled it).
"""

from core.graders.base import GraderTools
from core.graders.budget import GradingBudget, GradingBudgetExceeded
from core.graders.grade import (
    GraderSpec,
    bind,
    check_item,
    grade,
    make_reward_fn,
    parse_grader,
)
from core.graders.model_graders import LabelModelGrader, ScoreModelGrader
from core.graders.specs import (
    Grader,
    JsonSchemaGrader,
    MultiGrader,
    PythonGrader,
    RegexGrader,
    StringCheckGrader,
    TextSimilarityGrader,
)
from core.graders.templates import GraderError

__all__ = [
    "Grader",
    "GraderError",
    "GraderSpec",
    "GraderTools",
    "GradingBudget",
    "GradingBudgetExceeded",
    "JsonSchemaGrader",
    "LabelModelGrader",
    "MultiGrader",
    "PythonGrader",
    "RegexGrader",
    "ScoreModelGrader",
    "StringCheckGrader",
    "TextSimilarityGrader",
    "bind",
    "check_item",
    "grade",
    "make_reward_fn",
    "parse_grader",
]
