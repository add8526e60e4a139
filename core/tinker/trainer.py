"""The trainer process: claims training clients from Postgres, holds them in a `LoraPool`,
applies each client's requests in `seq_id` order and writes results into the request rows.

Why one process per worker: gradients accumulate in memory between forward_backward
and optim_step, so a client must stay on the process that holds its adapter for its whole
life; a lease (renewed every lease_s/3) lets the API notice a dead trainer and fail that
client's futures instead of leaving the SDK polling forever. Chunks of one batch are posted in
parallel (first chunk last), so a gap in seq_ids is waited for briefly before being skipped.

Nothing on a request's path waits on a clock: the API's NOTIFY of a new request wakes an idle
trainer, the trainer applies a client's queued requests back to back (a forward_backward and
the optim_step the SDK pipelines behind it), and each result's NOTIFY wakes the API's
long-poll for it (core.tinker.wakeups). IDLE_WAKE_S only paces housekeeping when idle.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import LatheError
from core.persistence.db import session_scope
from core.persistence.models import utcnow
from core.persistence.tinker_models import (
    TinkerCheckpoint,
    TinkerModel,
    TinkerRequest,
    TinkerSampler,
    TinkerSession,
)
from core.settings import Settings
from core.storage import get_storage
from core.tempdirs import temp_root
from core.tinker import codec, engine, sampler, wakeups
from core.tinker.lora_pool import LoraPool
from core.tinker.paths import check_name, make_path, storage_key

log = logging.getLogger("lathe.tinker")
GAP_WAIT_S = 2.0
IDLE_WAKE_S = 0.5
RUN_MAX = 8
"""Consecutive requests of one client applied in one pass, before the others get a turn."""
EPHEMERAL_TTL_S = 3600


class Pending(NamedTuple):
    """A request taken for this pass, as read in the pass's transaction."""

    id: str
    kind: str
    body: bytes
    model_id: str | None
    seq_id: int
    sampler_id: str | None
    org: str


