"""A Tinker-compatible training API (issue 22): the wire codec, request validation, the
futures and the trainer that holds LoRA training clients in memory.

`codec` and `service` are imported by the API process and never import torch; `losses`,
`lora_pool`, `sampler` and `trainer` run on a worker."""
