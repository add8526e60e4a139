"""The session's embedded `lathe serve` (`served` in tests/conftest.py) and a real headless
Chromium driving it.

The browser is Debian's `chromium` with its `chromedriver` (`.ci/run` installs them); where
either is missing the browser tests skip, saying so."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.utils.embedded import Served
from tests.utils.processes import Proc, run_lathe

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
def server(served: Served) -> Server:
    """The session's embedded `lathe serve`, signed into as an organization of the dashboard's
    own: the page starts from nothing, whatever the CLI or SDK tests left in theirs."""
    return Server(served.url, served.org_key("dashboard"), served.proc, served.env)


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