class Trainer:
    def __init__(self, settings: Settings, device: str = "cpu") -> None:
        self.settings = settings
        self.url = settings.resolved_database_url
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.pool = LoraPool(settings, device)
        self.storage = get_storage(settings)
        self._renewed = 0.0
        self._listener: Any = None

    # --- the loop ---

    def run(self, stop: Any = None) -> None:
        import peft  # noqa: F401  (imported before "ready": the first request is not slower)
        import transformers  # noqa: F401

        threading.Thread(target=self._renew_leases, daemon=True).start()
        log.info("tinker trainer %s ready", self.name)
        print("tinker trainer ready", flush=True)
        while stop is None or not stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("trainer pass failed")
                busy = False
            if not busy:
                self._wait(IDLE_WAKE_S)

    def _wait(self, timeout: float) -> None:
        """Until the API announces a request (core.tinker.wakeups) or `timeout`: an idle
        trainer makes two passes a second instead of polling hard (SQLite: polls at 20 Hz)."""
        if self._listener is None:
            self._listener = wakeups.listen(self.url, wakeups.NEW_CHANNEL) or False
        if not self._listener:
            time.sleep(0.05)
            return
        try:
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except Exception:
            log.exception("LISTEN connection lost; reconnecting")
            self._listener = None

    def step(self) -> bool:
        """One pass: claim new clients and take the runnable requests in one transaction,
        then apply them (each result is its own short transaction)."""
        self._housekeeping()
        with session_scope(self.url) as db:
            claimed = self._claim(db)
            todo = self._next_requests(db)
        for req in todo:
            self._apply(req)
        return claimed or bool(todo)

    def _renew_leases(self) -> None:
        """In a thread of its own, so a long request never lets a live client's lease lapse:
        a lapsed lease means this process is gone."""
        while True:
            try:
                until = utcnow() + timedelta(seconds=self.settings.tinker.lease_s)
                with session_scope(self.url) as db:
                    db.execute(
                        update(TinkerModel)
                        .where(
                            TinkerModel.worker == self.name,
                            TinkerModel.status.in_(("pending", "ready")),
                        )
                        .values(lease_until=until)
                    )
            except Exception:
                log.exception("lease renewal failed")
            time.sleep(self.settings.tinker.lease_s / 3)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._renewed < self.settings.tinker.lease_s / 3:
            return
        self._renewed = now
        idle = utcnow() - timedelta(seconds=self.settings.tinker.session_idle_s)
        with session_scope(self.url) as db:
            for m in db.scalars(select(TinkerModel).where(TinkerModel.worker == self.name)):
                sess = db.get(TinkerSession, m.session_id)
                if (
                    m.status in ("pending", "ready")
                    and sess is not None
                    and sess.heartbeat_at < idle
                ):
                    m.status = "released"
                    m.error = (
                        f"released after {self.settings.tinker.session_idle_s:.0f} s without a "
                        "session heartbeat; its unsaved weights are gone"
                    )
                if m.status not in ("pending", "ready") and m.id in self.pool.clients:
                    self.pool.drop(m.id)

    def _claim(self, db: Session) -> bool:
        """Pending clients on a base this trainer's settings configure: trainers on different
        hosts may serve different bases, and one could not load another's."""
        room = self.settings.tinker.trainer_capacity - len(self.pool.clients)
        if room <= 0:
            return False
        until = utcnow() + timedelta(seconds=self.settings.tinker.lease_s)
        rows = db.scalars(
            select(TinkerModel)
            .where(
                TinkerModel.status == "pending",
                TinkerModel.worker.is_(None),
                TinkerModel.base_model.in_(list(self.settings.base_models)),
            )
            .limit(room)
            .with_for_update(skip_locked=True)
        ).all()
        for m in rows:
            m.worker, m.lease_until = self.name, until
        db.flush()  # the request query below joins on the claim
        return bool(rows)

    def _next_requests(self, db: Session) -> list[Pending]:
        """Per held client the lowest pending seq_id if it is next (or waited for long
        enough) and the consecutive seq_ids queued behind it (up to RUN_MAX), then pending
        samples on a base this trainer serves; bodies are read only for those."""
        now = utcnow()
        rows = db.execute(
            select(
                TinkerRequest.id,
                TinkerRequest.model_id,
                TinkerRequest.seq_id,
                TinkerRequest.created_at,
                TinkerModel.applied_seq,
            )
            .join(TinkerModel, TinkerModel.id == TinkerRequest.model_id)
            .where(TinkerRequest.status == "pending", TinkerModel.worker == self.name)
            .order_by(TinkerRequest.model_id, TinkerRequest.seq_id)
        ).all()
        ids: list[str] = []
        runs: dict[str, list[int]] = {}  # model -> seq_ids taken (empty: blocked by a gap)
        for rid, mid, seq, created, applied in rows:
            run = runs.get(mid)
            if run is None:
                waited = (now - created).total_seconds()
                ok = seq == 0 or seq <= applied + 1 or waited > GAP_WAIT_S
                runs[mid] = [seq] if ok else []
            elif run and seq == run[-1] + 1 and len(run) < RUN_MAX:
                run.append(seq)
            else:
                continue
            if runs[mid]:
                ids.append(rid)
        samples = db.scalars(
            select(TinkerRequest.id)
            .join(TinkerSampler, TinkerSampler.id == TinkerRequest.sampler_id)
            .where(
                TinkerRequest.status == "pending",
                TinkerRequest.kind == "sample",  # not those the API runs on vLLM
                TinkerSampler.base_model.in_(list(self.settings.base_models)),
            )
            .order_by(TinkerRequest.created_at)
            .limit(4)
            .with_for_update(skip_locked=True, of=TinkerRequest)
        ).all()
        if samples:
            db.execute(
                update(TinkerRequest).where(TinkerRequest.id.in_(samples)).values(status="running")
            )
        return self._read_pending(db, [*ids, *samples])

    @staticmethod
    def _read_pending(db: Session, ids: list[str]) -> list[Pending]:
        """The requests `ids`, bodies included, in that order."""
        if not ids:
            return []
        found = {
            r.id: r
            for r in db.execute(
                select(
                    TinkerRequest.id,
                    TinkerRequest.kind,
                    TinkerRequest.body,
                    TinkerRequest.model_id,
                    TinkerRequest.seq_id,
                    TinkerRequest.sampler_id,
                    TinkerRequest.organization_id,
                ).where(TinkerRequest.id.in_(ids))
            )
        }
        return [Pending(*found[i]) for i in ids]

    # --- one request ---

    def _apply(self, req: Pending) -> None:
        result: bytes | None = None
        rtype, error, category = "json", None, None
        try:
            if req.sampler_id is not None:
                result, rtype = self._sample(req.sampler_id, json.loads(req.body)), "proto"
            else:
                result, rtype = self._train(req.org, req.kind, req.model_id, req.seq_id, req.body)
        except LatheError as exc:
            error, category = exc.message, "user"
        except Exception as exc:
            log.exception("tinker request %s (%s) failed", req.id, req.kind)
            error, category = f"{type(exc).__name__}: {exc}", "server"
        self._finish(req, result, rtype, error, category)

    def _finish(
        self, req: Pending, result: bytes | None, rtype: str, error: str | None, cat: str | None
    ) -> None:
        """Writes the outcome (UPDATEs: the row's body is not read back) and NOTIFYs it."""
        with session_scope(self.url) as db:
            db.execute(
                update(TinkerRequest)
                .where(TinkerRequest.id == req.id)
                .values(
                    status="done" if error is None else "failed",
                    result=result,
                    result_type=rtype,
                    error=error,
                    category=cat,
                    finished_at=utcnow(),
                )
            )
            wakeups.notify(db, wakeups.DONE_CHANNEL, req.id)  # wakes its long-poll at commit
            if req.model_id is not None and req.seq_id:
                db.execute(
                    update(TinkerModel)
                    .where(TinkerModel.id == req.model_id, TinkerModel.applied_seq < req.seq_id)
                    .values(applied_seq=req.seq_id)
                )
            if req.kind in ("create_model", "load_weights") and req.seq_id == 0:
                status = ("ready", None) if error is None else ("failed", error)
                db.execute(
                    update(TinkerModel)
                    .where(TinkerModel.id == req.model_id)
                    .values(status=status[0], error=status[1])
                )

    def _train(
        self, org: str, kind: str, model_id: str, seq: int, body: bytes
    ) -> tuple[bytes, str]:
        if kind == "forward_backward":
            return engine.forward_backward(self.pool, self._client(model_id), body), "proto"
        req = json.loads(body)
        if kind == "create_model":
            with session_scope(self.url) as db:
                m = db.get(TinkerModel, model_id)
                base, lora = m.base_model, m.lora
            self.pool.create(model_id, base, lora)
            out: dict[str, Any] = {"model_id": model_id, "type": "create_model"}
        elif kind == "optim_step":
            out = engine.optim_step(self._client(model_id), req.get("adam_params") or {})
        elif kind == "save_weights":
            path = self._save(org, model_id, "weights", check_name(req.get("path", "")), None)
            out = {"path": path, "type": "save_weights"}
        elif kind == "save_weights_for_sampler":
            out = self._save_for_sampler(org, model_id, seq, req)
        elif kind == "load_weights":
            out = self._load(org, model_id, seq, req)
        else:
            raise LatheError(f"unknown request kind {kind}")
        return json.dumps(out).encode(), "json"

    def _client(self, model_id: str):
        client = self.pool.clients.get(model_id)
        if client is None:
            raise LatheError(f"training client {model_id} is not held by this trainer")
        return client

    def _save(self, org: str, model_id: str, kind: str, name: str, ttl: float | None) -> str:
        client = self._client(model_id)
        data = self.pool.state_bytes(client, with_optimizer=kind == "weights")
        key = storage_key(org, model_id, kind, name)
        self.storage.put_stream(key, io.BytesIO(data))
        path = make_path(model_id, kind, name)
        expires = utcnow() + timedelta(seconds=ttl) if ttl else None
        with session_scope(self.url) as db:
            row = db.get(TinkerCheckpoint, path) or TinkerCheckpoint(path=path)
            row.organization_id, row.model_id, row.kind = org, model_id, kind
            row.base_model, row.lora, row.storage_key = client.base.name, client.lora, key
            row.bytes, row.expires_at, row.created_at = len(data), expires, utcnow()
            db.merge(row)
        return path

    def _save_for_sampler(self, org: str, model_id: str, seq: int, req: dict) -> dict:
        name = req.get("path")
        if name:
            path = self._save(
                org, model_id, "sampler_weights", check_name(name), req.get("ttl_seconds")
            )
            self._publish(org, model_id, path)
            return {"path": path, "type": "save_weights_for_sampler"}
        path = self._save(org, model_id, "sampler_weights", f"ephemeral-{seq}", EPHEMERAL_TTL_S)
        with session_scope(self.url) as db:
            m = db.get(TinkerModel, model_id)
            sid = f"ss_{model_id.replace(':', '_')}_{seq}"
            db.merge(
                TinkerSampler(
                    id=sid,
                    organization_id=org,
                    session_id=m.session_id,
                    base_model=m.base_model,
                    model_path=path,
                )
            )
        return {"sampling_session_id": sid, "path": None, "type": "save_weights_for_sampler"}

    def _publish(self, org: str, model_id: str, path: str) -> None:
        """Named sampler weights are also a Lathe model whose id is the tinker:// path: the
        OpenAI surface serves, lists, downloads and deletes them like a fine-tuned model."""
        import tempfile
        from pathlib import Path

        from core.persistence.models import Model
        from core.storage import put_dir
        from core.tinker.lora_pool import export_peft

        client = self._client(model_id)
        prefix = storage_key(org, model_id, "sampler_weights", path.rsplit("/", 1)[-1])
        prefix = prefix.removesuffix(".pt") + "-peft"
        with tempfile.TemporaryDirectory(dir=temp_root(self.settings)) as tmp:
            export_peft(client, Path(tmp))
            self.storage.delete_prefix(prefix + "/")
            put_dir(self.storage, prefix, Path(tmp))
        with session_scope(self.url) as db:
            db.merge(
                Model(
                    id=path,
                    organization_id=org,
                    kind="tinker",
                    base_model=client.base.name,
                    artifact_key=prefix,
                    adapter_type="lora",
                    task="causal_lm",
                    created_at=utcnow(),
                )
            )

    def _read(self, org: str, path: str, param: str) -> tuple[TinkerCheckpoint, bytes]:
        with session_scope(self.url) as db:
            row = db.get(TinkerCheckpoint, path)
            if row is None or row.organization_id != org:
                raise LatheError(f"no checkpoint {path!r}", param=param)
            db.expunge(row)
        return row, b"".join(self.storage.iter_bytes(row.storage_key))

    def _load(self, org: str, model_id: str, seq: int, req: dict) -> dict:
        _, data = self._read(org, req.get("path", ""), "path")
        if seq == 0:  # create-from-state: the client does not exist yet
            with session_scope(self.url) as db:
                m = db.get(TinkerModel, model_id)
                base, lora = m.base_model, m.lora
            self.pool.create(model_id, base, lora)
        self.pool.load_state(self._client(model_id), data, bool(req.get("optimizer")))
        return {"path": req.get("path"), "model_id": model_id, "type": "load_weights"}

    def _sample(self, sampler_id: str, req: dict) -> bytes:
        with session_scope(self.url) as db:
            s = db.get(TinkerSampler, sampler_id)
            base_name, path, org = s.base_model, s.model_path, s.organization_id
        base = self.pool.base(base_name)
        prompt = codec.sample_prompt(req, base.max_context)
        params = sampler.params_of(
            req,
            base.tokenizer,
            base.max_context - len(prompt),
            self.settings.tinker.max_sample_tokens,
        )
        model = base.model
        from peft import PeftModel

        weights: Any = contextlib.nullcontext()  # the base as it is
        if path:
            adapter = self.pool.sampler_adapter(
                base, path, lambda: self._read(org, path, "model_path")[1]
            )
            model.set_adapter(adapter)
        elif isinstance(model, PeftModel):
            weights = model.disable_adapter()  # the base, without its clients' LoRAs
        with weights:
            seqs, plp = sampler.sample(
                model,
                base.tokenizer,
                prompt,
                req.get("num_samples", 1),
                params,
                bool(req.get("prompt_logprobs")),
            )
        nan_plp = None if plp is None else [math.nan if x is None else x for x in plp]
        return codec.sample_response(seqs, nan_plp)
