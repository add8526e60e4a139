"""The front door: a README a newcomer reads in minutes, and a docs site that builds strictly
(no broken link, no missing page) with its API and configuration references generated from the
code — every operation of /openapi.json and every Settings field, nested groups included."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import flat_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_is_short_and_its_commands_and_links_are_real():
    assert len(README.splitlines()) <= 150
    for command in ("./scripts/serve.sh", "./scripts/test.sh", "./scripts/docs.sh"):
        assert f"{command}\n" in README or f"`{command}`" in README, command
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README)
    assert links and all((ROOT / link).is_file() for link in links), links


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return out


def test_the_configuration_reference_lists_every_setting(site):
    from core.settings import Settings, setting_groups

    page = (site / "reference" / "configuration" / "index.html").read_text()
    names = [f"LATHE_{flat.upper()}" for flat in flat_names()]
    assert len(names) > 50
    missing = [name for name in names if name not in page]
    assert not missing, missing
    text = " ".join(_text(page).split())
    models = [Settings, *setting_groups().values()]
    described = [f.description for m in models for f in m.model_fields.values() if f.description]
    lost = [d for d in described if " ".join(d.replace("`", "").split())[:25] not in text]
    assert not lost, lost


def test_the_api_reference_lists_every_operation(site):
    from api.main import create_app
    from core.settings import Settings

    spec = create_app(Settings(data_dir=site / "no-data")).openapi()
    page = _text((site / "reference" / "api" / "index.html").read_text())
    operations = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 40
    missing = [op for op in operations if op not in page]
    assert not missing, missing


def test_getting_started_shows_the_readme_first_fine_tune(site):
    page = _text((site / "getting-started" / "index.html").read_text())
    assert "examples/capitals.jsonl" in page and "--8<--" not in page
    assert "jq -r .fine_tuned_model" in page


def _text(html: str) -> str:
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))
