"""The web UI in a real headless browser (Debian's chromium + chromedriver, Selenium)
against a real ``memhub serve``: one server and one browser session for the module,
the tests run in order as one user's visit. The screenshots in docs/ui/ come from here.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("MEMHUB_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MEMHUB_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
WAIT = 20.0
SECRET_B = "Quuxbeta-secret-zebra"
HOSTILE = (
    "# Hostile note\n\n"
    "<script>document.title='pwned-script'</script>\n\n"
    "[click me](javascript:document.title='pwned-link')\n\n"
    "<img src=x onerror=\"document.title='pwned-img'\">\n\n"
    '<a href="javascript:alert(1)" onclick="alert(2)">raw link</a>\n'
)


@dataclass
class Visit:
    base: str
    api: httpx.Client
    driver: WebDriver
    keys: dict[str, str]

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        return WebDriverWait(self.driver, WAIT).until(
            lambda d: d.find_element(By.CSS_SELECTOR, css)
        )

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))

    def sign_in(self, key: str) -> None:
        self.go("/ui/")
        field = self.find("#key")
        field.send_keys(key)
        field.send_keys(Keys.ENTER)
        self.find("table.files")


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> tuple[str, str]:
    """The module's one ``memhub serve``: its base URL and admin key."""
    return module_server.base_url, module_server.key


@pytest.fixture(scope="module")
def visit(server: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visit]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail(
            f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install chromium "
            "chromium-driver (.ci/run does)",
            pytrace=False,
        )
    base, admin = server
    api = httpx.Client(base_url=base, headers={"authorization": f"Bearer {admin}"}, timeout=30)
    keys = {"admin": admin}
    for ws in ("alpha", "beta"):
        assert api.post("/v1/workspaces", json={"name": ws}).status_code == 201
    for role, scopes in (("write", ["read", "write"]), ("read", ["read"])):
        made = api.post("/admin/keys", json={"user_name": "alpha", "scopes": scopes})
        keys[role] = made.json()["key"]
    plan = "# Plan\n\nShip the **{}** draft.\n"
    seed = {
        "notes/plan.md": [plan.format("first"), plan.format("second") + "\n- review\n"],
        "notes/people/ana.md": ["# Ana\n\nAna prefers tea over coffee. [ALWAYS_LOAD]\n"],
        "journal/2026-12-01.md": ["# Monday\n\nTalked with Ana about the roadmap.\n"],
        "hostile.md": [HOSTILE],
    }  # fmt: skip
    for path, versions in seed.items():
        for i, text in enumerate(versions):
            api.put(
                f"/v1/workspaces/alpha/files/{path}",
                content=text.encode(),
                headers={"x-memhub-message": f"version {i + 1}", "x-memhub-session-id": "s-42"},
            ).raise_for_status()
    api.put("/v1/workspaces/beta/files/private/b.md", content=SECRET_B.encode()).raise_for_status()

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield Visit(base, api, driver, keys)
    finally:
        driver.quit()
        api.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_sign_in_and_browse(visit: Visit) -> None:
    visit.sign_in(visit.keys["write"])
    cookies = {c["name"]: c for c in visit.driver.get_cookies()}
    assert cookies["memhub_ui"]["httpOnly"] and cookies["memhub_ui"]["sameSite"] == "Strict"
    assert visit.keys["write"] not in visit.driver.page_source
    assert "notes/" in visit.text() and "journal/" in visit.text()
    visit.shot("files")
    visit.driver.find_element(By.LINK_TEXT, "notes/").click()
    visit.find("a.file").click()  # the first file of notes/: plan.md
    visit.find("section.rendered h1")
    assert "Ship the second draft." in visit.find("section.rendered").text
    assert "**second**" in visit.find("#raw").text
    visit.shot("file")


def test_old_revision_and_diff(visit: Visit) -> None:
    visit.driver.find_element(By.LINK_TEXT, "History").click()
    visit.find("table.history")
    assert "s-42" in visit.text() and "version 2" in visit.text()
    rows = visit.driver.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    old_rev = rows[1].find_elements(By.TAG_NAME, "a")[0]
    old_rev.click()
    assert "You are looking at rev" in visit.find("p.notice").text
    assert "Ship the first draft." in visit.find("section.rendered").text
    visit.driver.back()
    visit.find("#diff-button").click()
    visit.find("table.diff")
    deleted = visit.driver.find_elements(By.CSS_SELECTOR, "table.diff tr.del")
    added = visit.driver.find_elements(By.CSS_SELECTOR, "table.diff tr.add")
    assert any("first" in r.text for r in deleted) and any("second" in r.text for r in added)
    visit.driver.find_element(By.LINK_TEXT, "side by side").click()
    visit.find("table.diff.split")
    visit.shot("diff")


