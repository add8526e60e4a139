"""docker-compose.yml and the Dockerfile can't run here (no Docker engine), so check that what
they run is what the tests run — real `lathe` sub-commands, real settings names, healthchecks
that answer against real services — and the properties a deployment relies on: pinned images,
no default secrets, no console published, a CPU profile, volumes the processes can write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.main import main as cli_main
from core.settings import Settings, flat_names

ROOT = Path(__file__).resolve().parents[1]
LATHE_SERVICES = ("migrate", "api", "worker", "worker-cpu", "inference", "inference-cpu")
LONG_RUNNING = ("api", "worker", "worker-cpu", "inference", "inference-cpu")
_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def _dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (an unset required one fails
    as compose would), and `$$` for a literal `$`."""

    def sub(m: re.Match) -> str:
        name, kind, arg = m.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {arg}")
        return arg if kind == "-" else ""

    return _VAR.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


def _raw() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _compose(**env: str) -> dict:
    """The file as compose sees it with .env.example filled in (passwords set)."""
    values = {**_dotenv(ROOT / ".env.example"), "POSTGRES_PASSWORD": "pw1", **env}
    values["MINIO_ROOT_PASSWORD"] = values.get("MINIO_ROOT_PASSWORD") or "pw2"
    text = _interpolate((ROOT / "docker-compose.yml").read_text(), values)
    return yaml.safe_load(text)


def test_compose_lathe_services_run_real_subcommands(capsys):
    services = _compose()["services"]
    for name in LATHE_SERVICES:
        cmd = services[name]["command"]
        assert cmd[0] == "lathe"
        try:  # argparse accepts the arguments (`--help` after them stops before running)
            cli_main([*cmd[1:], "--help"])
        except SystemExit as exc:
            assert exc.code == 0, (name, capsys.readouterr())
    assert services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == (
        "nvidia"
    )


def _settings_from(env: dict[str, str], monkeypatch) -> Settings:
    """Settings as a process with exactly these LATHE_* variables reads them."""
    for name in [k for k in os.environ if k.startswith("LATHE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("LATHE_"):
            monkeypatch.setenv(name, value)
    return Settings()


def test_compose_environment_names_real_settings(monkeypatch):
    env = _compose()["x-lathe-env"]
    fields = {f"LATHE_{name.upper()}" for name in flat_names()}
    assert {k for k in env if k.startswith("LATHE_")} <= fields
    assert env["LATHE_STORAGE_URL"].startswith("s3://")
    assert env["LATHE_DATABASE_URL"] == "postgresql+psycopg://lathe:pw1@postgres:5432/lathe"
    settings = _settings_from(env, monkeypatch)
    assert settings.storage.url == env["LATHE_STORAGE_URL"]
    assert settings.database.url == env["LATHE_DATABASE_URL"]


def test_images_are_pinned_and_secrets_come_from_the_environment():
    raw, services = _raw(), _compose()["services"]
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
    # No password has a value in the file: each is a required ${VAR:?…} (from .env).
    lathe = raw["x-lathe-env"]
    secrets = [
        *raw["services"]["minio"]["environment"].values(),
        raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"],
        lathe["AWS_ACCESS_KEY_ID"],
        lathe["AWS_SECRET_ACCESS_KEY"],
    ]
    for value in secrets:
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), value
    assert "pw2" not in (ROOT / "docker-compose.yml").read_text()
    with pytest.raises(KeyError, match="MINIO_ROOT_PASSWORD"):  # compose refuses to start
        _interpolate(
            (ROOT / "docker-compose.yml").read_text(),
            {"POSTGRES_PASSWORD": "x", "MINIO_ROOT_USER": "lathe"},
        )
    example = _dotenv(ROOT / ".env.example")
    assert example["POSTGRES_PASSWORD"] == example["MINIO_ROOT_PASSWORD"] == ""
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    # The MinIO console (and MinIO itself) are reachable only inside the compose network.
    assert "ports" not in services["minio"]
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published == ["8000:8000"]


def test_every_long_running_service_has_a_healthcheck_and_a_grace_period():
    services = _compose()["services"]
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert not check.get("disable") and check["test"][0] == "CMD", name
        assert re.fullmatch(r"\d+s", services[name]["stop_grace_period"]), name
    assert services["worker"]["stop_grace_period"] == "60s"  # > stop + cancel grace (30 + 5)
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "lathe", "ready"]
    assert "/ready" in services["api"]["healthcheck"]["test"][-1]
    for name in ("postgres", "redis", "minio"):
        assert services[name]["healthcheck"]["test"]


