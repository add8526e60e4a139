"""Pieces every training method shares: tokenization, "auto" hyperparameters, callbacks."""
