"""A model's reference for drift: a bounded, reproducible sample of its job's training rows.

Rows are reservoir-sampled (fixed seed) from the whole training file, so a file sorted by
topic still gives a fair sample; only LATHE_DRIFT_REFERENCE_ROWS rows are ever held. Each row
becomes (prompt, completion) texts in the same shape traffic is summarised in
(samples.chat_prompt): the contents of the messages a request would send, and the answer.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.data.limits import ReadLimits
from core.data.readers import read_records
from core.data.report import Record
from core.drift.samples import chat_prompt
from core.persistence.models import File, Job, Model
from core.settings import Settings
from core.storage import Storage
from core.tempdirs import temp_root


@dataclass(frozen=True)
class Reference:
    file_id: str
    rows_read: int
    prompts: list[str]
    completions: list[str]


def training_file(session: Session, model: Model) -> File | None:
    """The training file of the job that made the model (None for base models)."""
    job = session.get(Job, model.job_id) if model.job_id else None
    return session.get(File, job.training_file) if job else None


def load_reference(storage: Storage, settings: Settings, file: File) -> Reference:
    """Sample the file's rows; rows whose shape has no prompt are skipped."""
    rng = random.Random(0)
    kept: list[tuple[str, str]] = []
    seen = 0
    with tempfile.TemporaryDirectory(prefix="lathe-drift-", dir=temp_root(settings)) as tmp:
        path = storage.download(file.storage_key, Path(tmp) / "rows")
        for row in read_records(path, file.filename, ReadLimits.from_settings(settings)):
            pair = split_row(row.data) if isinstance(row, Record) else None
            if pair is None:
                continue
            seen += 1
            if len(kept) < settings.drift.reference_rows:
                kept.append(pair)
            elif (j := rng.randrange(seen)) < settings.drift.reference_rows:
                kept[j] = pair
    return Reference(file.id, seen, [p for p, _ in kept], [c for _, c in kept])


def split_row(data: dict[str, Any]) -> tuple[str, str] | None:
    """(prompt, completion) of a training row in any of the accepted dataset shapes."""
    messages = data.get("messages")
    if isinstance(data.get("input"), dict):  # OpenAI preference rows
        messages = data["input"].get("messages")
    if isinstance(messages, list) and messages:
        asked = [m for m in messages if isinstance(m, dict)]
        answer = asked.pop() if asked and asked[-1].get("role") == "assistant" else {}
        return chat_prompt(asked), str(answer.get("content") or "")
    if isinstance(data.get("prompt"), str):
        answer = data.get("completion") or data.get("chosen") or ""
        return data["prompt"], answer if isinstance(answer, str) else ""
    if isinstance(data.get("instruction"), str):
        text = "\n".join(x for x in (data["instruction"], data.get("input")) if x)
        return text, str(data.get("output") or "")
    if isinstance(data.get("conversations"), list):
        turns = [t for t in data["conversations"] if isinstance(t, dict)]
        asked = [t.get("value") for t in turns if t.get("from") != "gpt"]
        answer = next((t.get("value") for t in reversed(turns) if t.get("from") == "gpt"), "")
        return "\n".join(str(a) for a in asked if a), str(answer or "")
    if isinstance(data.get("text"), str):
        return data["text"], ""
    return None