def test_the_cpu_profile_runs_the_same_roles_without_gpus():
    services = _compose()["services"]
    for role in ("worker", "inference"):
        gpu, cpu = services[role], services[f"{role}-cpu"]
        assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
        assert gpu["command"] == cpu["command"] and "deploy" not in cpu
        assert cpu["environment"]["LATHE_DEVICE"] == "cpu"
        assert cpu["environment"]["LATHE_DATABASE_URL"] == gpu["environment"]["LATHE_DATABASE_URL"]
    # The API reaches either inference service by the same name.
    assert services["inference-cpu"]["networks"]["default"]["aliases"] == ["inference"]
    assert services["api"]["environment"]["LATHE_INFERENCE_URL"] == "http://inference:8001"
    unprofiled = {n for n, s in services.items() if "profiles" not in s}
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "api"} == unprofiled


def test_volumes_mount_directories_the_image_creates_for_its_user():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"useradd .*--uid 1000 lathe", text) and "USER lathe" in text
    created = re.findall(r"mkdir -p (\S+)", text)
    assert re.search(r"chown -R lathe(:lathe)? /var/lib/lathe\b", text)
    for name in LATHE_SERVICES:
        for mount in _compose()["services"][name].get("volumes", []):
            target = mount.split(":")[1]
            assert target.startswith("/var/lib/lathe"), (name, target)
            assert any(c == target or c.startswith(target + "/") for c in created), (name, target)


def test_dockerfile_copies_every_package_and_the_migrations():
    text = (ROOT / "Dockerfile").read_text()
    for path in ("core", "api", "worker", "migrations", "alembic.ini", "pyproject.toml"):
        assert re.search(rf"COPY .*\b{re.escape(path)}\b", text), path
    assert "torch==2.13.0" in text


def _run_check(test: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A compose healthcheck's CMD as the container runs it (`lathe` = this checkout's CLI)."""
    argv = [sys.executable, "-m", "cli.main", *test[2:]] if test[1] == "lathe" else test[1:]
    argv = [sys.executable if a == "python" else a for a in argv]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LATHE_", "AWS_"))}
    return subprocess.run(argv, env={**clean, **env}, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_the_worker_healthcheck_answers_for_real_services(
    pg_url, s3_endpoint, s3_bucket, tmp_path, monkeypatch
):
    from tests.conftest import REDIS_URL

    test = _compose()["services"]["worker"]["healthcheck"]["test"]
    env = dict(
        LATHE_DATA_DIR=str(tmp_path), LATHE_DATABASE_URL=pg_url, LATHE_BROKER_URL=REDIS_URL,
        LATHE_STORAGE_URL=f"s3://{s3_bucket}/lathe", LATHE_S3_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
    )  # fmt: skip
    ok = _run_check(test, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert '"database": "ok", "broker": "ok", "storage": "ok"' in ok.stdout
    # The same checks with Redis away (in process: a second CLI start costs seconds).
    from core import readiness

    settings = _settings_from(env, monkeypatch)
    down = readiness.check(
        settings.model_copy(
            update={"broker": settings.broker.model_copy(update={"url": "redis://127.0.0.1:1/0"})}
        )
    )
    assert down["broker"].startswith("unavailable") and not readiness.ready(down)
    assert down["database"] == down["storage"] == "ok"
    import asyncio
    import json

    from api.routes.health import ready

    bad = settings.model_copy(
        update={"broker": settings.broker.model_copy(update={"url": "redis://127.0.0.1:1/0"})}
    )
    response = asyncio.run(ready(bad))  # what the API's healthcheck gets: a 503
    assert response.status_code == 503
    assert json.loads(response.body)["checks"]["broker"].startswith("unavailable")


def test_a_default_install_has_the_wandb_integration_openai_users_send():
    """`integrations: [{"type": "wandb"}]` is what OpenAI's clients send: a default install
    must accept it, so its package is a default dependency, pinned as the extra pins it."""
    import tomllib

    from core.integrations.spec import KINDS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    package = KINDS["wandb"][1]
    pinned = [d for d in project["dependencies"] if d.startswith(f"{package}==")]
    assert pinned and pinned[0] in project["optional-dependencies"]["integrations"]
