"""Running a Batch API batch on a worker, one slice at a time.

A slice is the next `batch_slice` requests of the input file: each line is checked (JSON,
`custom_id`, `method`, `url` = the batch's endpoint, the body as the live endpoint validates
it, a model this organization may use), sent to the inference service marked `batch` (the
engine serves live requests first), `batch_concurrency` at a time, and its result written as
OpenAI's output or error line. The slice's lines are stored as one part before the batch's
progress moves past them; then the message goes back to the queue, so a training job or
another batch waiting behind gets its turn, and a worker that dies loses one slice at most
(the lease runs out and the reconciler enqueues the batch again). The last slice (or a
cancel) concatenates the parts into the output and error files.

The request bodies are validated with the live endpoints' own wire models
(core.inference.wire), so a batch line is accepted or refused exactly as the same request
sent live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from core import registry
from core.batches.service import DONE, parts_prefix
from core.errors import LatheError
from core.files import store_local_file
from core.ids import new_id
from core.inference.client import InferenceClient
from core.inference.errors import Overloaded
from core.persistence.batch_models import Batch
from core.persistence.db import session_scope
from core.persistence.models import utcnow
from core.settings import Settings
from core.storage import Storage, worker_storage
from core.tempdirs import temp_root

log = logging.getLogger("lathe.batches")

PATHS = {
    "/v1/chat/completions": "chat/completions",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}


def request_model(endpoint: str) -> type[BaseModel]:
    from core.inference.wire.chat import ChatRequest
    from core.inference.wire.completions import CompletionRequest
    from core.inference.wire.embeddings import EmbeddingRequest

    return {
        "/v1/chat/completions": ChatRequest,
        "/v1/completions": CompletionRequest,
        "/v1/embeddings": EmbeddingRequest,
    }[endpoint]


class LineError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def wire_body(endpoint: str, body: Any, settings: Settings) -> dict:
    """The request as the live endpoint would send it on, or LineError saying why not."""
    if not isinstance(body, dict):
        raise LineError("invalid_request", "body must be a JSON object")
    if body.get("stream"):
        raise LineError("invalid_request", "stream is not supported in a batch")
    try:
        request = request_model(endpoint).model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LineError("invalid_request", f"body.{where}: {first['msg']}") from None
    try:
        if endpoint == "/v1/embeddings":
            return {
                "model": request.model,
                "input": request.inputs(),
                "encoding_format": request.encoding_format,
                "dimensions": request.dimensions,
            }
        return request.body(settings.inference.max_stop_length)
    except LatheError as exc:
        raise LineError(exc.code or "invalid_request", f"{exc.param}: {exc.message}") from None


def parse_line(text: str, endpoint: str, settings: Settings) -> tuple[str, dict]:
    """(custom_id, wire body) of one input line; LineError (with the custom_id when known)."""
    try:
        item = json.loads(text)
    except ValueError as exc:
        raise LineError("invalid_json", f"not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise LineError("invalid_request", "a line is a JSON object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise LineError("missing_custom_id", "custom_id: a non-empty string is required")
    try:
        if item.get("method", "POST") != "POST":
            raise LineError("invalid_method", "method must be POST")
        if item.get("url") != endpoint:
            raise LineError(
                "invalid_url", f"url {item.get('url')!r} is not this batch's endpoint {endpoint}"
            )
        return custom_id, wire_body(endpoint, item.get("body"), settings)
    except LineError as exc:
        exc.custom_id = custom_id  # type: ignore[attr-defined]
        raise


def error_line(custom_id: str | None, code: str, message: str, response: dict | None = None):
    return {
        "id": new_id("batch_req_"),
        "custom_id": custom_id,
        "response": response,
        "error": {"code": code, "message": message},
    }


def output_line(custom_id: str, body: dict) -> dict:
    response = {"status_code": 200, "request_id": new_id("req_"), "body": body}
    return {"id": new_id("batch_req_"), "custom_id": custom_id, "response": response, "error": None}


async def send(client: InferenceClient, path: str, model: Any, wire: dict, tries: int = 6):
    """The inference service's answer; an engine that is full (503) is waited for: a batch
    has time, a live request does not."""
    for attempt in range(tries):
        try:
            return (await client.call(path, model, wire, batch=True)).json
        except Overloaded:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


async def run_requests(
    settings: Settings, endpoint: str, ready: list[tuple[int, str, Any, dict]]
) -> dict[int, tuple[bool, dict]]:
    """Each (line, custom_id, model row, wire body) sent, `batch_concurrency` at a time."""
    client = InferenceClient(settings)
    gate = asyncio.Semaphore(settings.batches.concurrency)
    out: dict[int, tuple[bool, dict]] = {}

    async def one(line: int, custom_id: str, model: Any, wire: dict) -> None:
        async with gate:
            try:
                body = await send(client, PATHS[endpoint], model, wire)
                out[line] = (True, output_line(custom_id, body))
            except LatheError as exc:
                error = {"message": exc.message, "type": exc.type, "param": exc.param,
                         "code": exc.code}  # fmt: skip
                response = {"status_code": exc.status_code, "request_id": new_id("req_"),
                            "body": {"error": error}}  # fmt: skip
                message = f"line {line}: {exc.message}"
                out[line] = (False, error_line(custom_id, exc.code or exc.type, message, response))

    try:
        await asyncio.gather(*(one(*r) for r in ready))
    finally:
        await client.aclose()
    return out


def input_path(settings: Settings, storage: Storage, org_id: str, file_id: str) -> Path:
    """The input file on this worker's disk, downloaded once for all of the batch's slices."""
    from core.persistence.models import File

    cache = settings.data_dir.resolve() / "batch_inputs"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{file_id}.jsonl"
    if not path.exists():
        with session_scope(settings.resolved_database_url) as session:
            key = session.get(File, file_id).storage_key  # type: ignore[union-attr]
        tmp = cache / f"{file_id}.{new_id('')}.part"
        storage.download(key, tmp)
        tmp.replace(path)
    return path


def read_slice(path: Path, start: int, count: int) -> list[tuple[int, str]]:
    """(physical line number, text) of requests start..start+count (blank lines skipped)."""
    out: list[tuple[int, str]] = []
    index = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            if index >= start:
                out.append((number, text))
                if len(out) == count:
                    break
            index += 1
    return out


def claim(settings: Settings, batch_id: str, at_line: int) -> dict | None:
    """Take the batch for one slice (its lease), or None: finished, moved past `at_line`
    (a duplicate message), or run by another worker now."""
    with session_scope(settings.resolved_database_url) as session:
        row = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
        now = utcnow()
        if row is None or row.status in DONE or row.next_line != at_line:
            return None
        if row.lease_until is not None and row.lease_until > now:
            return None  # a live worker runs it: this message is a duplicate
        if row.status == "validating":
            row.status, row.in_progress_at = "in_progress", now
        row.lease_until = now + timedelta(seconds=settings.jobs.lease_timeout_s)
        return {
            "org": row.organization_id,
            "endpoint": row.endpoint,
            "file": row.input_file_id,
            "start": row.next_line,
            "part": row.parts,
            "status": row.status,
            "total": row.total,
            "prefix": parts_prefix(row),
        }


def resolve_models(settings: Settings, org_id: str, names: set[str]) -> dict[str, Any]:
    """Model name → its row, or the LatheError a live request would get."""
    out: dict[str, Any] = {}
    with session_scope(settings.resolved_database_url) as session:
        for name in names:
            try:
                row = registry.get_usable_model(session, org_id, name)
                session.expunge(row)
                out[name] = row
            except LatheError as exc:
                out[name] = exc
    return out


def run_slice(settings: Settings, job: dict) -> list[tuple[bool, dict]]:
    """The results of the slice's lines, in order."""
    storage = worker_storage(settings)
    path = input_path(settings, storage, job["org"], job["file"])
    results: dict[int, tuple[bool, dict]] = {}
    parsed: list[tuple[int, str, dict]] = []
    for number, text in read_slice(path, job["start"], settings.batches.slice):
        try:
            custom_id, wire = parse_line(text, job["endpoint"], settings)
            parsed.append((number, custom_id, wire))
        except LineError as exc:
            cid = getattr(exc, "custom_id", None)
            results[number] = (False, error_line(cid, exc.code, f"line {number}: {exc}"))
    models = resolve_models(settings, job["org"], {w["model"] for _, _, w in parsed})
    ready = []
    for number, custom_id, wire in parsed:
        model = models[wire["model"]]
        if isinstance(model, LatheError):
            message = f"line {number}: body.model: {model.message}"
            results[number] = (
                False,
                error_line(custom_id, model.code or "invalid_request", message),
            )
        else:
            ready.append((number, custom_id, model, wire))
    results |= asyncio.run(run_requests(settings, job["endpoint"], ready))
    return [results[n] for n in sorted(results)]


