"""Tinker sampling on vLLM vs on the trainer: sampled tokens/s of an RL-shaped batch (P prompts
posted at once, n samples each, as the cookbook's rl_loop does) through the `tinker` SDK, on
the same LoRA weights twice: saved by name (its sampler runs on the inference service's vLLM)
and as an unnamed snapshot (its sampler runs on the Tinker trainer, HF generate). Ratio =
vLLM / trainer tokens/s, from the same process against the same deployment.

Needs a Lathe whose inference service runs vLLM for `--base` (LATHE_VLLM_ENABLED=true) and a
Tinker trainer, e.g. the embedded default:

    LATHE_BASE_MODELS='{"tiny-llama-64": {"source": "builtin"}}' LATHE_VLLM_ENABLED=true \\
        lathe serve --port 8000 &
    .venv/bin/python bench/tinker_sampling.py --url http://127.0.0.1:8000 --key tml-lathe-...
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import Future


def run(sampler, prompts, n: int, tokens: int) -> float:
    """Seconds to sample every prompt (all posted at once, then all awaited)."""
    import tinker

    params = tinker.SamplingParams(max_tokens=tokens, stop=[], seed=1, temperature=1.0)
    start = time.perf_counter()
    futures: list[Future] = [sampler.sample(p, n, params) for p in prompts]
    for f in futures:
        assert all(len(s.tokens) == tokens for s in f.result().sequences)
    return time.perf_counter() - start


def main() -> None:
    import tinker

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--base", default="tiny-llama-64")
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()

    key = args.key if args.key.startswith("tml-") else "tml-" + args.key
    service = tinker.ServiceClient(base_url=args.url, api_key=key)
    client = service.create_lora_training_client(base_model=args.base, rank=8, seed=0).result()
    path = client.save_weights_for_sampler("bench").result().path
    on_vllm = service.create_sampling_client(model_path=path).result()
    on_trainer = client.save_weights_and_get_sampling_client().result()
    prompts = [tinker.ModelInput.from_ints(list(range(i, 32 + i))) for i in range(args.prompts)]
    run(on_vllm, prompts[:1], 1, 4), run(on_trainer, prompts[:1], 1, 4)  # warm-up: load both
    # alternating rounds, best of each: a loaded host slows whichever runs at a bad moment
    rounds = [
        (run(on_vllm, prompts, args.samples, args.tokens),
         run(on_trainer, prompts, args.samples, args.tokens))
        for _ in range(args.rounds)
    ]  # fmt: skip
    vllm_s, trainer_s = min(r[0] for r in rounds), min(r[1] for r in rounds)
    sampled = args.prompts * args.samples * args.tokens
    print(
        f"{args.prompts} prompts x {args.samples} samples x {args.tokens} tokens: "
        f"vLLM {sampled / vllm_s:8.0f} tok/s  trainer {sampled / trainer_s:8.0f} tok/s  "
        f"ratio {trainer_s / vllm_s:.2f}"
    )
    service.close("success").result()


if __name__ == "__main__":
    main()
