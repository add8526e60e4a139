"""Sampling and scoring details: EOS masking, left padding, decoding."""

from __future__ import annotations

import torch

from core.rlhf.rollout import Samples, decode_completions, forward, mask_after_eos, sample


def test_mask_after_eos() -> None:
    ids = torch.tensor([[5, 1, 7, 1], [5, 6, 7, 8], [1, 4, 4, 4]])
    padded, mask, ended = mask_after_eos(ids, eos_ids=[1], pad_id=0)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert padded.tolist() == [[5, 1, 0, 0], [5, 6, 7, 8], [1, 0, 0, 0]]
    assert ended.tolist() == [True, False, True]


def _encode(tokenizer, text: str) -> torch.Tensor:
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_forward_is_padding_aware(base_model, tokenizer, chat_prompts) -> None:
    """A sequence scores the same alone and left-padded in a batch with a longer prompt."""
    short, long = _encode(tokenizer, chat_prompts[0]), _encode(tokenizer, chat_prompts[1])
    response = torch.tensor([[40, 41, 42, tokenizer.eos_token_id, 0]])
    response_mask = torch.tensor([[1, 1, 1, 1, 0]])
    pad = len(long) - len(short)
    batch = Samples(
        query_ids=torch.stack([torch.cat([torch.zeros(pad, dtype=torch.long), short]), long]),
        query_mask=torch.stack(
            [torch.cat([torch.zeros(pad), torch.ones(len(short))]), torch.ones(len(long))]
        ).long(),
        response_ids=response.repeat(2, 1),
        response_mask=response_mask.repeat(2, 1),
        ended=torch.tensor([True, True]),
    )
    alone = Samples(
        short[None],
        torch.ones(1, len(short), dtype=torch.long),
        response,
        response_mask,
        torch.tensor([True]),
    )
    with torch.no_grad():
        batched, _, _ = forward(base_model, batch, temperature=0.7)
        single, _, _ = forward(base_model, alone, temperature=0.7)
    torch.testing.assert_close(batched[0, :4], single[0, :4], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(batched[0], batched[1])  # the prompt matters


def test_sample_left_pads_and_masks(base_model, tokenizer, chat_prompts) -> None:
    tokenizer.padding_side = "right"
    torch.manual_seed(0)
    samples = sample(base_model, tokenizer, chat_prompts[:3], max_new_tokens=6, temperature=1.0)
    assert tokenizer.padding_side == "right"  # restored
    assert samples.query_mask[:, -1].all()  # left padding: every prompt ends at the same column
    assert samples.response_ids.shape[0] == 3 and samples.response_ids.shape[1] <= 6
    for ids, mask in zip(samples.response_ids, samples.response_mask, strict=True):
        eos = (ids == tokenizer.eos_token_id).nonzero()
        expected = int(eos[0]) + 1 if len(eos) else len(ids)
        assert int(mask.sum()) == expected


def test_decode_completions_stops_at_eos(tokenizer) -> None:
    words = _encode(tokenizer, "Paris is")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = torch.cat([words, torch.tensor([eos, pad])])[None]
    mask = torch.tensor([[1] * (len(words) + 1) + [0]])
    samples = Samples(
        torch.zeros(1, 1, dtype=torch.long),
        torch.ones(1, 1, dtype=torch.long),
        ids,
        mask,
        torch.tensor([True]),
    )
    assert decode_completions(tokenizer, samples) == ["Paris is"]
