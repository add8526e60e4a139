"""Key and organization management: `lathe keys list|revoke`, `lathe orgs list|delete` and the
admin-only /v1/admin endpoints. Revocation takes effect on the key's next request, even though
this server caches key look-ups for 30 s."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.utils.api_server import ADMIN_KEY
from tests.utils.processes import ROOT, lathe, run_lathe


@pytest.fixture(scope="module")
def server(embedded_api):
    assert float(embedded_api.env["LATHE_AUTH_CACHE_TTL_S"]) >= 30  # a cache a revoke outruns
    return embedded_api.as_org("keys")


def _admin(server) -> httpx.Client:
    return server.client(ADMIN_KEY)


def test_admin_endpoints_take_only_the_operator_key(server):
    with server.client() as client:  # an organization's key
        r = client.get("/admin/keys")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    with _admin(server) as admin:
        assert admin.get("/admin/keys").status_code == 200
        assert admin.get("/models").status_code == 401  # and the operator is no organization


def test_revoke_through_the_api_stops_the_next_request(server):
    with _admin(server) as admin:
        created = admin.post("/admin/keys", json={"org": "leaky", "name": "ci"}).json()
        key = created["key"]
        with server.client(key) as client:
            assert client.get("/models").status_code == 200  # looked up, now cached
        listed = admin.get("/admin/keys", params={"org": "leaky"}).json()["data"]
        assert [(k["id"], k["name"], k["key"]) for k in listed] == [(created["id"], "ci", None)]
        revoked = admin.post(f"/admin/keys/{created['id']}/revoke").json()
        assert revoked["revoked_at"] is not None
        with server.client(key) as client:
            r = client.get("/models")
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert admin.post("/admin/keys/key_nope/revoke").status_code == 404


def test_cli_lists_and_revokes_keys(server):
    key = server.new_key("cli-org")
    rows = [line.split("\t") for line in run_lathe(server.env, "keys", "list").splitlines()]
    mine = [r for r in rows if r[1] == "cli-org"]
    assert len(mine) == 1 and mine[0][4] == "active" and key not in "\n".join(map(str, rows))
    assert key.startswith(mine[0][2].rstrip("…"))
    run_lathe(server.env, "keys", "revoke", mine[0][0])
    with server.client(key) as client:  # never used, so in no cache: refused at once
        assert client.get("/models").status_code == 401
    listed = run_lathe(server.env, "keys", "list", "--org", "cli-org")
    assert "\trevoked " in listed
    missing = subprocess.run(
        lathe("keys", "revoke", "key_nope"),
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "No such API key: key_nope" in missing.stderr


def test_delete_an_organization_with_its_keys_and_objects(server):
    key = server.new_key("doomed")
    with server.client(key) as client:
        row = json.dumps(
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
        ).encode()
        f = client.post(
            "/files", files={"file": ("d.jsonl", row)}, data={"purpose": "fine-tune"}
        ).json()
        assert f["status"] == "processed"
    objects = server.data_dir / "objects" / "orgs"
    org_dirs = {p.name for p in objects.iterdir()}
    with _admin(server) as admin:
        orgs = {o["name"]: o for o in admin.get("/admin/organizations").json()["data"]}
        assert orgs["doomed"]["active_keys"] == 1
        doomed_id = orgs["doomed"]["id"]
        assert doomed_id in org_dirs
        assert admin.delete("/admin/organizations/doomed").json()["deleted"] is True
        assert "doomed" not in {o["name"] for o in admin.get("/admin/organizations").json()["data"]}
        assert admin.delete("/admin/organizations/doomed").status_code == 404
    assert not (objects / doomed_id).exists()
    with server.client(key) as client:  # cached a moment ago: forgotten with the org
        assert client.get("/models").status_code == 401
    server.new_key("doomed-too")
    assert "doomed-too" in run_lathe(server.env, "orgs", "list")
    run_lathe(server.env, "orgs", "delete", "doomed-too")
    assert "doomed-too" not in run_lathe(server.env, "orgs", "list")
