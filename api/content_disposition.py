"""`Content-Disposition: attachment` for any file name (RFC 6266 with RFC 5987's `filename*`).

A header value must be Latin-1, so `données-数据.jsonl` cannot go in `filename="…"`: it goes
UTF-8 percent-encoded in `filename*`, with an ASCII stand-in in `filename` for old clients.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote


def attachment(filename: str) -> str:
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9._ -]+", "_", fallback).strip() or "download"
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