def test_edit_with_a_conflict_and_resolve_it(visit: Visit) -> None:
    visit.go("/ui/w/alpha/file/notes/plan.md")
    visit.find("#edit").click()
    editor = visit.find("#content")
    # meanwhile an agent saves a new version
    visit.api.put(
        "/v1/workspaces/alpha/files/notes/plan.md",
        content=b"# Plan\n\nShip the second draft.\n\n- review\n- agent note\n",
    ).raise_for_status()
    editor.send_keys(Keys.END, "\n- my browser note")
    visit.find("#save").click()
    assert "Someone changed this file" in visit.find("#conflict").text
    assert "agent note" in visit.find("#theirs").text
    mine = visit.find("#content")
    assert "my browser note" in mine.get_attribute("value")
    visit.shot("conflict")
    mine.send_keys(Keys.END, "\n- agent note")
    visit.find("#save").click()
    visit.find("section.rendered")
    text = visit.api.get("/v1/workspaces/alpha/files/notes/plan.md").text
    assert "my browser note" in text and "agent note" in text
    history = visit.api.get("/v1/workspaces/alpha/history/notes/plan.md").json()["revisions"]
    assert len(history) == 4  # two seeds, the agent's save and the resolved one


def test_search_and_context(visit: Visit) -> None:
    visit.go("/ui/w/alpha/files/")
    visit.find("body").send_keys("/")  # the search shortcut
    box = visit.find("#q")
    box.send_keys("tea", Keys.ENTER)
    visit.find("ol.results")
    marks = visit.driver.find_elements(By.CSS_SELECTOR, ".snippet mark")
    assert marks and marks[0].text.lower() == "tea"
    assert "notes/people/ana.md" in visit.text()
    visit.shot("search")
    visit.go("/ui/w/alpha/context")
    visit.find("#message").send_keys("What does Ana drink?")
    Select(visit.find("#depth")).select_by_value("wide")
    visit.find("button.primary").click()
    visit.find("#depths")
    assert "notes/people/ana.md" in visit.find("table.sources").text
    # the other depths' token counts arrive by htmx, one request each
    WebDriverWait(visit.driver, WAIT).until(
        lambda d: "…" not in d.find_element(By.ID, "depths").text
    )
    assert len(visit.driver.find_elements(By.CSS_SELECTOR, "#depths tr[data-depth]")) == 4
    visit.shot("context")


def test_change_feed_is_live(visit: Visit) -> None:
    visit.go("/ui/w/alpha/changes")
    visit.find("#feed")
    visit.api.put("/v1/workspaces/alpha/files/live/feed.md", content=b"new").raise_for_status()
    WebDriverWait(visit.driver, WAIT).until(
        lambda d: "live/feed.md" in d.find_element(By.ID, "feed").text
    )


def test_untrusted_markdown_runs_nothing(visit: Visit) -> None:
    visit.go("/ui/w/alpha/file/hostile.md")
    visit.find("section.rendered h1")
    for link in visit.driver.find_elements(By.CSS_SELECTOR, "section.rendered a"):
        link.click()
    assert "pwned" not in visit.driver.title
    with pytest.raises(NoAlertPresentException):
        _ = visit.driver.switch_to.alert.text
    scripts = visit.driver.execute_script("return document.scripts.length")
    assert scripts == 2  # htmx and ui.js, nothing from the file


def test_sessions_stage_a_diff_and_commit_it(visit: Visit) -> None:
    visit.go("/ui/w/alpha/sessions")
    visit.find("#transcript").send_keys(
        "Priya moved to Lisbon last month for a job at Feedzai.\n"
        "Yesterday I ran the Riverside Marathon with Priya.\n"
        "<img src=x onerror=\"document.title='pwned-session'\">"
    )
    visit.find("input[name=session_id]").send_keys("browser-1")
    visit.find("#process-button").click()
    visit.find("table.diff")
    assert "memories/people/priya.md" in visit.text()
    added = visit.driver.find_elements(By.CSS_SELECTOR, "table.diff tr.add")
    assert any("Feedzai" in r.text for r in added)
    assert visit.api.get("/v1/workspaces/alpha/files/memories/people/priya.md").status_code == 404
    visit.shot("session")
    visit.find("#commit").click()
    assert "Committed as" in visit.find("#committed").text
    assert "pwned" not in visit.driver.title
    head = visit.api.get("/v1/workspaces/alpha/history/memories/people/priya.md").json()
    assert head["revisions"][0]["session_id"] == "browser-1"


