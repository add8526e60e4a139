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


def new_api_key() -> str:
    return "sk-lathe-" + _random(40)
