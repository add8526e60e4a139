"""Wire shapes of Lathe's evaluation reports (#17): the forgetting check on a job."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GeneralScore(BaseModel):
    loss: float = Field(description="Mean next-token loss on the general set's trained tokens.")
    token_accuracy: float = Field(description="Share of those tokens predicted exactly.")
    tokens: int


class ForgettingDelta(BaseModel):
    loss: float = Field(description="tuned − base: positive means the tuned model is worse.")
    token_accuracy: float = Field(description="tuned − base: negative means it forgot.")


class ForgettingReport(BaseModel):
    """`evaluation.forgetting_check`'s result: the general set scored before and after."""

    general_set: str = Field(description="'builtin', or the evaluation.general_file id.")
    examples: int
    base: GeneralScore = Field(description="The starting model (the base or the ft: parent).")
    tuned: GeneralScore
    delta: ForgettingDelta
    threshold: float = Field(description="evaluation.forgetting_threshold.")
    exceeded: bool = Field(description="delta.loss > threshold: the job warned in an event.")
