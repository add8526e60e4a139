"""The dataset dry-run report: what training would see in a file, before a GPU is spent.

Tokenizes with the base model's own tokenizer and chat template through the trainer's code
(`tokenize_example`), so token counts, trained-token masks and truncation are the job's, not
an approximation. It runs in the API process: transformers (and with it torch) is imported
by the first report, never at start-up.

Sequences: a job trains on one token sequence per example, except preference pairs, which
give two (prompt + chosen, prompt + rejected). Token statistics are per sequence.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from core.data import read_dataset, token_stats
from core.data.cleaning import example_key, near_duplicates_bounded
from core.data.examples import (
    Conversation,
    Example,
    LabeledText,
    PreferencePair,
    PromptExample,
    Segments,
    TextExample,
    TokenIds,
)
from core.data.formats import METHOD_FORMATS
from core.data.prepare import dropped_note, prepare
from core.errors import InvalidRequest
from core.jobspec import rlhf as rlhf_spec
from core.jobspec.job import DataOptions, SupervisedHyperparameters
from core.jobspec.recipe import SpecError
from core.jobspec.rft import ReinforcementHyperparameters
from core.persistence.models import File
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage
from core.tempdirs import temp_root
from core.training import auto
from core.training.tokenize import IGNORE, Tokenized, UnfaithfulRender, tokenize_example

PREVIEW_EXAMPLES = 3
MAX_PAIRS = 20
"""Duplicate pairs listed in full (all are counted)."""
NEAR_THRESHOLD = 0.9
MAX_NEAR_CANDIDATES = 1_000_000
"""Candidate pairs the near-duplicate search verifies at most (many near-identical examples
make every pair one: n**2)."""
DEFAULT_MAX_EXAMPLES = 20_000
"""Examples measured (tokenized, compared) at most; LATHE_DRY_RUN_MAX_EXAMPLES."""
UNLIMITED = sys.maxsize  # tokenize whole, then truncate here: stats count tokens before it


def load_tokenizer(path: Path) -> Any:
    """The tokenizer the trainer loads (core.adapters.load_for_training does the same)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def dry_run_file(
    settings: Settings,
    storage: Storage,
    row: File,
    *,
    base_model: str,
    method: str,
    n_epochs: int | str,
    max_seq_length: int | str,
    data: DataOptions,
    seed: int,
) -> dict[str, Any]:
    """The report for a stored file, as a job on `base_model` with `method` would see it."""
    if method not in METHOD_FORMATS or method not in _RESOLVERS:
        raise InvalidRequest(
            f"unknown method {method!r}; expected one of {', '.join(METHOD_FORMATS)}",
            param="method.type",
        )
    model_dir = base_model_path(settings, base_model)
    try:
        auto.check_context(max_seq_length, model_dir, "hyperparameters.max_seq_length")
    except SpecError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    with tempfile.TemporaryDirectory(prefix="lathe-dry-run-", dir=temp_root(settings)) as tmp:
        path = storage.download(row.storage_key, Path(tmp) / row.filename)
        return build_report(
            path,
            row.filename,
            lambda: load_tokenizer(model_dir),
            method=method,
            n_epochs=n_epochs,
            max_seq_length=max_seq_length,
            data=data,
            seed=seed,
            tokens_per_second=settings.datasets.train_tokens_per_second,
            max_examples=settings.datasets.dry_run_max_examples,
        )