def store_part(
    settings: Settings, storage: Storage, job: dict, results: list[tuple[bool, dict]]
) -> None:
    with tempfile.TemporaryDirectory(prefix="lathe-batch-", dir=temp_root(settings)) as tmp:
        path = Path(tmp) / "part.jsonl"
        with open(path, "w") as f:
            for ok, record in results:
                f.write(json.dumps({"ok": ok, "record": record}) + "\n")
        storage.put_file(f"{job['prefix']}/part-{job['part']:06d}.jsonl", path)


def record(settings: Settings, batch_id: str, job: dict, results: list) -> bool:
    """Move the batch past the stored slice; True when it is to be finalized."""
    with session_scope(settings.resolved_database_url) as session:
        row = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
        row.next_line = job["start"] + len(results)
        row.parts = job["part"] + 1
        row.completed += sum(ok for ok, _ in results)
        row.failed += sum(not ok for ok, _ in results)
        row.lease_until = None
        done = row.status == "cancelling" or not results or row.next_line >= row.total
        if not done:
            row.enqueued_at = utcnow()
        return done


def finalize(settings: Settings, batch_id: str) -> None:
    """The parts concatenated into OpenAI's output and error files; the parts deleted."""
    storage = worker_storage(settings)
    with session_scope(settings.resolved_database_url) as session:
        row = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
        cancelled = row.status == "cancelling"
        row.finalizing_at = utcnow()
        org, prefix, parts = row.organization_id, parts_prefix(row), row.parts
        with tempfile.TemporaryDirectory(prefix="lathe-batch-", dir=temp_root(settings)) as tmp:
            out_path = Path(tmp) / f"{batch_id}_output.jsonl"
            err_path = Path(tmp) / f"{batch_id}_error.jsonl"
            with open(out_path, "w") as out, open(err_path, "w") as err:
                for part in range(parts):
                    local = storage.download(f"{prefix}/part-{part:06d}.jsonl", Path(tmp) / "p")
                    for text in local.read_text().splitlines():
                        item = json.loads(text)
                        (out if item["ok"] else err).write(json.dumps(item["record"]) + "\n")
            if out_path.stat().st_size:
                row.output_file_id = store_local_file(
                    session, storage, org, out_path, "batch_output"
                ).id
            if err_path.stat().st_size:
                row.error_file_id = store_local_file(
                    session, storage, org, err_path, "batch_output"
                ).id
        now = utcnow()
        if cancelled:
            row.status, row.cancelled_at = "cancelled", now
        else:
            row.status, row.completed_at = "completed", now
        row.lease_until = None
    storage.delete_prefix(prefix)


def fail(settings: Settings, batch_id: str, message: str) -> None:
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Batch, batch_id)
        if row is not None and row.status not in DONE:
            row.status, row.failed_at, row.lease_until = "failed", utcnow(), None
            row.errors = {"object": "list", "data": [{"code": "batch_failed", "message": message}]}


def step(settings: Settings, batch_id: str, at_line: int) -> int | None:
    """One slice of the batch from request `at_line` (or its finalization); the line the
    next slice starts at, or None when there is none."""
    job = claim(settings, batch_id, at_line)
    if job is None:
        return None
    try:
        if job["status"] == "cancelling" or job["start"] >= job["total"]:
            finalize(settings, batch_id)
            return None
        results = run_slice(settings, job)
        store_part(settings, worker_storage(settings), job, results)
        if record(settings, batch_id, job, results):
            finalize(settings, batch_id)
            return None
        return job["start"] + len(results)
    except Exception as exc:  # the batch's own fault (its file is gone...): it fails alone
        log.exception("batch %s failed", batch_id)
        fail(settings, batch_id, f"{type(exc).__name__}: {exc}")
        return None
