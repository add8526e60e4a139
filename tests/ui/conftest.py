"""A real `lathe serve` (the embedded default) and a real headless Chromium driving it.

The browser is Debian's `chromium` with its `chromedriver` (`.ci/run` installs them); where
either is missing the browser tests skip, saying so."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.utils.processes import (
    Proc,
    base_env,
    free_port,
    lathe,
    run_lathe,
    wait_http,
    wait_log,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    key: str
    proc: Proc
    env: dict[str, str]

    def api(self, key: str | None = None) -> httpx.Client:
        auth = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.url + "/v1", headers=auth, timeout=60)

    def other_org_key(self) -> str:
        return run_lathe(self.env, "keys", "create", "--org", "other").strip()


@pytest.fixture(scope="package")
def server(tmp_path_factory, model_cache: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui-serve")
    port = free_port()
    env = base_env(LATHE_DATA_DIR=str(root / ".lathe"), LATHE_MODEL_CACHE_DIR=str(model_cache))
    proc = Proc(lathe("serve", "--port", str(port)), env, root / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        wait_log(proc, "ready")  # the worker started alongside
        wait_log(proc, "API key:")  # the banner comes once the port accepts connections
        key = re.search(r"API key:\s+(tml-lathe-\S+)", proc.log.read_text()).group(1)
        yield Server(f"http://127.0.0.1:{port}", key, proc, env)
    finally:
        proc.stop()


@pytest.fixture
def browser(tmp_path: Path):
    """Chromium with a fresh profile, recording every request it makes (performance log)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.skip(
            f"no browser: {', '.join(missing)} not installed (apt-get install chromium "
            "chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    downloads = {"download.default_directory": str(tmp_path / "downloads")}
    options.add_experimental_option("prefs", {**downloads, "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