def build_report(
    path: Path,
    filename: str,
    get_tokenizer: Callable[[], Any],
    *,
    method: str,
    n_epochs: int | str,
    max_seq_length: int | str,
    data: DataOptions,
    seed: int,
    tokens_per_second: float,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
) -> dict[str, Any]:
    """Validate the file as the worker will, then measure its valid examples; a file with
    errors still gets statistics for the rows that are fine. The whole file is validated,
    but only its first `max_examples` examples are kept and measured (the API process must
    not hold or tokenize a 5-million-line file): a note says so."""
    report, examples = read_dataset(
        path, filename, method=method, drop_empty=data.drop_empty, max_kept=max_examples
    )
    prepared = prepare(
        examples,
        None,
        validation_split=data.validation_split,
        dedupe=data.dedupe,
        seed=seed,
        test_split=data.test_split,
    )
    epochs, max_len = _schedule(method, n_epochs, max_seq_length, len(prepared.train), seed)
    tokenizer = get_tokenizer() if examples else None
    counts: dict[int, list[Counts]] = {}  # by id(example); token ids are not kept, only counts
    preview = []
    unfaithful: list[dict[str, Any]] = []  # valid rows this base model cannot train as written
    for i, ex in enumerate(examples):
        try:
            seqs = sequences(tokenizer, ex)
        except UnfaithfulRender as exc:
            unfaithful.append(
                {
                    "line": exc.line,
                    "field": exc.field,
                    "message": exc.message,
                    "code": "unfaithful_render",
                }
            )
            counts[id(ex)] = []
            continue
        counts[id(ex)] = [
            Counts(len(t.input_ids), _trained(t), _trained(t, max_len)) for _, t in seqs
        ]
        if i < PREVIEW_EXAMPLES:
            preview += [_preview(tokenizer, ex.line, kind, t, max_len) for kind, t in seqs]
    stats = _token_stats([c for ex in examples for c in counts[id(ex)]], max_len)
    per_epoch = sum(
        min(c.length, max_len) for ex in prepared.train for c in counts[id(ex)] if not c.skipped
    )
    duplicates, complete = _duplicates(examples)
    notes = [n.message for n in [dropped_note(report, "file")] if n]
    notes += [n.message for n in prepared.notes] + _bound_notes(report, examples, complete)
    return {
        "format": report.format.value if report.format else None,
        "shape": report.shape,
        "container": report.container,
        "method": method,
        "ok": report.ok and not unfaithful,
        "n_records": report.n_records,
        "n_examples": report.n_examples,
        "errors": [asdict(e) for e in report.errors] + unfaithful[:20],
        "error_count": report.error_count + len(unfaithful),
        "warnings": [asdict(w) for w in report.warnings],
        "warning_count": report.warning_count,
        "tokens": stats,
        "duplicates": duplicates,
        "data": {
            "n_dropped": report.n_dropped,
            "n_train": len(prepared.train),
            "n_validation": len(prepared.validation),
            "n_test": len(prepared.test),
            "notes": notes,
        },
        "estimate": {
            "n_epochs": epochs,
            "max_seq_length": max_len,
            "tokens_per_epoch": per_epoch,
            "trained_tokens": per_epoch * epochs,
            "tokens_per_second": tokens_per_second,
            "seconds": round(per_epoch * epochs / tokens_per_second, 1),
        },
        "preview": preview,
    }


def _bound_notes(report: Any, examples: list[Example], near_complete: bool) -> list[str]:
    """What the report left out to stay bounded."""
    notes = []
    if report.n_examples > len(examples):
        notes.append(
            f"Measured the first {len(examples)} of {report.n_examples} examples "
            "(LATHE_DRY_RUN_MAX_EXAMPLES): token statistics, duplicates, the split and the "
            "estimate are theirs; validation covered the whole file"
        )
    if not near_complete:
        notes.append(
            f"Near-duplicate search stopped after {MAX_NEAR_CANDIDATES} candidate pairs: "
            "'near' counts the pairs found until then"
        )
    return notes


_RESOLVERS: dict[str, tuple[type[BaseModel], Callable[..., dict[str, Any]]]] = {
    "supervised": (SupervisedHyperparameters, auto.resolve),
    "classification": (SupervisedHyperparameters, auto.resolve),
    "dpo": (rlhf_spec.DpoHyperparameters, partial(auto.resolve_preference, "dpo")),
    "reward_model": (
        rlhf_spec.RewardModelHyperparameters,
        partial(auto.resolve_preference, "reward_model"),
    ),
    "ppo": (rlhf_spec.PpoHyperparameters, partial(auto.resolve_online, "ppo")),
    "grpo": (rlhf_spec.GrpoHyperparameters, partial(auto.resolve_online, "grpo")),
    "reinforcement": (ReinforcementHyperparameters, partial(auto.resolve_online, "grpo")),
}


def _schedule(
    method: str, n_epochs: int | str, max_seq_length: int | str, n_train: int, seed: int
) -> tuple[int, int]:
    """n_epochs and max_seq_length as the method's trainer resolves them (core.training.auto),
    the values checked by the method's own hyperparameter schema."""
    schema, resolver = _RESOLVERS[method]
    try:
        hp = schema(n_epochs=n_epochs, max_seq_length=max_seq_length)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        raise InvalidRequest(
            f"invalid hyperparameters.{name} for method {method!r}: {exc.errors()[0]['msg']}",
            param=f"hyperparameters.{name}",
        ) from exc
    resolved = resolver(hp, n_train, "lora", seed)
    return resolved["n_epochs"], resolved["max_seq_length"]


