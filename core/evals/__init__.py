"""OpenAI's Evals API on Lathe: evals (an item schema and testing criteria), runs over a
data source, and each row's output item.

    spec      request bodies as the `openai` SDK sends them
    criteria  testing criteria → core.graders graders with pass thresholds
    sources   a run's rows: read, checked (400s naming the row), turned into prompts
    service   the API side: create/read/update/cancel/delete, per organization
    execute   the worker side: sample, grade, store; resumable, cancellable
    reconcile runs to offer a worker again (lost messages, dead workers)
    gate      eval-gated fine-tuning: a job's evals on its kept checkpoints
"""
