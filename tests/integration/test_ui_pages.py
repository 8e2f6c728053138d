"""The web UI's sessions and items pages in-process: render, scopes, CSRF, conflicts,
and memory text (transcripts, diffs, item text) rendered inert.

One app per module (two workspaces, a write key and a read-only key of the first);
each test signs in with its own client.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from apiclient import build_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from uiclient import create_key, csrf_of, sign_in, ui_client

from memhub.errors import FileNotFound

A, B = "alpha", "beta"
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"alert(1)\">"
TRANSCRIPT = (
    "Priya moved to Lisbon last month for a job at Feedzai.\n"
    f"Yesterday I ran the Riverside Marathon with Priya. {HOSTILE}\n"
)


class Tags(HTMLParser):
    """Every tag and attribute as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.attributes: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        self.attributes |= {name.lower() for name, _ in attrs}


def assert_inert(html: str) -> None:
    tags = Tags(html)
    assert all(s.get("src", "").startswith("/ui/static/") for s in tags.scripts), tags.scripts
    assert not {a for a in tags.attributes if a.startswith("on")}, tags.attributes


@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    with tempfile.TemporaryDirectory(prefix="memhub-ui-pages-") as tmp:
        app = build_app(Path(tmp))
        for ws in (A, B):
            app.state.store.create_workspace(ws, exist_ok=True)
        app.state.keys_by_role = {
            "write": create_key(app, A, ["read", "write"]),
            "read": create_key(app, A, ["read"]),
        }
        with TestClient(app):
            yield app


@pytest.fixture
def ui(app: FastAPI) -> Iterator[TestClient]:
    with ui_client(app) as client:
        assert sign_in(client, app.state.keys_by_role["write"]).status_code == 303
        yield client


def location(response: object) -> str:
    headers = response.headers  # type: ignore[attr-defined]
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    return str(headers["location"])


# -- sessions --------------------------------------------------------------------------------


def test_process_a_transcript_read_its_diff_and_commit_it(app: FastAPI, ui: TestClient) -> None:
    token = csrf_of(ui, "/ui/w/alpha/sessions")
    target = location(
        ui.post(
            "/ui/w/alpha/sessions",
            data={"csrf": token, "transcript": TRANSCRIPT, "session_date": "2024-01-15"},
        )
    )
    session_id = target.rsplit("/", 1)[-1]
    assert re.fullmatch(r"ui-\d{8}-\d{6}-[0-9a-f]{6}", session_id), target
    page = ui.get(target)
    assert page.status_code == 200
    assert "memories/people/priya.md" in page.text and 'id="commit"' in page.text
    assert re.search(r'class="add".*Feedzai', page.text)  # a unified diff line per change
    assert "&lt;script&gt;" in page.text
    assert_inert(page.text)
    # staged, not memory yet
    with pytest.raises(FileNotFound):
        app.state.store.stat(A, "memories/people/priya.md")
    listed = ui.get("/ui/w/alpha/sessions").text
    assert session_id in listed

    assert location(ui.post(f"{target}/commit", data={"csrf": token})) == target
    done = ui.get(target).text
    assert 'id="committed"' in done and 'id="commit"' not in done and 'id="discard"' not in done
    head = app.state.store.stat(A, "memories/people/priya.md")
    assert head.session_id == session_id and head.author
    assert session_id not in ui.get("/ui/w/alpha/sessions").text  # staged only by default
    assert session_id in ui.get("/ui/w/alpha/sessions?status=committed").text
    again = ui.post(f"{target}/commit", data={"csrf": token})
    assert again.status_code == 409 and "SESSION_CONFLICT" in again.text


def test_a_conflicting_commit_is_shown_and_loses_nothing(app: FastAPI, ui: TestClient) -> None:
    store = app.state.store
    store.put(A, "memories/people/tomasz.md", b"# Tomasz\n")
    token = csrf_of(ui, "/ui/w/alpha/sessions")
    text = "Met Tomasz at the Krakow office."
    target = location(
        ui.post(
            "/ui/w/alpha/sessions",
            data={"csrf": token, "transcript": text, "session_id": "conflict-1"},
        )
    )
    assert target == "/ui/w/alpha/sessions/conflict-1"
    mine = b"# Tomasz\n\nNotes written meanwhile.\n"
    store.put(A, "memories/people/tomasz.md", mine)
    head = store.head_rev(A)
    response = ui.post(f"{target}/commit", data={"csrf": token})
    assert response.status_code == 409
    assert 'id="conflict"' in response.text and "memories/people/tomasz.md" in response.text
    assert 'id="commit"' in response.text  # the staged edits are still there to act on
    assert store.head_rev(A) == head
    assert store.read_bytes(A, "memories/people/tomasz.md")[1] == mine
    assert app.state.sessions.get(A, "conflict-1").status == "staged"
    assert location(ui.post(f"{target}/discard", data={"csrf": token})) == "/ui/w/alpha/sessions"
    assert ui.get(target).status_code == 404
    assert store.head_rev(A) == head


