"""Fine-tuning jobs: spec, state machine, service (API side) and runner (worker side)."""
