"""Grader specs: OpenAI's fine-tuning grader objects plus two Lathe extensions.

OpenAI shapes (https://platform.openai.com/docs/api-reference/graders): `string_check`,
`text_similarity`, `score_model` and `label_model` (core.graders.model_graders: a judge model
Lathe serves), `python` (client code: run only in the operator's sandbox) and `multi`. Lathe
adds `regex` and `json_schema`.

Each model validates everything it can when parsed (templates, formula, pattern, schema), so a
bad grader is a 400 at job creation, and scores a sample with `score(sample_text, item)`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from core.graders import formula as _formula
from core.graders.base import MAX_TEMPLATE_LENGTH, GraderBase, TemplatedInput
from core.graders.budget import check_deadline, regex_timed_out, regex_timeout
from core.graders.model_graders import LabelModelGrader, ScoreModelGrader
from core.graders.schema import MAX_PATTERN_LENGTH, safe_validator
from core.graders.similarity import similarity
from core.graders.templates import render
from core.jobspec.grader_limits import check_nesting
from core.jobspec.job import SimilarityMetric

MAX_REGEX_INPUT = 100_000
"""Characters of rendered input a regex grader searches (the rest is cut)."""
MAX_JSON_INPUT = 1_000_000
"""Characters of rendered input a json_schema grader parses (longer scores 0)."""
MAX_SUB_GRADERS = 32
"""Sub-graders of one multi grader."""


class StringCheckGrader(TemplatedInput):
    """1.0 if the comparison holds, else 0.0. `like`: reference is a substring of input;
    `ilike`: the same, case-insensitive."""

    type: Literal["string_check"] = "string_check"
    reference: str = Field(max_length=MAX_TEMPLATE_LENGTH, description="Template or literal.")
    operation: Literal["eq", "ne", "like", "ilike"]

    def score(self, sample_text: str, item: dict) -> float:
        got, ref = render(self.input, sample_text, item), render(self.reference, sample_text, item)
        match self.operation:
            case "eq":
                ok = got == ref
            case "ne":
                ok = got != ref
            case "like":
                ok = ref in got
            case "ilike":
                ok = ref.lower() in got.lower()
        return 1.0 if ok else 0.0


class TextSimilarityGrader(TemplatedInput):
    """A similarity metric between input and reference, in [0, 1]."""

    type: Literal["text_similarity"] = "text_similarity"
    reference: str = Field(max_length=MAX_TEMPLATE_LENGTH, description="Template or literal.")
    evaluation_metric: SimilarityMetric | Literal["cosine"]

    def score(self, sample_text: str, item: dict) -> float:
        got, ref = render(self.input, sample_text, item), render(self.reference, sample_text, item)
        if self.evaluation_metric == "cosine":
            from core.graders.embedding import ENCODERS, MAX_EMBED_TOKENS

            encoder = ENCODERS.get(self.tools().settings)
            cap = MAX_EMBED_TOKENS * 16  # characters: the encoder reads 256 tokens at most
            return min(1.0, max(0.0, encoder.cosine(got[:cap], ref[:cap])))
        return similarity(self.evaluation_metric, got, ref)


class RegexGrader(TemplatedInput):
    """Lathe extension: 1.0 if `pattern` is found in input (re.search semantics).

    Runs on the `regex` engine with a timeout (core.graders.budget), so a catastrophic
    pattern costs at most REGEX_TIMEOUT_S per sample and scores 0.0 instead of stalling a
    training run."""

    type: Literal["regex"] = "regex"
    pattern: str = Field(max_length=MAX_PATTERN_LENGTH)
    flags: str = Field("", pattern=r"^[imsx]*$", description="Letters: i, m, s, x.")
    _compiled: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _compile(self) -> RegexGrader:
        import regex

        flags = regex.VERSION0  # Python `re` syntax and semantics
        for letter in self.flags:
            flags |= {"i": regex.I, "m": regex.M, "s": regex.S, "x": regex.X}[letter]
        try:
            self._compiled = regex.compile(self.pattern, flags)
        except (regex.error, OverflowError, RecursionError) as exc:
            raise ValueError(f"invalid regex pattern: {exc}") from None
        return self

    def score(self, sample_text: str, item: dict) -> float:
        text = render(self.input, sample_text, item)[:MAX_REGEX_INPUT]
        try:
            return 1.0 if self._compiled.search(text, timeout=regex_timeout()) else 0.0
        except TimeoutError:
            regex_timed_out()
            return 0.0


class JsonSchemaGrader(TemplatedInput):
    """Lathe extension: 1.0 if input parses as JSON and validates against `schema`. Its
    regexes (`pattern`, `patternProperties`) run with timeouts (core.graders.schema); a
    sample whose validation times out or nests too deep scores 0.0."""

    type: Literal["json_schema"] = "json_schema"
    schema_: dict[str, Any] = Field(alias="schema", description="A JSON Schema (any draft).")
    _validator: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_schema(self) -> JsonSchemaGrader:
        self._validator = safe_validator(self.schema_)
        return self

    def score(self, sample_text: str, item: dict) -> float:
        text = render(self.input, sample_text, item)
        if len(text) > MAX_JSON_INPUT:
            return 0.0
        try:
            value = json.loads(text)
            return 1.0 if self._validator.is_valid(value) else 0.0
        except (ValueError, RecursionError, TimeoutError):
            return 0.0


class MultiGrader(GraderBase):
    """Combines named sub-graders with an arithmetic formula, e.g. `0.7 * exact + 0.3 * bleu`."""

    type: Literal["multi"] = "multi"
    graders: dict[str, Grader] = Field(min_length=1, max_length=MAX_SUB_GRADERS)
    calculate_output: str = Field(max_length=_formula.MAX_FORMULA_LENGTH)
    _tree: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _parse_formula(self) -> MultiGrader:
        for key in self.graders:
            if not key.isidentifier() or key in _formula.FUNCTIONS:
                raise ValueError(f"sub-grader key '{key}' must be an identifier, not a function")
        try:
            self._tree = _formula.parse_formula(self.calculate_output, set(self.graders))
        except _formula.FormulaError as exc:
            raise ValueError(f"calculate_output: {exc}") from None
        return self

    def item_keys(self) -> set[str]:
        return set().union(*(g.item_keys() for g in self.graders.values()))

    def score(self, sample_text: str, item: dict) -> float:
        return self.score_parts(sample_text, item)[0]

    def score_parts(self, sample_text: str, item: dict) -> tuple[float, dict[str, float]]:
        """(the formula's value, each sub-grader's score): the graders API reports both."""
        values = {}
        for key, grader in self.graders.items():
            check_deadline()
            values[key] = grader.score(sample_text, item)
        return _formula.evaluate(self._tree, values), values


class PythonGrader(GraderBase):
    """OpenAI's python grader: `source` defines `grade(sample, item) -> float`. Runs only in
    the operator's sandbox (core.graders.sandbox; LATHE_GRADER_PYTHON_SANDBOX), else the spec
    is refused (core.graders.check)."""

    type: Literal["python"] = "python"
    source: str = Field(max_length=MAX_TEMPLATE_LENGTH)
    image_tag: None = Field(
        None, description="Not supported: python graders run on the host's Python."
    )

    @field_validator("source")
    @classmethod
    def _defines_grade(cls, value: str) -> str:
        import ast

        try:
            tree = ast.parse(value)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise ValueError(f"source is not valid Python: {exc}") from None
        if not any(isinstance(n, ast.FunctionDef) and n.name == "grade" for n in tree.body):
            raise ValueError("source must define a top-level function grade(sample, item)")
        return value

    def score(self, sample_text: str, item: dict) -> float:
        from core.graders.sandbox import run_python_grader

        return run_python_grader(self.source, sample_text, item, self.tools().settings)


UNSUPPORTED_TYPES = frozenset({"endpoint"})
"""Grader types Lathe does not run."""


def _reject_unsupported(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") in UNSUPPORTED_TYPES:
        raise ValueError(f"grader type '{value['type']}' is not supported by Lathe")
    check_nesting(value)
    return value


Grader = Annotated[
    StringCheckGrader
    | TextSimilarityGrader
    | ScoreModelGrader
    | LabelModelGrader
    | PythonGrader
    | RegexGrader
    | JsonSchemaGrader
    | MultiGrader,
    Field(discriminator="type"),
    BeforeValidator(_reject_unsupported),
]
"""Any grader; use as a field type in job specs (e.g. `method.grpo.grader`)."""

MultiGrader.model_rebuild()