def test_session_forms_refuse_bad_input_and_missing_csrf(app: FastAPI, ui: TestClient) -> None:
    token = csrf_of(ui, "/ui/w/alpha/sessions")
    bad = [
        ({"csrf": token, "transcript": "hi", "session_id": "../etc"}, 400),
        ({"csrf": token, "transcript": "   "}, 400),
        ({"csrf": token, "transcript": "x", "session_date": "not a date"}, 400),
        ({"csrf": token}, 422),
        ({"csrf": "wrong", "transcript": "Met Ola.", "session_id": "no-csrf"}, 403),
        ({"transcript": "Met Ola.", "session_id": "no-csrf"}, 403),
    ]
    for data, status in bad:
        response = ui.post("/ui/w/alpha/sessions", data=data)
        assert response.status_code == status, (data, response.status_code, response.text[:300])
    assert ui.get("/ui/w/alpha/sessions/no-csrf").status_code == 404
    assert ui.get("/ui/w/alpha/sessions/nope").status_code == 404
    assert ui.get("/ui/w/alpha/sessions/bad%20id").status_code == 400
    assert ui.post("/ui/w/alpha/sessions/nope/commit", data={"csrf": token}).status_code == 404
    assert ui.get("/ui/w/alpha/sessions?status=weird").status_code == 422


# -- items -----------------------------------------------------------------------------------


def test_add_list_filter_search_open_and_delete_items(app: FastAPI, ui: TestClient) -> None:
    token = csrf_of(ui, "/ui/w/alpha/items")
    added = location(
        ui.post(
            "/ui/w/alpha/items",
            data={
                "csrf": token,
                "memory": f"Prefers green tea in the morning. {HOSTILE}",
                "memory_type": "UserMemory",
                "tags": "drinks, morning",
                "source": "chat",
                "session_id": "s-tea",
            },
        )
    )
    assert added.endswith("?added=created")
    ui.post(
        "/ui/w/alpha/items",
        data={"csrf": token, "memory": "Works on the beacon firmware.", "cube": "work"},
    )
    item_page = ui.get(added)
    assert item_page.status_code == 200 and 'id="added"' in item_page.text
    assert "&lt;script&gt;" in item_page.text
    assert_inert(item_page.text)
    for shown in ("UserMemory", "drinks", "morning", "chat", "s-tea", 'id="item-history"'):
        assert shown in item_page.text, shown
    history = re.search(r'href="([^"]+)" id="item-history"', item_page.text)
    assert history and ui.get(history.group(1).replace("&amp;", "&")).status_code == 200

    listing = ui.get("/ui/w/alpha/items").text
    assert "Prefers green tea" in listing and "Works on the beacon" in listing
    assert_inert(listing)
    by_cube = ui.get("/ui/w/alpha/items?cube=work").text
    assert "Works on the beacon" in by_cube and "Prefers green tea" not in by_cube
    by_tag = ui.get("/ui/w/alpha/items?tag=drinks").text
    assert "Prefers green tea" in by_tag and "Works on the beacon" not in by_tag
    by_type = ui.get("/ui/w/alpha/items?type=UserMemory").text
    assert "Prefers green tea" in by_type and "Works on the beacon" not in by_type
    found = ui.get("/ui/w/alpha/items?q=firmware").text
    assert "Works on the beacon" in found and "Prefers green tea" not in found

    # the same fact again updates the item (tags merged)
    again = location(
        ui.post(
            "/ui/w/alpha/items",
            data={
                "csrf": token,
                "memory": "Works on the beacon firmware",
                "cube": "work",
                "tags": "firmware",
            },
        )
    )
    assert again.endswith("?added=updated")
    item_id = again.split("/items/", 1)[1].split("?", 1)[0]
    item = app.state.items.get(A, item_id)
    assert item.tags == ("firmware",) and item.rev > 0
    # a delete names the rev the page showed: a stale one is refused, nothing deleted
    stale = ui.post(f"/ui/w/alpha/items/{item_id}/delete", data={"csrf": token, "rev": "1"})
    assert stale.status_code == 412
    assert app.state.items.get(A, item_id).rev == item.rev
    gone = location(
        ui.post(f"/ui/w/alpha/items/{item_id}/delete", data={"csrf": token, "rev": item.rev})
    )
    assert gone == f"/ui/w/alpha/items?deleted={item_id}"
    assert ui.get(f"/ui/w/alpha/items/{item_id}").status_code == 404
    assert "Works on the beacon" not in ui.get("/ui/w/alpha/items").text


