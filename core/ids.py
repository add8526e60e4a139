"""Object ids in OpenAI's shapes (`file-…`, `ftjob-…`, `ftevent-…`, `ftckpt_…`)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def new_id(prefix: str, n: int = 24) -> str:
    """`prefix` includes its separator: OpenAI mixes `-` (file-, ftjob-) and `_` (ftckpt_)."""
    return prefix + _random(n)


API_KEY_PREFIX = "tml-lathe-"
"""Why `tml-`: the tinker SDK refuses any key that does not start with it, while the openai
SDK takes any string; so one key, printed once, works unchanged with both. Keys issued
before (`sk-lathe-…`) keep working (api.gate)."""


def new_api_key() -> str:
    return API_KEY_PREFIX + _random(40)
