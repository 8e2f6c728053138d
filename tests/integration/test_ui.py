"""The web UI in-process: sessions, CSRF, scopes, tenant isolation, untrusted markdown,
conditional saves and every page answering (the browser flows are in tests/e2e/test_ui_browser.py).

One app per module (two workspaces, keys of every kind); each test signs in with
its own client, so cookies never leak between tests.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from apiclient import build_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from uiclient import create_key, csrf_of, sign_in, ui_client

from memhub.errors import FileNotFound

A, B = "alpha", "beta"


class Tags(HTMLParser):
    """Every tag and attribute of a piece of HTML, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes += [(tag, k.lower(), (v or "").strip()) for k, v in attrs]


SECRET_B = "Quuxbeta-secret-zebra"
HOSTILE = (
    "# Title\n\n"
    "<script>document.title='pwned-script'</script>\n\n"
    "[click](javascript:document.title='pwned-link')\n\n"
    "[upper](JAVASCRIPT:alert(1)) [tab](java\tscript:alert(1)) [data](data:text/html,x)\n\n"
    "<img src=x onerror=\"document.title='pwned-img'\">\n\n"
    '![img](x" onerror="alert(1))\n\n'
    '<a href="javascript:alert(1)">raw link</a> <iframe src="/"></iframe>\n\n'
    '<div style="background:url(javascript:alert(1))" onclick="alert(1)">div</div>\n\n'
    "<javascript:alert(1)>\n"
)


@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    with tempfile.TemporaryDirectory(prefix="memhub-ui-") as tmp:
        app = build_app(Path(tmp))
        store = app.state.store
        for ws in (A, B):
            store.create_workspace(ws, exist_ok=True)
        store.put(A, "notes/plan.md", b"# Plan\n\nfirst draft\n", author="seed")
        store.put(A, "notes/plan.md", b"# Plan\n\nsecond draft\n", author="seed", message="m2")
        store.put(A, "hostile.md", HOSTILE.encode())
        store.put(B, "private/b.md", f"# B\n\n{SECRET_B}\n".encode())
        app.state.keys_by_role = {
            "write": create_key(app, A, ["read", "write"]),
            "read": create_key(app, A, ["read"]),
            "admin": app.state.test_key,
        }
        with TestClient(app):  # run the lifespan once (binds the notifier)
            yield app


@pytest.fixture
def ui(app: FastAPI) -> Iterator[TestClient]:
    with ui_client(app) as client:
        assert sign_in(client, app.state.keys_by_role["write"]).status_code == 303
        yield client


