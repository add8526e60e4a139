"""Lathe's layers point one way: entry points → services (jobs, runs, sweeps…) → methods →
the domain (training, adapters, data, inference…) → the foundation (spec, storage,
persistence, settings). No import cycles, counting imports inside functions."""

from __future__ import annotations

from tests.architecture.imports import cycles, graph

LAYERS: dict[str, int] = {
    # entry points: the HTTP API, the Celery worker, the client CLI, the inference service
    "api": 5,
    "worker": 5,
    "cli": 5,
    "serving": 5,
    # services: what the API and the worker do with jobs, files and models
    "core.jobs": 4,
    "core.runs": 4,
    "core.sweeps": 4,
    "core.cleanup": 4,
    "core.files": 4,
    "core.uploads": 4,
    "core.batches": 4,
    "core.drift": 4,
    "core.exports": 4,
    "core.bundles": 4,
    "core.admin": 4,
    "core.readiness": 4,
    "core.evals": 4,
    "core.tinker": 4,  # the Tinker-compatible training API: its futures and its trainer
    # training methods (recipes)
    "core.methods": 3,
    # the domain the methods are built from
    "core.training": 2,
    "core.adapters": 2,
    "core.data": 2,
    "core.inference": 2,
    "core.evaluation": 2,
    "core.graders": 2,
    "core.model_store": 2,
    "core.portable": 2,
    "core.rlhf": 2,
    "core.integrations": 2,
    "core.webhooks": 2,
    "core.registry": 2,
    "core.tiny_model": 2,
    "core.tiny_pretrain": 2,
    # the foundation every layer stands on
    "core": 1,
    "core.jobspec": 1,
    "core.storage": 1,
    "core.persistence": 1,
    "core.settings": 1,
    "core.errors": 1,
    "core.ids": 1,
    "core.process": 1,
    "core.retry": 1,
    "core.auth": 1,
    "core.permissions": 1,
    "core.ratelimit": 1,
    "core.logging_setup": 1,
    "core.observability": 1,
    "core.tempdirs": 1,
}
ABOVE_IN_LAYER = {"core.jobs": {"core.runs", "core.sweeps"}, "core.sweeps": {"core.runs"}}
"""Within the services layer, runs start sweeps' trials' jobs and sweeps create jobs: never
the other way round."""
ENTRY_ONLY = {"fastapi", "starlette", "celery", "uvicorn"}
"""Web and queue frameworks: entry points only (core stays importable without them)."""


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] != "core" or len(parts) == 1 else ".".join(parts[:2])


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_every_package_has_a_layer():
    unplaced = sorted({unit(m) for m in graph()} - LAYERS.keys())
    assert unplaced == [], f"add these to LAYERS in {__file__}"


def test_imports_point_down():
    wrong = []
    for module, targets in graph().items():
        source = unit(module)
        for target in targets:
            if target.split(".")[0] in ENTRY_ONLY and LAYERS.get(source, 5) < 5:
                wrong.append(f"{module} → {target}")
            dest = unit(target)
            if dest not in LAYERS or dest == source:
                continue
            if LAYERS[dest] > LAYERS[source] or dest in ABOVE_IN_LAYER.get(source, ()):
                wrong.append(f"{module} → {target}")
    assert wrong == []