def test_items_add_filter_and_delete(visit: Visit) -> None:
    visit.go("/ui/w/alpha/items")
    visit.find("#memory").send_keys("Ana drinks green tea every morning.")
    visit.find("#add-item input[name=tags]").send_keys("drinks, morning")
    visit.find("#add-button").click()
    assert "Added" in visit.find("#added").text
    assert "drinks" in visit.find("#item-meta").text
    visit.api.post(
        "/v1/workspaces/alpha/items",
        json={"items": [{"memory": "Ana works on the beacon firmware.", "tags": ["work"]}]},
    ).raise_for_status()
    visit.go("/ui/w/alpha/items")
    visit.find("#item-list")
    assert "Ana works on the beacon" in visit.text() and "Ana drinks green tea" in visit.text()
    visit.shot("items")
    visit.driver.find_element(By.LINK_TEXT, "drinks").click()  # filter by that tag
    visit.find("#item-list")
    assert "Ana drinks green tea" in visit.text() and "beacon" not in visit.text()
    visit.driver.find_element(By.CSS_SELECTOR, "#item-list tbody a").click()
    visit.find("#delete-item").click()
    visit.driver.switch_to.alert.accept()  # the confirmation
    assert "deleted" in visit.find("#deleted").text
    assert "Ana drinks green tea" not in visit.find("#item-list").text


def test_operations_create_and_revoke_a_key(visit: Visit) -> None:
    visit.driver.delete_all_cookies()
    visit.sign_in(visit.keys["admin"])
    visit.go("/ui/w/alpha/ops")
    form = visit.find("#create-key")
    form.find_element(By.NAME, "description").send_keys("made in the browser")
    form.find_element(By.CSS_SELECTOR, "button").click()
    key = visit.find("#new-key-value").text
    assert key.startswith("mh_")
    assert (
        httpx.get(
            f"{visit.base}/v1/workspaces/alpha", headers={"authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    visit.shot("ops")
    row = next(
        r
        for r in visit.driver.find_elements(By.CSS_SELECTOR, "table.keys tbody tr")
        if "made in the browser" in r.text
    )
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    visit.driver.switch_to.alert.accept()  # the confirmation
    visit.find("table.keys")
    deadline = time.monotonic() + WAIT  # the server caches key checks for a few seconds
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = httpx.get(
            f"{visit.base}/v1/workspaces/alpha", headers={"authorization": f"Bearer {key}"}
        ).status_code
        if status == 200:
            time.sleep(0.25)
    assert status == 401


def test_read_only_key_and_forged_post(visit: Visit) -> None:
    visit.driver.delete_all_cookies()
    visit.sign_in(visit.keys["read"])
    visit.go("/ui/w/alpha/file/notes/plan.md")
    visit.find("section.rendered")
    assert not visit.driver.find_elements(By.ID, "edit")
    assert not visit.driver.find_elements(By.CSS_SELECTOR, "button.danger")
    before = visit.api.get("/v1/workspaces/alpha/history/notes/plan.md").json()["revisions"]
    token = visit.driver.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    visit.driver.execute_script(
        """const f = document.createElement('form');
        f.method = 'post'; f.action = '/ui/w/alpha/save';
        for (const [k, v] of Object.entries(arguments[0])) {
          const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i);
        }
        document.body.appendChild(f); f.submit();""",
        {"csrf": token, "path": "notes/plan.md", "content": "forged", "base": "new"},
    )
    assert "403" in visit.find("main h1").text
    after = visit.api.get("/v1/workspaces/alpha/history/notes/plan.md").json()["revisions"]
    assert after == before


def test_other_workspace_is_unreachable(visit: Visit) -> None:
    for path in (
        "/ui/w/beta/files/",
        "/ui/w/beta/file/private/b.md",
        "/ui/w/beta/raw/private/b.md",
    ):
        visit.go(path)
        assert "404" in visit.find("main h1").text
        assert SECRET_B not in visit.driver.page_source


def test_narrow_dark_and_no_csp_violations(visit: Visit) -> None:
    visit.driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    visit.driver.set_window_size(390, 844)
    visit.go("/ui/w/alpha/files/notes/")
    visit.find("table.files")
    width = visit.driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, width  # no sideways scrolling at phone width
    background = visit.driver.execute_script(
        "return getComputedStyle(document.body).backgroundColor"
    )
    assert background == "rgb(22, 23, 26)", background
    visit.shot("files-narrow-dark")
    visit.driver.set_window_size(1280, 900)
    violations = [
        entry["message"]
        for entry in visit.driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]
    assert not violations, violations