def test_sign_in_sets_a_strict_session_cookie_and_never_shows_the_key(app: FastAPI) -> None:
    key = app.state.keys_by_role["write"]
    with ui_client(app) as client:
        response = sign_in(client, key)
        assert response.status_code == 303
        cookie = next(
            v for k, v in response.headers.multi_items() if k == "set-cookie" and "memhub_ui=" in v
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Secure" not in cookie  # loopback
        assert key not in cookie
        page = client.get("/ui/w/alpha/files/")
        assert page.status_code == 200 and "plan.md" not in page.text  # a directory listing
        assert key not in page.text and key[:12] not in page.text


def test_cookie_is_secure_off_loopback(app: FastAPI) -> None:
    with TestClient(app, base_url="https://memhub.example", follow_redirects=False) as client:
        form = client.get("/ui/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token
        response = client.post(
            "/ui/login", data={"key": app.state.test_key, "login_token": token.group(1)}
        )
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]


def test_bad_key_and_missing_login_token_are_refused(app: FastAPI) -> None:
    with ui_client(app) as client:
        assert sign_in(client, "mh_" + "x" * 40).status_code == 401
        assert "memhub_ui=" not in str(client.cookies)
        forged = client.post("/ui/login", data={"key": app.state.test_key, "login_token": "x"})
        assert forged.status_code == 403
        token = app.state.tokens.issue(subject="ui", workspace=A, scopes=frozenset({"read"}))
        assert sign_in(client, token).status_code == 401  # API keys only: a JWT expires
        assert "memhub_ui=" not in str(client.cookies)


def test_without_a_session_pages_redirect_and_posts_are_refused(app: FastAPI) -> None:
    with ui_client(app) as client:
        page = client.get("/ui/w/alpha/files/")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/login?next=")
        post = client.post("/ui/w/alpha/save", data={"path": "x.md", "content": "x", "base": "new"})
        assert post.status_code == 401
        # a bearer header is an API credential, not a UI session
        bearer = client.get(
            "/ui/w/alpha/files/", headers={"authorization": f"Bearer {app.state.test_key}"}
        )
        assert bearer.status_code == 303
        for cookie in ('memhub_ui="\\x;;;', "memhub_ui=" + "a" * 500, "memhub_ui=;;=="):
            hostile = client.get("/ui/w/alpha/files/", headers={"cookie": cookie})
            assert hostile.status_code == 303, cookie
    with pytest.raises(FileNotFound):
        app.state.store.stat(A, "x.md")


def test_open_redirect_after_sign_in_is_refused(app: FastAPI) -> None:
    with ui_client(app) as client:
        for target in ("//evil.example/", "https://evil.example/", "/ui\\@evil", "/uix"):
            form = client.get("/ui/login?next=//evil.example/x")
            assert 'name="next" value="/ui/"' in form.text
            token = re.search(r'name="login_token" value="([^"]+)"', form.text)
            assert token
            response = client.post(
                "/ui/login",
                data={"key": app.state.test_key, "login_token": token.group(1), "next": target},
            )
            assert response.headers["location"] == "/ui/", target


def test_security_headers_on_every_page(ui: TestClient) -> None:
    for page in ("/ui/login", "/ui/w/alpha/files/", "/ui/w/alpha/file/notes/plan.md"):
        response = ui.get(page)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "<script>" not in response.text  # no inline script, only src= scripts


def test_untrusted_markdown_runs_nothing(ui: TestClient) -> None:
    page = ui.get("/ui/w/alpha/file/hostile.md").text
    rendered = page.split('aria-label="Rendered"', 1)[1].split("</section>", 1)[0]
    tags = Tags()
    tags.feed(rendered)
    assert tags.names <= {"h1", "p", "a", "img"}, tags.names
    for name, attribute, value in tags.attributes:
        assert not attribute.startswith("on") and attribute != "style", (name, attribute)
        if attribute in ("href", "src"):
            scheme = value.split(":", 1)[0].lower() if ":" in value else ""
            assert scheme in ("", "http", "https", "mailto"), (name, attribute, value)
    assert "<h1>Title</h1>" in rendered
    # the raw view shows the text, escaped
    assert "&lt;script&gt;document.title=" in page
    assert page.count("<script") == 2  # our two vendored scripts, nothing else
    raw = ui.get("/ui/w/alpha/raw/hostile.md")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in raw.headers["content-security-policy"]


def test_search_snippets_are_escaped_and_highlighted(app: FastAPI, ui: TestClient) -> None:
    app.state.store.put(A, "xss-search.md", b"# S\n\nzanzibar <b onmouseover=alert(1)>bold</b>\n")
    page = ui.get("/ui/w/alpha/search", params={"q": "zanzibar"}).text
    assert "<mark>zanzibar</mark>" in page
    assert "<b onmouseover" not in page and "&lt;b onmouseover" in page
    filtered = ui.get("/ui/w/alpha/search", params={"q": "zanzibar", "prefix": "notes/"}).text
    assert "xss-search.md" not in filtered


def test_every_page_answers(ui: TestClient) -> None:
    plan = "notes/plan.md"
    for page in (
        "/ui/",
        "/ui/w/alpha/files/",
        "/ui/w/alpha/files/notes/",
        f"/ui/w/alpha/file/{plan}",
        f"/ui/w/alpha/file/{plan}?rev=1",
        f"/ui/w/alpha/history/{plan}",
        f"/ui/w/alpha/diff/{plan}?a=1&b=2",
        f"/ui/w/alpha/diff/{plan}?a=1&b=2&mode=split",
        f"/ui/w/alpha/edit/{plan}",
        "/ui/w/alpha/new",
        "/ui/w/alpha/changes",
        "/ui/w/alpha/changes/feed?since=0",
        "/ui/w/alpha/search?q=draft&kind=markdown&since=2000-01-01&until=2999-01-01",
        "/ui/w/alpha/context?message=plan&depth=wide",
    ):
        response = ui.get(page, follow_redirects=True)
        assert response.status_code == 200, (page, response.text[:500])
    diff = ui.get(f"/ui/w/alpha/diff/{plan}?a=1&b=2").text
    assert "first draft" in diff and "second draft" in diff
    old = ui.get(f"/ui/w/alpha/file/{plan}?rev=1").text
    assert "first draft" in old and "You are looking at rev 1" in old
    history = ui.get(f"/ui/w/alpha/history/{plan}").text
    assert "seed" in history and "m2" in history
    context = ui.get("/ui/w/alpha/context?message=draft%20plan&depth=wide").text
    assert "notes/plan.md" in context and 'id="depths"' in context
    assert context.count("/context/depth?") == 3  # the other depths load beside it
    row = ui.get("/ui/w/alpha/context/depth?message=draft%20plan&depth=deep").text
    assert 'data-depth="deep"' in row and "<html" not in row


def test_files_tree_follows_every_write(app: FastAPI, ui: TestClient) -> None:
    """The listing is cached per workspace head: a write anywhere shows at once."""
    before = ui.get("/ui/w/alpha/files/tree/").text
    assert "leaf.md" not in before
    app.state.store.put(A, "tree/sub/leaf.md", b"12345")
    after = ui.get("/ui/w/alpha/files/tree/").text
    assert "sub/" in after and "1 files" in after
    assert "leaf.md" in ui.get("/ui/w/alpha/files/tree/sub/").text
    app.state.store.delete(A, "tree/sub/leaf.md")
    assert "sub/" not in ui.get("/ui/w/alpha/files/tree/").text
    deleted = ui.get("/ui/w/alpha/files/tree/?deleted=1").text
    assert "/ui/w/alpha/history/tree/sub/leaf.md" in deleted  # where it can be restored


def test_bad_input_gives_an_error_page_not_a_500(ui: TestClient) -> None:
    cases = {
        "/ui/w/alpha/file/nope.md": 404,
        "/ui/w/alpha/file/notes/plan.md?rev=999999": 404,
        "/ui/w/alpha/diff/notes/plan.md?a=1&b=x": 422,
        "/ui/w/alpha/context?message=x&depth=bogus": 400,
        "/ui/w/alpha/search?q=x&since=notadate": 400,
        "/ui/w/alpha/file/..%2F..%2Fetc%2Fpasswd": 400,
        "/ui/w/Bad%20Name/files/": 400,
    }
    for page, status in cases.items():
        response = ui.get(page)
        assert response.status_code in (status, 404 if status == 400 else status), (
            page,
            response.status_code,
        )
        assert "text/html" in response.headers["content-type"]
        assert "error_code" not in response.text or "<code>" in response.text


def test_csrf_is_required_on_every_form(app: FastAPI, ui: TestClient) -> None:
    data = {"path": "csrf.md", "content": "x", "base": "new"}
    assert ui.post("/ui/w/alpha/save", data=data).status_code == 403
    assert ui.post("/ui/w/alpha/save", data={**data, "csrf": "wrong"}).status_code == 403
    token = csrf_of(ui, "/ui/w/alpha/files/")
    cross = ui.post(
        "/ui/w/alpha/save",
        data={**data, "csrf": token},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    for origin in ("https://127.0.0.1.evil.example", "http://127.0.0.1:9", "evil"):
        refused = ui.post(
            "/ui/w/alpha/save", data={**data, "csrf": token}, headers={"origin": origin}
        )
        assert refused.status_code == 403, origin
    behind_tls_proxy = ui.post(
        "/ui/w/alpha/save",
        data={**data, "path": "csrf-proxy.md", "csrf": token},
        headers={"origin": "https://127.0.0.1"},
    )
    assert behind_tls_proxy.status_code == 303
    with pytest.raises(FileNotFound):
        app.state.store.stat(A, "csrf.md")
    assert ui.post("/ui/w/alpha/save", data={**data, "csrf": token}).status_code == 303
    assert app.state.store.read_bytes(A, "csrf.md")[1] == b"x"


def test_read_only_key_sees_no_write_controls_and_forged_posts_fail(app: FastAPI) -> None:
    with ui_client(app) as client:
        assert sign_in(client, app.state.keys_by_role["read"]).status_code == 303
        page = client.get("/ui/w/alpha/file/notes/plan.md").text
        for control in ('id="edit"', "/delete/", "/rename/", "/restore/"):
            assert control not in page, control
        assert "enctype" not in client.get("/ui/w/alpha/files/").text  # no upload form
        assert "/restore/" not in client.get("/ui/w/alpha/history/notes/plan.md").text
        assert "Operations" not in page
        token = csrf_of(client, "/ui/w/alpha/files/")
        head = app.state.store.stat(A, "notes/plan.md")
        forged = [
            ("/ui/w/alpha/save", {"path": "ro.md", "content": "x", "base": "new"}),
            ("/ui/w/alpha/delete/notes/plan.md", {"base": head.sha256}),
            ("/ui/w/alpha/rename/notes/plan.md", {"new_path": "ro2.md", "base": head.sha256}),
            ("/ui/w/alpha/restore/notes/plan.md", {"rev": "1"}),
            ("/ui/w/alpha/ops/keys", {"workspace": A, "scopes": "admin"}),
        ]
        for url, data in forged:
            response = client.post(url, data={**data, "csrf": token})
            assert response.status_code == 403, (url, response.status_code)
        assert client.get("/ui/w/alpha/edit/notes/plan.md").status_code == 403
        assert client.get("/ui/w/alpha/ops").status_code == 403
    assert app.state.store.stat(A, "notes/plan.md").rev == head.rev


def test_another_workspace_is_unreachable_by_url(app: FastAPI, ui: TestClient) -> None:
    token = csrf_of(ui, "/ui/w/alpha/files/")
    before = app.state.store.head_rev(B)
    gets = [
        "/ui/w/beta/files/",
        "/ui/w/beta/files/private/",
        "/ui/w/beta/file/private/b.md",
        "/ui/w/beta/raw/private/b.md",
        "/ui/w/beta/edit/private/b.md",
        "/ui/w/beta/history/private/b.md",
        "/ui/w/beta/diff/private/b.md?a=1&b=1",
        "/ui/w/beta/changes",
        "/ui/w/beta/changes/feed?since=0",
        "/ui/w/beta/search?q=" + SECRET_B,
        "/ui/w/beta/context?message=" + SECRET_B,
        "/ui/w/beta/context/depth?message=" + SECRET_B,
        "/ui/w/beta/files/?deleted=1",
        "/ui/w/beta/ops",
        "/ui/w/alpha/file/" + quote("../beta/private/b.md"),
    ]
    for url in gets:
        response = ui.get(url)
        assert response.status_code in (400, 403, 404), (url, response.status_code)
        assert SECRET_B not in response.text and "private/b.md" not in response.text.replace(
            url, ""
        ), url
    posts = [
        ("/ui/w/beta/save", {"path": "private/b.md", "content": "owned", "base": "new"}),
        ("/ui/w/beta/delete/private/b.md", {"base": "0" * 64}),
        ("/ui/w/beta/restore/private/b.md", {"rev": "1"}),
    ]
    for url, data in posts:
        assert ui.post(url, data={**data, "csrf": token}).status_code == 404, url
    assert app.state.store.head_rev(B) == before
    search = ui.get("/ui/w/alpha/search", params={"q": SECRET_B}).text
    assert SECRET_B not in search.replace(f'value="{SECRET_B}"', "")


def test_conditional_save_shows_both_versions_and_loses_neither(
    app: FastAPI, ui: TestClient
) -> None:
    store = app.state.store
    store.put(A, "conflict.md", b"base\n")
    edit = ui.get("/ui/w/alpha/edit/conflict.md").text
    base = re.search(r'name="base" value="([0-9a-f]{64})"', edit)
    token = re.search(r'name="csrf" value="([^"]+)"', edit)
    assert base and token
    store.put(A, "conflict.md", b"theirs\n", author="agent")  # someone else saves first
    mine = {"path": "conflict.md", "content": "mine\n", "base": base.group(1)}
    response = ui.post("/ui/w/alpha/save", data={**mine, "csrf": token.group(1)})
    assert response.status_code == 409
    assert "theirs" in response.text and "mine" in response.text
    assert store.read_bytes(A, "conflict.md")[1] == b"theirs\n"  # not overwritten
    new_base = re.search(r'name="base" value="([0-9a-f]{64})"', response.text)
    assert new_base and new_base.group(1) == store.stat(A, "conflict.md").sha256
    resolved = {**mine, "content": "theirs\nmine\n", "base": new_base.group(1)}
    assert ui.post("/ui/w/alpha/save", data={**resolved, "csrf": token.group(1)}).status_code == 303
    contents = [
        store.read_bytes(A, "conflict.md", r.rev)[1] for r in store.history(A, "conflict.md")
    ]
    assert contents == [b"theirs\nmine\n", b"theirs\n", b"base\n"]


def test_upload_rename_delete_restore(app: FastAPI, ui: TestClient) -> None:
    store = app.state.store
    token = csrf_of(ui, "/ui/w/alpha/files/")
    up = ui.post(
        "/ui/w/alpha/upload",
        data={"csrf": token, "dir": "up/"},
        files={"file": ("../../evil name.md", b"# uploaded\n", "text/markdown")},
    )
    assert up.status_code == 303, up.text
    assert store.read_bytes(A, "up/evil name.md")[1] == b"# uploaded\n"
    again = ui.post(
        "/ui/w/alpha/upload",
        data={"csrf": token, "dir": "up/"},
        files={"file": ("evil name.md", b"other", "text/plain")},
    )
    assert again.status_code == 412  # create-only unless "overwrite"
    head = store.stat(A, "up/evil name.md")
    moved = ui.post(
        f"/ui/w/alpha/rename/{quote('up/evil name.md')}",
        data={"csrf": token, "new_path": "up/renamed.md", "base": head.sha256},
    )
    assert moved.status_code == 303
    assert store.stat(A, "up/evil name.md", include_deleted=True).deleted
    moved_head = store.stat(A, "up/renamed.md")
    gone = ui.post(
        "/ui/w/alpha/delete/up/renamed.md", data={"csrf": token, "base": moved_head.sha256}
    )
    assert gone.status_code == 303
    assert store.stat(A, "up/renamed.md", include_deleted=True).deleted
    back = ui.post(
        "/ui/w/alpha/restore/up/renamed.md", data={"csrf": token, "rev": str(moved_head.rev)}
    )
    assert back.status_code == 303
    assert store.read_bytes(A, "up/renamed.md")[1] == b"# uploaded\n"
    stale = ui.post(
        "/ui/w/alpha/delete/up/renamed.md", data={"csrf": token, "base": moved_head.sha256}
    )
    assert stale.status_code in (200, 303, 412)


def test_change_feed_fragment_holds_only_newer_changes(app: FastAPI, ui: TestClient) -> None:
    head = app.state.store.head_rev(A)
    app.state.store.put(A, "feed/new.md", b"fresh", author="feeder")
    fragment = ui.get(f"/ui/w/alpha/changes/feed?since={head}").text
    assert "feed/new.md" in fragment and f"since={head + 1}" in fragment
    assert "notes/plan.md" not in fragment
    quiet = ui.get(f"/ui/w/alpha/changes/feed?since={head + 1}").text
    assert "hx-swap-oob" not in quiet


def test_operations_keys_leases_index_fsck(app: FastAPI) -> None:
    with ui_client(app) as client:
        assert sign_in(client, app.state.test_key).status_code == 303
        token = csrf_of(client, "/ui/w/alpha/ops")
        created = client.post(
            "/ui/w/alpha/ops/keys",
            data={"csrf": token, "workspace": A, "scopes": ["read"], "description": "ui-test"},
        )
        assert created.status_code == 200
        key = re.search(r'id="new-key-value">(mh_[^<]+)<', created.text)
        assert key
        assert client.get("/ui/w/alpha/ops").text.count(key.group(1)) == 0  # shown once
        record = next(k for k in app.state.keys.list(A) if k.description == "ui-test")
        revoked = client.post(f"/ui/w/alpha/ops/keys/{record.id}/revoke", data={"csrf": token})
        assert revoked.status_code == 303 and app.state.keys.get(record.id).revoked
        app.state.store.leases.acquire(A, "ui-lease", "holder-1", 60)
        page = client.get("/ui/w/alpha/ops").text
        assert "ui-lease" in page and "holder-1" in page and "HTTP requests" in page
        released = client.post("/ui/w/alpha/ops/leases/ui-lease/release", data={"csrf": token})
        assert released.status_code == 303
        assert not app.state.store.leases.get(A, "ui-lease").active(app.state.store.clock())
        rebuilt = client.post("/ui/w/alpha/ops/index/rebuild", data={"csrf": token})
        assert rebuilt.status_code == 200 and "Rebuilt:" in rebuilt.text
        checked = client.post("/ui/w/alpha/ops/fsck", data={"csrf": token, "verify": "true"})
        assert checked.status_code == 200 and "OK:" in checked.text


def test_revoking_the_key_ends_its_sessions_and_sign_out_ends_one(app: FastAPI) -> None:
    key, record = app.state.keys.create(A, ["read"], description="short-lived")
    with ui_client(app) as client:
        assert sign_in(client, key).status_code == 303
        assert client.get("/ui/w/alpha/files/").status_code == 200
        app.state.keys.revoke(record.id)
        app.state.keys._cache.clear()  # the key cache's few seconds, elapsed
        assert client.get("/ui/w/alpha/files/").status_code == 303
    with ui_client(app) as client:
        assert sign_in(client, app.state.keys_by_role["read"]).status_code == 303
        token = csrf_of(client, "/ui/w/alpha/files/")
        cookie = client.cookies.get("memhub_ui")
        assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
        client.cookies.set("memhub_ui", cookie or "", path="/ui")
        assert client.get("/ui/w/alpha/files/").status_code == 303  # the old id is dead


def test_ui_requests_are_rate_limited(tmp_path: Path) -> None:
    app = build_app(tmp_path, rate_limit_enabled=True, rate_limit=5, rate_limit_scopes="")
    with ui_client(app) as client:
        statuses = [client.get("/ui/login").status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and statuses[-1] == 429
