"""OpenAI's request shapes for the inference endpoints (chat, completions, embeddings),
validated the same wherever a request comes from: the live API routes and the Batch API's
worker. Pydantic only: no FastAPI, no torch."""
