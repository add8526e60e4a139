"""Training integrations: a job's `integrations` entries log its per-step metrics and
hyperparameters to an experiment tracker, from the training process.

- `spec`: the accepted entries (OpenAI's `wandb`, Lathe's `mlflow`), checked when the job is
  created: one that cannot be honoured is a 400 naming `integrations.<i>...`;
- `trackers`: the loggers (Weights & Biases, offline without network; MLflow, any tracking URI);
- `tee`: a reporter that hands what the training loop reports to the trackers too.
"""
