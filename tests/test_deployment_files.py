"""docker-compose.yml and the Dockerfile can't run here (no Docker engine), so check that what
they run is what the tests run: real `lathe` sub-commands and real settings names."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from api.cli import main as cli_main
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_lathe_services_run_real_subcommands(capsys):
    services = _compose()["services"]
    for name in ("migrate", "api", "worker", "inference"):
        cmd = services[name]["command"]
        assert cmd[0] == "lathe"
        try:  # argparse accepts the arguments (`--help` after them stops before running)
            cli_main([*cmd[1:], "--help"])
        except SystemExit as exc:
            assert exc.code == 0, (name, capsys.readouterr())
    assert (
        services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"]
        == "nvidia"
    )


def test_compose_environment_names_real_settings():
    env = _compose()["x-lathe-env"]
    fields = {f"LATHE_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("LATHE_")} <= fields
    assert env["LATHE_STORAGE_URL"].startswith("s3://")
    assert Settings(**{k[6:].lower(): v for k, v in env.items() if k.startswith("LATHE_")})


def test_dockerfile_copies_every_package_and_the_migrations():
    text = (ROOT / "Dockerfile").read_text()
    for path in ("core", "api", "worker", "migrations", "alembic.ini", "pyproject.toml"):
        assert re.search(rf"COPY .*\b{re.escape(path)}\b", text), path
    assert "torch==2.13.0" in text
