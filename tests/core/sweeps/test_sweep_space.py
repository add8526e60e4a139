"""Drawing a sweep's trial points, and the median stopping rule, without any service."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from core.sweeps.pruning import should_stop
from core.sweeps.space import Range, Search, apply_point, trial_points


def test_grid_is_every_combination_in_a_fixed_order():
    points = trial_points({"n_epochs": [1, 2], "learning_rate": [1e-3, 1e-4]}, Search())
    assert points == [
        {"learning_rate": 1e-3, "n_epochs": 1},
        {"learning_rate": 1e-3, "n_epochs": 2},
        {"learning_rate": 1e-4, "n_epochs": 1},
        {"learning_rate": 1e-4, "n_epochs": 2},
    ]


def test_random_search_is_seeded_and_respects_ranges():
    space = {
        "learning_rate": Range(min=1e-6, max=1e-2, log=True),
        "warmup_ratio": Range(min=0.0, max=0.2),
        "adapter.r": Range(min=4, max=64),
        "batch_size": [2, 4],
    }
    search = Search(type="random", n_trials=64, seed=3)
    points = trial_points(space, search)
    assert points == trial_points(space, search)  # reproducible
    assert points != trial_points(space, Search(type="random", n_trials=64, seed=4))
    rates = [p["learning_rate"] for p in points]
    assert all(1e-6 <= r <= 1e-2 for r in rates)
    # log-uniform: about as many points in each decade (uniform would put ~90% in the last)
    last_decade = sum(r > 1e-3 for r in rates) / len(rates)
    assert 0.1 < last_decade < 0.45
    assert all(isinstance(p["adapter.r"], int) and 4 <= p["adapter.r"] <= 64 for p in points)
    assert all(0 <= p["warmup_ratio"] <= 0.2 for p in points)
    assert {p["batch_size"] for p in points} == {2, 4}


@pytest.mark.parametrize(
    ("space", "search", "param"),
    [
        ({"learning_rate": Range(min=1e-5, max=1e-3)}, Search(), "search_space.learning_rate"),
        ({"learning_rate": []}, Search(), "search_space.learning_rate"),
        ({"learning_rate": [[1, 2]]}, Search(), "search_space.learning_rate"),
        ({}, Search(), "search_space"),
        ({"a": list(range(9)), "b": list(range(9))}, Search(), "search_space"),
    ],
)
def test_bad_spaces_name_the_key(space, search, param):
    with pytest.raises(InvalidRequest) as exc:
        trial_points(space, search)
    assert exc.value.param == param


def test_ranges_and_searches_validate():
    with pytest.raises(ValueError):
        Range(min=1, max=1)
    with pytest.raises(ValueError):
        Range(min=0, max=1, log=True)
    with pytest.raises(ValueError):
        Search(type="random")
    with pytest.raises(ValueError):
        Search(type="grid", n_trials=3)


def test_apply_point_sets_hyperparameters_and_adapter_fields():
    spec = {"model": "m", "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1}}}}
    out = apply_point(spec, {"learning_rate": 1e-4, "adapter.r": 4})
    assert out["method"]["dpo"]["hyperparameters"] == {"beta": 0.1, "learning_rate": 1e-4}
    assert out["adapter"] == {"r": 4}


def test_median_rule_stops_only_clearly_worse_trials():
    good = [(1, 2.0), (2, 1.0), (3, 0.5)]
    fine = [(1, 2.2), (2, 1.2), (3, 0.7)]
    bad = [(1, 8.0), (2, 7.9)]
    assert should_stop(bad, [good, fine], "minimize", min_trials=2, warmup_steps=0)
    assert not should_stop(good, [fine, bad], "minimize", min_trials=2, warmup_steps=0)
    assert not should_stop(bad, [good], "minimize", min_trials=2, warmup_steps=0)  # too few
    assert not should_stop(bad, [good, fine], "minimize", min_trials=2, warmup_steps=5)
    # maximize: the same curves read as accuracies
    assert should_stop(good, [bad, [(1, 9.0), (2, 9.5)]], "maximize", 2, 0)
    # the others' values count only up to the trial's own step
    late = [(10, 0.1)]
    assert not should_stop([(1, 3.0)], [late, late], "minimize", 2, 0)
