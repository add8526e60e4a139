"""OpenAI's Batch API: batches of chat, completion and embedding requests from an uploaded
JSONL file, run on workers at a lower priority than live requests (core.batches.service: the
API side; worker.batches: the run)."""
