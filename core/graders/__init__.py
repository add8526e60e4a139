"""Graders: score a sampled completion against a dataset row, OpenAI-style, in-process.

    grader = parse_grader({"type": "string_check", "name": "exact",
                           "input": "{{sample.output_text}}",
                           "reference": "{{item.reference_answer}}", "operation": "eq"})
    grade(grader, "Paris", {"reference_answer": "Paris"})          # 1.0
    make_reward_fn(grader)(["Paris", "Rome"], [row, row])         # [1.0, 0.0]

No client code is ever run: templates are substitutions, formulas are checked arithmetic;
every regex has a timeout and every row and job a grading time budget (core.graders.budget).
"""

from core.graders.budget import GradingBudget, GradingBudgetExceeded
from core.graders.grade import GraderSpec, check_item, grade, make_reward_fn, parse_grader
from core.graders.specs import (
    Grader,
    JsonSchemaGrader,
    MultiGrader,
    RegexGrader,
    StringCheckGrader,
    TextSimilarityGrader,
)
from core.graders.templates import GraderError

__all__ = [
    "Grader",
    "GraderError",
    "GraderSpec",
    "GradingBudget",
    "GradingBudgetExceeded",
    "JsonSchemaGrader",
    "MultiGrader",
    "RegexGrader",
    "StringCheckGrader",
    "TextSimilarityGrader",
    "check_item",
    "grade",
    "make_reward_fn",
    "parse_grader",
]
