"""One key for both SDKs: the key `lathe keys create` prints is taken, unchanged, by the tinker
SDK (which refuses keys not starting `tml-`) and by the openai SDK; a key issued before
(`sk-lathe-…`) keeps working on the OpenAI surface, and as `tml-sk-lathe-…` on Tinker's."""

from __future__ import annotations

import secrets

from openai import OpenAI

from tests.utils.processes import run_lathe
from tests.utils.stack import Stack


def test_a_created_key_works_unchanged_with_both_sdks(stack: Stack, tinker_url: str):
    import tinker

    key = run_lathe(stack.env, "keys", "create", "--org", f"tk-{secrets.token_hex(3)}").strip()
    assert key.startswith("tml-lathe-"), key
    service = tinker.ServiceClient(base_url=tinker_url, api_key=key)
    try:
        names = {m.model_name for m in service.get_server_capabilities().supported_models}
        assert "tiny-llama" in names
    finally:
        service.close("success").result()
    ids = {m.id for m in OpenAI(base_url=stack.url, api_key=key, max_retries=0).models.list()}
    assert "tiny-llama" in ids


def test_an_older_sk_lathe_key_keeps_working(stack: Stack, tinker_url: str):
    import tinker

    from core.auth import hash_key
    from core.persistence.db import session_scope
    from core.persistence.models import ApiKey, Organization

    old = "sk-lathe-" + secrets.token_hex(20)
    with session_scope(stack.env["LATHE_DATABASE_URL"]) as db:
        org = db.query(Organization).filter_by(name="acme").one()
        db.add(
            ApiKey(
                id=f"key_{secrets.token_hex(8)}",
                organization_id=org.id,
                key_hash=hash_key(old),
                display=old[:12] + "…",
                name="legacy",
            )
        )
    ids = {m.id for m in OpenAI(base_url=stack.url, api_key=old, max_retries=0).models.list()}
    assert "tiny-llama" in ids
    service = tinker.ServiceClient(base_url=tinker_url, api_key="tml-" + old)
    try:
        assert service.get_server_capabilities().supported_models
    finally:
        service.close("success").result()
