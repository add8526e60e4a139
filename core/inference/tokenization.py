"""vLLM's tokenizer endpoints, answered from a Lathe model's own tokenizer (in the inference
service, where the tokenizers are loaded; the API process never imports transformers).

Shapes follow vLLM's `/tokenize`, `/detokenize` and `/tokenizer_info`, so clients written
for one vLLM server (lm-eval's `RemoteTokenizer`) work against any Lathe model: a
tokenize request holds either a `prompt` (text) or `messages` (rendered with the model's chat
template); tokenizer_info is the tokenizer's configuration (`init_kwargs`, as vLLM gives it)
with `tokenizer_class` and the chat template.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from core.data.tools import template_messages
from core.errors import InvalidRequest


def tokenize(tokenizer: Any, body: dict, max_model_len: int) -> dict:
    if body.get("messages") is not None:
        try:
            ids = tokenizer.apply_chat_template(
                template_messages(body["messages"]),
                add_generation_prompt=body.get("add_generation_prompt", True),
                continue_final_message=body.get("continue_final_message", False),
                tokenize=True,
                return_dict=True,
            )["input_ids"]
        except (ValueError, TemplateError) as exc:  # the template's own refusal
            raise InvalidRequest(
                f"the model's chat template cannot render these messages: {exc}",
                param="messages",
            ) from None
        if body.get("add_special_tokens") and tokenizer.bos_token_id is not None:
            ids = [tokenizer.bos_token_id, *ids]
    else:
        ids = tokenizer(body["prompt"], add_special_tokens=body.get("add_special_tokens", True))
        ids = ids["input_ids"]
    ids = [int(t) for t in ids]
    strs = tokenizer.convert_ids_to_tokens(ids) if body.get("return_token_strs") else None
    return {"count": len(ids), "max_model_len": max_model_len, "tokens": ids, "token_strs": strs}


def detokenize(tokenizer: Any, tokens: list[int]) -> dict:
    vocab = len(tokenizer)
    bad = next((t for t in tokens if not 0 <= t < vocab), None)
    if bad is not None:
        raise InvalidRequest(
            f"token id {bad} is outside the vocabulary (0..{vocab - 1})", param="tokens"
        )
    return {"prompt": tokenizer.decode(tokens)}


def tokenizer_info(tokenizer: Any) -> dict:
    config = {k: _plain(v) for k, v in (getattr(tokenizer, "init_kwargs", None) or {}).items()}
    for path_field in ("vocab_file", "merges_file", "tokenizer_file", "name_or_path"):
        config.pop(path_field, None)  # local paths of the service: nothing a client can use
    config["tokenizer_class"] = type(tokenizer).__name__
    if getattr(tokenizer, "chat_template", None):
        config["chat_template"] = tokenizer.chat_template
    return config


def _plain(value: Any) -> Any:
    """JSON for what tokenizers keep as objects (AddedToken → its text), as vLLM does."""
    if hasattr(value, "content"):
        return value.content
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
