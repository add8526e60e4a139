"""Hyperparameter sweeps: a search space over a job spec, trials run as ordinary jobs.

Importing this package registers the hook that advances a sweep when one of its trials
finishes (core.jobs.lifecycle): the API, the worker and the training process import it.
"""

from core.jobs import lifecycle
from core.sweeps.service import trial_finished

lifecycle.on_finished(trial_finished)
