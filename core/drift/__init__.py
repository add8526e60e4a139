"""Drift monitoring for served models (#17): is live traffic moving away from what a model
was trained on?

An organization opts in (`POST /v1/organization/drift`); from then on each successful chat or
text completion it sends to a fine-tuned model is summarised into a `DriftSample` (the prompt,
cut short, and its length and token counts: samples.py). Nothing is embedded on the request
path: `GET /v1/models/{id}/drift` (report.py) embeds the recent prompts and a bounded sample of
the model's training rows (reference.py) and compares them (score.py).
"""