def test_item_forms_refuse_bad_input_and_missing_csrf(app: FastAPI, ui: TestClient) -> None:
    token = csrf_of(ui, "/ui/w/alpha/items")
    before = app.state.store.head_rev(A)
    bad = [
        ({"csrf": token, "memory": "   "}, 400),
        ({"csrf": token, "memory": "x", "cube": "../up"}, 400),
        ({"csrf": token, "memory": "x", "key": "k" * 201}, 422),
        ({"csrf": "wrong", "memory": "forged"}, 403),
        ({"memory": "forged"}, 403),
    ]
    for data, status in bad:
        response = ui.post("/ui/w/alpha/items", data=data)
        assert response.status_code == status, (data, response.status_code, response.text[:300])
    assert app.state.store.head_rev(A) == before
    assert ui.get("/ui/w/alpha/items/not-a-uuid").status_code == 400
    missing = "/ui/w/alpha/items/00000000-0000-0000-0000-000000000000"
    assert ui.get(missing).status_code == 404
    assert ui.post(f"{missing}/delete", data={"csrf": token, "rev": "x"}).status_code == 422
    assert ui.get("/ui/w/alpha/items?offset=-1").status_code == 422


# -- scopes and workspaces --------------------------------------------------------------------


def test_read_only_key_sees_no_write_controls_and_forged_posts_fail(app: FastAPI) -> None:
    items = app.state.items
    from memhub.memory.items import Draft

    (added,) = items.add(A, [Draft(memory="A read-only reader sees me.", cube_id=A)])
    app.state.sessions.process(A, "ro-staged", "Met Ingrid at the Oslo office.")
    before = app.state.store.head_rev(A)
    with ui_client(app) as client:
        assert sign_in(client, app.state.keys_by_role["read"]).status_code == 303
        pages = {
            "/ui/w/alpha/sessions": ('id="process-form"', 'name="transcript"'),
            "/ui/w/alpha/sessions/ro-staged": ('id="commit"', 'id="discard"'),
            "/ui/w/alpha/items": ('id="add-item"', 'name="memory"'),
            f"/ui/w/alpha/items/{added.item.id}": ('id="delete-item"', "/delete"),
        }
        for url, controls in pages.items():
            page = client.get(url)
            assert page.status_code == 200, url
            for control in controls:
                assert control not in page.text, (url, control)
        token = csrf_of(client, "/ui/w/alpha/files/")
        forged = [
            ("/ui/w/alpha/sessions", {"transcript": "Met Ola.", "session_id": "ro-new"}),
            ("/ui/w/alpha/sessions/ro-staged/commit", {}),
            ("/ui/w/alpha/sessions/ro-staged/discard", {}),
            ("/ui/w/alpha/items", {"memory": "forged"}),
            (f"/ui/w/alpha/items/{added.item.id}/delete", {"rev": str(added.item.rev)}),
        ]
        for url, data in forged:
            response = client.post(url, data={**data, "csrf": token})
            assert response.status_code == 403, (url, response.status_code)
    assert app.state.store.head_rev(A) == before
    assert app.state.sessions.get(A, "ro-staged").status == "staged"


def test_another_workspace_is_unreachable_by_url(app: FastAPI, ui: TestClient) -> None:
    from memhub.memory.items import Draft

    (secret,) = app.state.items.add(B, [Draft(memory="Beta's secret item.", cube_id=B)])
    app.state.sessions.process(B, "beta-s", "Met Ingrid at the Oslo office.")
    token = csrf_of(ui, "/ui/w/alpha/items")
    before = app.state.store.head_rev(B)
    for url in (
        "/ui/w/beta/sessions",
        "/ui/w/beta/sessions/beta-s",
        "/ui/w/beta/items",
        f"/ui/w/beta/items/{secret.item.id}",
        f"/ui/w/alpha/items/{secret.item.id}",  # another workspace's id is unknown here
    ):
        response = ui.get(url)
        assert response.status_code == 404, url
        assert "secret item" not in response.text
    for url, data in (
        ("/ui/w/beta/sessions", {"transcript": "x", "session_id": "from-a"}),
        ("/ui/w/beta/sessions/beta-s/commit", {}),
        ("/ui/w/beta/sessions/beta-s/discard", {}),
        ("/ui/w/beta/items", {"memory": "from a"}),
        (f"/ui/w/beta/items/{secret.item.id}/delete", {"rev": str(secret.item.rev)}),
    ):
        assert ui.post(url, data={**data, "csrf": token}).status_code == 404, url
    assert app.state.store.head_rev(B) == before
    assert app.state.sessions.get(B, "beta-s").status == "staged"


def test_navigation_shows_the_new_pages(ui: TestClient) -> None:
    page = ui.get("/ui/w/alpha/items").text
    assert 'href="/ui/w/alpha/sessions"' in page
    assert 'href="/ui/w/alpha/items" aria-current="page"' in page
