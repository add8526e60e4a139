"""Serving base and fine-tuned models: an explicit model cache and chat generation."""
