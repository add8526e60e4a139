"""The inference service: its own process (`lathe inference`) that loads models and generates;
the API forwards chat and completions requests to it (core.inference.client)."""
