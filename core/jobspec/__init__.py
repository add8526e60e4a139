"""The vocabulary every layer shares, on the floor so that every layer may import it.

- `job`: what a job asks for (`JobCreate`: model, files, method, adapter, data, ...), with the
  method blocks in `rlhf`, `rft` and `distill` and the numeric bounds in `bounds`;
- `recipe`: what a training method is handed and returns (`TrainingContext`, `TrainingResult`,
  the `Reporter` it talks to the job through, `SpecError`).
Nothing here imports from the layers above (jobs, methods, training, adapters, data).
"""
