"""The largest values a job spec may ask for: what one worker can run, in one place.

Each bound keeps a single request from exhausting a worker's memory or holding it for ever
(GRPO's `num_generations: 10**6` allocated 8 GB and died in `std::bad_alloc`; a `seed` above
2**63 overflowed the database column). A value outside them is a 400 naming the field's path
(`method.grpo.hyperparameters.num_generations`); the README's "Limits" lists them.
`max_seq_length` is further bounded by the base model's context at worker start
(core.training.auto.check_context).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

MAX_SEED = 2**32 - 1
"""Seeds feed numpy / transformers' `set_seed`, which take 0 .. 2**32 - 1."""
MAX_EPOCHS = 1000
"""Passes over the data, for every method."""
MAX_BATCH_SIZE = 1024
"""Examples (pairs, prompts, rollouts) per optimizer step; also gradient accumulation."""
MAX_SEQ_LENGTH = 131_072
"""Tokens per sequence, whatever the model; the model's own context bounds it further."""
MAX_STEPS = 1_000_000
"""Optimizer steps or policy updates (`total_steps`), and step intervals."""
MAX_NEW_TOKENS = 4096
"""Tokens sampled per completion in PPO and GRPO."""
MAX_NUM_GENERATIONS = 64
"""Completions per prompt in GRPO (each group is held in memory at once)."""
MAX_INNER_EPOCHS = 100
"""PPO epochs per rollout batch and GRPO iterations per generation batch."""
MAX_PATIENCE = 1000
"""Early-stopping patience, in evaluations."""
MAX_LEARNING_RATE = 10.0
"""An absolute learning rate (the defaults are 2e-5 to 3e-2)."""
MAX_TEMPERATURE = 100.0
"""Sampling temperature in PPO and GRPO."""
MAX_FACTOR = 1000.0
"""Multipliers and coefficients: learning_rate_multiplier, KL / value weights, betas."""
MAX_GPUS = 64
"""Devices (processes) one job trains on: one node's worth (core.runs.launch is single-node)."""
MAX_NODES = 64
"""Hosts one job spans on Ray (core.runs.ray_submit): resources.nodes."""
MAX_JSON_DEPTH = 64
"""Nesting of free-form objects in a spec (a grader, an integration): the spec is copied and
stored recursively, so a 1000-deep object would be a RecursionError, not a 400."""

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
"""A job's `metadata`, as OpenAI bounds it: 16 pairs, keys of 64 and values of 512 characters
(10,000 keys were accepted, stored and returned on every listing)."""

Auto = Literal["auto"]


def _bounded(low: float, high: float, open_low: bool = False) -> BeforeValidator:
    """Check the range before pydantic tries the union's members, so the error's path is the
    field's own (`...num_generations`), not `...num_generations.constrained-int`."""
    lowest = f"greater than {low}" if open_low else f"at least {low}"

    def check(value: Any) -> Any:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return value  # "auto", or a type error the union reports
        above = value > low if open_low else value >= low
        if not (above and value <= high):  # NaN fails both
            raise PydanticCustomError(
                "out_of_range",
                "Input should be {lowest} and at most {high} (Lathe's limit, see Limits)",
                {"lowest": lowest, "high": high},
            )
        return value

    return BeforeValidator(check)


def auto_int(low: int, high: int) -> Any:
    """An int in [low, high], or "auto"."""
    return Annotated[Annotated[int, Field(ge=low, le=high)] | Auto, _bounded(low, high)]


def auto_float(low: float, high: float, *, open_low: bool = False) -> Any:
    """A finite float in [low, high] (or (low, high] with `open_low`), or "auto"."""
    limit = Field(gt=low, le=high) if open_low else Field(ge=low, le=high)
    return Annotated[
        Annotated[float, limit, Field(allow_inf_nan=False)] | Auto,
        _bounded(low, high, open_low),
    ]


def bounded_int(low: int, high: int) -> Any:
    """An int in [low, high]."""
    return Annotated[int, Field(ge=low, le=high)]


def bounded_float(low: float, high: float, *, open_low: bool = False) -> Any:
    """A finite float in [low, high] (or (low, high])."""
    limit = Field(gt=low, le=high) if open_low else Field(ge=low, le=high)
    return Annotated[float, limit, Field(allow_inf_nan=False)]


def check_json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """`value` unchanged, or ValueError if its objects and arrays nest deeper than `limit`
    (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                raise ValueError(f"nests deeper than {limit} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return value


def metadata(pairs: int = MAX_METADATA_PAIRS) -> Any:
    """`metadata`'s type: string pairs within OpenAI's bounds, a 400 naming `metadata`.
    `pairs`: fewer for a sweep, whose trials carry two keys of their own."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # the dict type reports it
        if len(value) > pairs:
            raise PydanticCustomError(
                "metadata",
                "at most {pairs} key-value pairs (got {n})",
                {"pairs": pairs, "n": len(value)},
            )
        for key, item in value.items():
            if isinstance(key, str) and len(key) > MAX_METADATA_KEY:
                raise PydanticCustomError(
                    "metadata", "keys are at most {n} characters", {"n": MAX_METADATA_KEY}
                )
            if isinstance(item, str) and len(item) > MAX_METADATA_VALUE:
                raise PydanticCustomError(
                    "metadata", "values are at most {n} characters", {"n": MAX_METADATA_VALUE}
                )
        return value

    return Annotated[dict[str, str], BeforeValidator(check)]
