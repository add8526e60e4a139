"""Mistakes on the command line are one `error:` line and exit status 1, never a traceback."""

from __future__ import annotations

import pytest

from tests.cli.conftest import cli
from tests.utils.processes import base_env, free_port


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["jobs", "create", "--model", "m", "-t", "f", "--metadata", "team"], "KEY=VALUE"),
        (["jobs", "create", "--model", "m", "-t", "f", "--body", "{nope"], "--body:"),
        (["jobs", "create", "--model", "m"], "--training-file is required"),
        (["files", "upload", "/no/such/file.jsonl"], "no such file"),
        (["models", "list", "--profile", "staging"], "no profile 'staging'"),
        (["jobs", "list"], "cannot reach"),
    ],
)
def test_usage_errors(tmp_path, args, says):
    env = base_env(
        LATHE_BASE_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        LATHE_API_KEY="sk-lathe-x",
        XDG_CONFIG_HOME=str(tmp_path),
    )
    out = cli(env, *args, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith("error:") and says in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr


def test_operator_commands_before_the_database_exists(tmp_path):
    """`lathe keys` on a first run: the embedded database is migrated on the spot; a server
    database without tables names `lathe migrate` (it was a SQLAlchemy traceback)."""
    from tests.conftest import fresh_database

    embedded = base_env(LATHE_DATA_DIR=str(tmp_path / "fresh"))
    listed = cli(embedded, "keys", "list", timeout=120)
    assert listed.returncode == 0 and listed.stdout == "", listed.stderr
    created = cli(embedded, "keys", "create", "--org", "acme", timeout=120)
    assert created.returncode == 0 and created.stdout.startswith("tml-lathe-"), created.stderr
    with fresh_database() as url:
        out = cli(base_env(LATHE_DATABASE_URL=url), "keys", "list", timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip()
        == "error: the database has no Lathe tables yet: run `lathe migrate` first"
    )


def test_a_command_without_a_key_names_lathe_login(tmp_path):
    env = base_env(
        LATHE_BASE_URL=f"http://127.0.0.1:{free_port()}",
        LATHE_DATA_DIR=str(tmp_path / "none"),  # no embedded key to fall back on
        XDG_CONFIG_HOME=str(tmp_path),
    )
    out = cli(env, "models", "list", timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    said = " ".join(out.stderr.split())
    assert "lathe login" in said and "LATHE_API_KEY" in said and "Authorization" not in said
