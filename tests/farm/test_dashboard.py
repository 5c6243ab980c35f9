"""The dashboard in a real headless Chromium: refused without a login or with a wrong token, then live.

Chromium comes from Debian's packages (``apt-get install chromium``; ``.ci/run`` installs it) and is
driven by Playwright. Without it the test is skipped, except where ARMFARM_TEST_BROWSER=1 (CI) makes
a missing browser a failure."""

import os
import shutil

import httpx
import pytest
from farmlib import decided, finish, make_farm, start, wait_for

from armfarm.farm.state import FarmPaths

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("ARMFARM_TEST_BROWSER") == "1":
            pytest.fail("ARMFARM_TEST_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def test_dashboard_login_robots_and_rounds_chart(tmp_path, browser):
    farm = make_farm(tmp_path / "farm", robots=2)
    process = start(farm, "--minutes", "5")
    paths = FarmPaths(farm)
    try:
        from armfarm.farm.config import load

        config = load(farm)
        url = f"http://127.0.0.1:{config.port}"
        wait_for(lambda: paths.admin_token.exists(), what="the admin token")
        admin = paths.admin_token.read_text().strip()
        wait_for(lambda: _up(url), what="the server")

        # the JSON endpoint: in the API description, refused without a login, or with a robot's token
        assert "/v1/dashboard" in httpx.get(f"{url}/openapi.json").json()["paths"]
        assert httpx.get(f"{url}/v1/dashboard").status_code == 401
        robot = paths.token("robot-0").read_text().strip()
        assert httpx.get(f"{url}/v1/dashboard", headers={"Authorization": f"Bearer {robot}"}).status_code == 403
        assert httpx.get(f"{url}/v1/dashboard", headers={"Authorization": f"Bearer {admin}"}).status_code == 200

        page = browser.new_page()
        response = page.goto(f"{url}/dashboard")
        assert response.status == 401 and page.locator("#token").count() == 1  # the login form, not the data
        page.fill("#token", "not-the-token")
        page.click("#login-button")
        assert "not the admin token" in page.locator("#login-message").inner_text()
        assert page.context.cookies() == []

        page.fill("#token", admin)
        page.click("#login-button")
        page.wait_for_selector("#robots tbody tr.robot-row", timeout=60_000)
        cookie = next(c for c in page.context.cookies() if c["name"] == "armfarm_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and admin not in page.url
        wait_for(lambda: len(page.locator("#robots tbody tr.robot-row").all()) == 2, what="both robots' rows")
        wait_for(lambda: len(decided(farm)) >= 1, timeout=180, what="a decided round")
        page.wait_for_selector("#rounds-chart circle.round-point", timeout=30_000)
        page.wait_for_selector("#ingest-chart rect.ingest-bar", timeout=30_000)
        assert page.locator("#candidates tbody tr.round-row").count() >= 1
        assert "episodes" in page.locator("#summary").inner_text()
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("ARMFARM_SCREENSHOT_DIR"):
            shutil.copy(shot, os.environ["ARMFARM_SCREENSHOT_DIR"])

        page.click("text=Sign out")  # the session ends: the data is refused again
        assert page.locator("#token").count() == 1
        page.close()
    finally:
        process.terminate()
        code, _, err = finish(process)
    assert code == 0, err[-2000:]


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
