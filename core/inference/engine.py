"""Generation (chat and completions) for base and fine-tuned models, in-process.

Generation is serialised by one lock: seeded sampling uses torch's global RNG, and on a CPU
host concurrent generations only compete for the same cores. Production GPU serving would
put a dedicated server (vLLM) behind the same interface.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidRequest
from core.inference.cache import ModelCache
from core.inference.classifier import Classification
from core.inference.scoring import ScoreInput
from core.model_store import ModelStore, StoredModel
from core.persistence.models import Model
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage


@dataclass
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] | None = None
    seed: int | None = None


@dataclass
class Generation:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Loaded:
    model: Any
    tokenizer: Any


class InferenceEngine:
    def __init__(self, settings: Settings, storage: Storage):
        self.settings = settings
        self.storage = storage
        self.cache = ModelCache(settings.inference_cache_size)
        self.store = ModelStore(settings, storage)
        self._generate_lock = threading.Lock()

    def _load(self, row: Model) -> Loaded:
        return Loaded(*self.store.load(StoredModel.of(row)))

    def loaded(self, row: Model) -> Loaded:
        return self.cache.get_or_load(row.id, lambda: self._load(row), pin=row.kind == "base")

    def task(self, row: Model) -> str:
        """What the model does, read from its files (so checkpoints answer too): "causal_lm"
        (generates), "classification", "reward_model" (scores), or "encoder" (a base model
        that does not generate: it is fine-tuned into a classifier)."""
        import json

        stored = StoredModel.of(row)
        if stored.artifact_key is None:
            config = base_model_path(self.settings, row.base_model) / "config.json"
            archs = json.loads(config.read_text()).get("architectures") or []
            generates = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
            return "causal_lm" if generates else "encoder"
        manifest = self.store.artifact_dir(stored) / "lathe_adapter.json"
        if not manifest.exists():  # an adapter made elsewhere: served as a causal LM
            return "causal_lm"
        info = json.loads(manifest.read_text())
        if info.get("task") != "seq_cls":
            return "causal_lm"
        return "reward_model" if info.get("num_labels") == 1 else "classification"

    def require_task(self, row: Model, wanted: str) -> None:
        """InvalidRequest (400) naming what the model does instead, when it cannot do `wanted`."""
        task = self.task(row)
        if task == wanted:
            return
        does = {
            "causal_lm": "generates text (POST /v1/chat/completions, /v1/completions)",
            "classification": "classifies text (POST /v1/classifications)",
            "reward_model": "scores text (POST /v1/rewards)",
            "encoder": "is an encoder base model: fine-tune it with method.type "
            "'classification' to classify text",
        }[task]
        wants = {
            "causal_lm": "generate text",
            "classification": "classify text",
            "reward_model": "score text",
        }[wanted]
        raise InvalidRequest(
            f"{row.id} cannot {wants}: it {does}", param="model", code="model_not_supported"
        )

    def classify(self, row: Model, texts: list[str]) -> tuple[list[Classification], int]:
        """Labels and class probabilities for `texts`, and the tokens read."""
        from core.inference.classifier import classify

        lm = self.loaded(row)
        with self._generate_lock:  # one forward pass at a time, as for generation
            return classify(lm.model, lm.tokenizer, texts)

    def score(self, row: Model, items: list[ScoreInput]) -> tuple[list[float], int]:
        """Reward-model scores for `items` (conversations or strings), and the tokens read."""
        from core.inference.scoring import RewardScorer

        lm = self.loaded(row)
        scorer = RewardScorer(lm.model, lm.tokenizer)
        with self._generate_lock:  # one forward pass at a time, as for generation
            return scorer.score(items), scorer.count_tokens(items)

    def chat_prompt(self, row: Model, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the conversation rendered with the model's chat template, ending where
        the assistant's reply begins (the template supplies any BOS itself)."""
        tok = self.loaded(row).tokenizer
        rendered = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return list(rendered["input_ids"])

    def text_prompt(self, row: Model, text: str) -> list[int]:
        """Token ids of raw text, with the BOS the tokenizer adds (not twice, when the text is a
        rendered template that already starts with it). Empty text starts from BOS, or from
        EOS as a document boundary, as OpenAI's models start from <|endoftext|>."""
        tok = self.loaded(row).tokenizer
        bos = tok.bos_token
        ids = list(tok(text, add_special_tokens=not (bos and text.startswith(bos)))["input_ids"])
        if not ids:
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            ids = [start] if start is not None else []
        if not ids:
            raise InvalidRequest("prompt must not be empty for this model", param="prompt")
        return ids

    def generate(self, row: Model, input_ids: list[int], params: GenerationParams) -> Generation:
        final = list(self.stream_generate(row, input_ids, params))[-1]
        assert isinstance(final, Generation)
        return final

    def stream_generate(
        self, row: Model, input_ids: list[int], params: GenerationParams
    ) -> Iterator[str | Generation]:
        """The one generation path (chat and completions): continues `input_ids`, yielding
        text deltas, then one `Generation` with the whole text and usage."""
        import torch
        from transformers import TextIteratorStreamer

        lm = self.loaded(row)
        tok = lm.tokenizer
        ids = torch.tensor([input_ids], device=getattr(lm.model, "device", "cpu"))
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        kwargs: dict[str, Any] = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=params.max_tokens,
            streamer=streamer,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False)
        if params.stop:
            kwargs.update(stop_strings=params.stop, tokenizer=tok)
        out: dict[str, Any] = {}

        def work() -> None:
            with self._generate_lock, torch.inference_mode():
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                out["ids"] = lm.model.generate(**kwargs)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from _stop_aware(streamer, params.stop)
        thread.join()
        n_prompt = len(input_ids)
        new = out["ids"][0, n_prompt:]
        text = _cut(tok.decode(new, skip_special_tokens=True), params.stop)
        hit_eos = tok.eos_token_id in new.tolist() or _stopped(tok.decode(new), params.stop)
        yield Generation(
            text=text,
            finish_reason="stop" if hit_eos or len(new) < params.max_tokens else "length",
            prompt_tokens=n_prompt,
            completion_tokens=len(new),
        )


def _cut(text: str, stop: list[str] | None) -> str:
    """OpenAI never returns the stop sequence itself."""
    for s in stop or []:
        i = text.find(s)
        if i >= 0:
            text = text[:i]
    return text


def _stopped(text: str, stop: list[str] | None) -> bool:
    return any(s in text for s in stop or [])


def _stop_aware(chunks: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    """Stream deltas, holding back text that might be the start of a stop sequence."""
    hold = max((len(s) for s in stop or []), default=1) - 1
    sent, buffer = 0, ""
    for chunk in chunks:
        buffer += chunk
        cut = _cut(buffer, stop)
        if len(cut) < len(buffer):  # a stop sequence appeared
            if cut[sent:]:
                yield cut[sent:]
            for _ in chunks:  # drain the streamer so the generating thread finishes
                pass
            return
        safe = len(buffer) - hold
        if safe > sent:
            yield buffer[sent:safe]
            sent = safe
    if buffer[sent:]:
        yield buffer[sent:]


def now() -> int:
    return int(time.time())
