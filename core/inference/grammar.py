"""Constrained decoding with xgrammar: only tokens that keep the output valid JSON (or valid
against a JSON Schema) may be sampled. Compiled grammars are cached per tokenizer and schema,
since compiling is the expensive part and clients resend the same schema."""

from __future__ import annotations

import json
import threading
from typing import Any

from core.errors import InvalidRequest
from core.inference.params import Grammar


class GrammarCompilers:
    """One xgrammar compiler per tokenizer (built once), with its compiled grammars."""

    def __init__(self) -> None:
        self._compilers: dict[int, Any] = {}
        self._compiled: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()

    def compile(self, tokenizer: Any, vocab_size: int, grammar: Grammar) -> Any:
        import xgrammar as xgr

        key = (id(tokenizer), json.dumps(grammar.json_schema, sort_keys=True))
        with self._lock:
            if key in self._compiled:
                return self._compiled[key]
            compiler = self._compilers.get(id(tokenizer))
            if compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
                compiler = self._compilers[id(tokenizer)] = xgr.GrammarCompiler(info)
            try:
                # Compact JSON: with free whitespace an untrained model can pad forever.
                schema = grammar.json_schema if grammar.json_schema is not None else {}
                compiled = compiler.compile_json_schema(
                    json.dumps(schema or {"type": "object"}), any_whitespace=False
                )
            except Exception as exc:  # xgrammar reports an unusable schema as a RuntimeError
                raise InvalidRequest(
                    f"response_format.json_schema.schema cannot be used: {exc}",
                    param="response_format.json_schema.schema",
                ) from exc
            self._compiled[key] = compiled
            return compiled


class Matcher:
    """The grammar state of one generation: masks the logits, then advances by the token."""

    def __init__(self, compiled: Any, vocab_size: int):
        import xgrammar as xgr

        self._xgr = xgr
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.vocab_size = vocab_size

    def mask(self, logits: Any) -> None:
        """Set every token the grammar forbids to -inf, in place (`logits`: [vocab])."""
        self.matcher.fill_next_token_bitmask(self.bitmask)
        view = logits[: self.vocab_size].unsqueeze(0)
        self._xgr.apply_token_bitmask_inplace(view, self.bitmask)
        logits[self.vocab_size :] = float("-inf")

    def accept(self, token: int) -> None:
        self.matcher.accept_token(token)

    @property
    def done(self) -> bool:
        return self.matcher.is_terminated()
