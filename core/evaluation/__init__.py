"""Evaluation beyond the job's own validation split (#17): the forgetting check on a general
set, benchmark evaluations through lm-eval, and the fairness report. The before/after
validation metrics every method computes live in core.training.evaluation."""
