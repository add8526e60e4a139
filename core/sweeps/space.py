"""A sweep's search space and how its trials' parameters are drawn from it.

    "search_space": {"learning_rate": {"min": 1e-5, "max": 1e-2, "log": true},
                     "n_epochs": [2, 4], "adapter.r": [8, 16]},
    "search": {"type": "random", "n_trials": 8, "seed": 0}

A key names a hyperparameter of the job's method block (`method.<type>.hyperparameters.<key>`)
or, as `adapter.<field>`, a field of the adapter. A value is a list of choices, a range
`{"min", "max"}` (uniform; integers when both ends are) or a log-uniform range (`"log": true`,
as Bergstra & Bengio 2012 recommend for rates). `grid` takes every combination of lists;
`random` draws `n_trials` points with its own seed, so a sweep is reproducible.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import InvalidRequest

MAX_TRIALS = 64
"""Each trial is a whole fine-tuning job: more than this is a mistake, not a search."""


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float
    max: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.min < self.max:
            raise ValueError("min must be below max")
        if self.log and self.min <= 0:
            raise ValueError("a log range needs min > 0")
        return self

    @property
    def integer(self) -> bool:
        return float(self.min).is_integer() and float(self.max).is_integer() and not self.log


Values = list[Any] | Range


class Search(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["grid", "random"] = "grid"
    n_trials: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="random: how many points to draw."
    )
    seed: int = Field(0, description="random: the sampler's seed.")

    @model_validator(mode="after")
    def _trials(self) -> Search:
        if self.type == "random" and self.n_trials is None:
            raise ValueError("random search needs n_trials")
        if self.type == "grid" and self.n_trials is not None:
            raise ValueError("n_trials applies to random search; a grid tries every combination")
        return self


def _check_lists(space: dict[str, Values], search: Search) -> None:
    for key, values in space.items():
        param = f"search_space.{key}"
        if isinstance(values, list) and not values:
            raise InvalidRequest("give at least one value", param=param)
        if isinstance(values, list) and any(isinstance(v, (dict, list)) for v in values):
            raise InvalidRequest("choices must be numbers, strings or booleans", param=param)
        if search.type == "grid" and isinstance(values, Range):
            raise InvalidRequest(
                "a grid needs a list of values; ranges need search.type 'random'", param=param
            )


def _draw(rng: random.Random, values: Values) -> Any:
    if isinstance(values, list):
        return rng.choice(values)
    if values.log:
        return math.exp(rng.uniform(math.log(values.min), math.log(values.max)))
    if values.integer:
        return rng.randint(int(values.min), int(values.max))
    return rng.uniform(values.min, values.max)


def trial_points(space: dict[str, Values], search: Search) -> list[dict[str, Any]]:
    """Every trial's parameters, in the order the trials run."""
    if not space:
        raise InvalidRequest("give at least one parameter to search over", param="search_space")
    _check_lists(space, search)
    keys = sorted(space)
    if search.type == "random":
        rng = random.Random(search.seed)
        return [{k: _draw(rng, space[k]) for k in keys} for _ in range(search.n_trials or 0)]
    n = math.prod(len(space[k]) for k in keys)  # type: ignore[arg-type]
    if n > MAX_TRIALS:
        raise InvalidRequest(
            f"the grid has {n} combinations, more than {MAX_TRIALS} trials", param="search_space"
        )
    combos = itertools.product(*(space[k] for k in keys))  # type: ignore[misc]
    return [dict(zip(keys, combo, strict=True)) for combo in combos]


def apply_point(spec: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A job body (JobCreate dump) with the point's values set in it."""
    method = spec.setdefault("method", {"type": "supervised"})
    kind = method.setdefault("type", "supervised")
    block = method.setdefault(kind, {}) or {}
    method[kind] = block
    hp = block.setdefault("hyperparameters", {})
    for key, value in point.items():
        if key.startswith("adapter."):
            spec.setdefault("adapter", {})[key.removeprefix("adapter.")] = value
        else:
            hp[key] = value
    return spec