def sequences(tokenizer: Any, example: Example) -> list[tuple[str, Tokenized]]:
    """The (kind, untruncated tokens) a job trains on for one example."""
    if isinstance(example, Conversation | TextExample | TokenIds | Segments):
        return [("example", tokenize_example(tokenizer, example, UNLIMITED))]
    if isinstance(example, PreferencePair):
        return [
            (kind, tokenize_example(tokenizer, Conversation(example.prompt + reply), UNLIMITED))
            for kind, reply in (("chosen", example.chosen), ("rejected", example.rejected))
        ]
    if isinstance(example, PromptExample):  # online RL: the policy writes the answer
        text = tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in example.prompt],
            tokenize=False,
            add_generation_prompt=True,
        )
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return [("prompt", Tokenized(ids, [IGNORE] * len(ids), False))]
    if isinstance(example, LabeledText):  # a classifier reads every token
        ids = tokenizer(example.text, example.text_pair)["input_ids"]
        return [("text", Tokenized(ids, list(ids), False))]
    raise TypeError(f"not an example: {type(example).__name__}")


def _trained(tok: Tokenized, limit: int | None = None) -> int:
    return sum(1 for label in tok.labels[:limit] if label != IGNORE)


@dataclass(frozen=True)
class Counts:
    """One sequence, measured: its tokens, its trained tokens, and those within max_seq_length."""

    length: int
    trained: int
    kept_trained: int

    @property
    def skipped(self) -> bool:
        """Trained tokens exist but all lie past max_seq_length: the trainer drops it."""
        return self.trained > 0 and self.kept_trained == 0


def _token_stats(flat: list[Counts], max_len: int) -> dict[str, Any]:
    stats = token_stats([c.length for c in flat], [c.trained for c in flat], max_len)
    stats["n_sequences"] = stats.pop("n_examples")
    stats["n_skipped"] = sum(c.skipped for c in flat)
    return stats


def _duplicates(examples: list[Example]) -> tuple[dict[str, Any], bool]:
    """Exact duplicates (line, duplicate_of) and near duplicates that are not exact ones
    (character 5-gram Jaccard >= NEAR_THRESHOLD), found before any split; and whether the
    near search was complete (it stops past MAX_NEAR_CANDIDATES candidate pairs).

    The search runs over distinct examples only (a thousand copies of one row would make a
    million candidates), then each similar pair of distinct rows stands for every pair of
    their copies, as if all had been compared."""
    groups: dict[str, list[int]] = {}  # key -> indices of its copies, in file order
    exact = []
    for index, ex in enumerate(examples):
        copies = groups.setdefault(example_key(ex), [])
        if copies:
            exact.append({"line": ex.line, "duplicate_of": examples[copies[0]].line})
        copies.append(index)
    distinct = list(groups.values())
    found, complete = near_duplicates_bounded(
        [examples[g[0]] for g in distinct], NEAR_THRESHOLD, MAX_NEAR_CANDIDATES
    )
    pairs: list[tuple[int, int]] = []
    count = 0
    for a, b in found:
        lines_a = Counter(examples[i].line for i in distinct[a])
        lines_b = Counter(examples[j].line for j in distinct[b])
        # every copy pair, less those on one line (a ranked row's own pairs)
        count += len(distinct[a]) * len(distinct[b])
        count -= sum(n * lines_b[line] for line, n in lines_a.items())
        # the first MAX_PAIRS pairs in file order are among the groups' first MAX_PAIRS
        pairs += [
            (min(i, j), max(i, j))
            for i in distinct[a][:MAX_PAIRS]
            for j in distinct[b][:MAX_PAIRS]
            if examples[i].line != examples[j].line
        ]
    near = [
        {"line": examples[j].line, "similar_to": examples[i].line}
        for i, j in sorted(pairs)[:MAX_PAIRS]
    ]
    report = {
        "exact": len(exact),
        "exact_pairs": exact[:MAX_PAIRS],
        "near": count,
        "near_pairs": near[:MAX_PAIRS],
        "near_threshold": NEAR_THRESHOLD,
    }
    return report, complete


def _preview(tokenizer: Any, line: int, kind: str, tok: Tokenized, max_len: int) -> dict:
    """The sequence as the trainer gets it (truncated), cut into runs of trained and
    untrained tokens, each decoded back to text."""
    pairs = list(zip(tok.input_ids[:max_len], tok.labels[:max_len], strict=True))
    segments = [
        {
            "text": tokenizer.decode(
                [i for i, _ in run], skip_special_tokens=False, clean_up_tokenization_spaces=False
            ),
            "trained": trained,
        }
        for trained, run in (
            (t, list(r)) for t, r in itertools.groupby(pairs, key=lambda p: p[1] != IGNORE)
        )
    ]
    return {
        "line": line,
        "sequence": kind,
        "n_tokens": len(tok.input_ids),
        "n_trained": _trained(tok, max_len),
        "truncated": len(tok.input_ids) > max_len,
        "segments": segments,
    }
