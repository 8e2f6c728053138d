"""``memhub keys`` and the authentication side of ``memhub serve``, as a user runs
them: real processes on real data dirs.

- a key made with ``memhub keys create`` works against a server on that data dir,
  whether the server starts after or is already running;
- ``keys list`` never prints key material; ``keys revoke`` shuts a key out at once
  (the server runs with ``MEMHUB_KEY_CACHE_SECONDS=0``);
- off loopback, ``serve`` refuses without a strong ``MEMHUB_JWT_SECRET`` and without
  any way to authenticate; on loopback it creates ``admin.key`` (mode 0600) once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MEMHUB, free_port

pytestmark = pytest.mark.e2e

KEY_MATERIAL = re.compile(r"mh_[A-Za-z0-9_-]{43}")
NO_CACHE = {"MEMHUB_KEY_CACHE_SECONDS": "0"}
STRONG = "s3cr3t-" + "k" * 40


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keys_json(memhub_cli: Any, *args: str | Path) -> Any:
    result = memhub_cli("keys", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def get(server: Any, url: str, key: str) -> int:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        return http.get(url, headers=bearer(key)).status_code


def test_key_created_before_the_server_starts(
    memhub_cli: Any, memhub_server: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    made = keys_json(
        memhub_cli, "create", "--workspace", "team", "--scopes", "read,write", "--data-dir", data
    )
    assert KEY_MATERIAL.fullmatch(made["key"])
    assert (made["workspace"], made["scopes"], made["expires_at"]) == (
        "team",
        ["read", "write"],
        None,
    )
    # plain output: the key alone on stdout, the note on stderr
    plain = memhub_cli(
        "keys", "create", "--workspace", "ops", "--scopes", "read", "--admin",
        "--expires-in-days", "2", "--description", "ops laptop", "--data-dir", data,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    admin_key = plain.stdout.strip()
    assert KEY_MATERIAL.fullmatch(admin_key), plain.stdout
    assert "not shown again" in " ".join(plain.stderr.split())

    server = memhub_server(data_dir=data, env=NO_CACHE)
    key = made["key"]
    assert get(server, "/v1/workspaces/team", key) == 200
    with httpx.Client(base_url=server.base_url, timeout=30, headers=bearer(key)) as http:
        assert http.put("/v1/workspaces/team/files/a.md", content=b"hi").status_code == 201
        assert http.get("/blob/a.md").content == b"hi"  # its own workspace on the seed routes
        assert http.get("/v1/workspaces/default").json()["error_code"] == "WORKSPACE_NOT_FOUND"
        assert http.get("/admin/keys").status_code == 403
    # --admin adds the admin scope; --expires-in-days sets the expiry
    assert get(server, "/admin/health", admin_key) == 200
    assert get(server, "/v1/workspaces/team", admin_key) == 200
    listed = {k["prefix"]: k for k in keys_json(memhub_cli, "list", "--data-dir", data)}
    ops = listed[admin_key[:11]]
    assert ops["scopes"] == ["admin", "read"]
    assert ops["description"] == "ops laptop"
    assert abs(ops["expires_at"] - (time.time() + 2 * 86400)) < 600


def test_create_list_revoke_while_the_server_runs(
    memhub_cli: Any, memhub_server: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = memhub_server(data_dir=data, env=NO_CACHE)
    made = keys_json(memhub_cli, "create", "--workspace", "live", "--data-dir", data)
    key = made["key"]
    assert get(server, "/v1/workspaces/live", key) == 200  # the running server sees it
    assert get(server, "/v1/workspaces/default", key) == 404

    listing = memhub_cli("keys", "list", "--data-dir", data, "--json")
    assert listing.returncode == 0, listing.stderr
    assert not KEY_MATERIAL.search(listing.stdout), "keys list printed a key"
    everyone = [key, server.key]
    for secret in everyone:
        assert secret not in listing.stdout
        assert hashlib.sha256(secret.encode()).hexdigest() not in listing.stdout
    records = json.loads(listing.stdout)
    assert {(r["workspace"], r["revoked"]) for r in records} == {
        ("live", False),
        ("default", False),
    }
    table = memhub_cli("keys", "list", "--workspace", "live", "--data-dir", data)
    assert table.returncode == 0 and not KEY_MATERIAL.search(table.stdout + table.stderr)

    revoked = keys_json(memhub_cli, "revoke", made["id"], "--data-dir", data)
    assert revoked["revoked"] is True
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.get("/v1/workspaces/live", headers=bearer(key))
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/v1/workspaces/default", headers=server.auth).status_code == 200
    unknown = memhub_cli("keys", "revoke", "0000000000000000", "--data-dir", data)
    assert unknown.returncode != 0
    assert "no API key" in unknown.stderr


def test_bad_key_requests_fail_cleanly(memhub_cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for args in (
        ["--workspace", "../etc"],
        ["--workspace", "w", "--scopes", "root"],
        ["--workspace", "w", "--expires-in-days", "0"],
    ):
        result = memhub_cli("keys", "create", *args, "--data-dir", data)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr
        assert not KEY_MATERIAL.search(result.stdout)


def refusal(memhub_cli: Any, data: Path, env: dict[str, str]) -> str:
    port = free_port()
    try:
        result = memhub_cli(
            "serve", "--host", "0.0.0.0", "--port", str(port), "--data-dir", data,
            env=env, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("memhub serve started on 0.0.0.0 when it should have refused")
    assert result.returncode != 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    "secret",
    [None, "changeme", "x" * 31],
    ids=["unset", "changeme", "31-chars"],
)
def test_serve_off_loopback_refuses_a_missing_or_weak_secret(
    memhub_cli: Any, tmp_path: Path, secret: str | None
) -> None:
    env = {} if secret is None else {"MEMHUB_JWT_SECRET": secret}
    message = refusal(memhub_cli, tmp_path / "data", env)
    assert "refusing to bind" in message
    assert "MEMHUB_JWT_SECRET" in message
    assert not (tmp_path / "data").exists(), "it opened a store before refusing"


def test_serve_off_loopback_refuses_with_no_way_to_authenticate(
    memhub_cli: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    message = refusal(memhub_cli, data, {"MEMHUB_JWT_SECRET": STRONG})
    assert "no way to authenticate" in message
    assert not (data / "admin.key").exists()
    # a revoked key is no way to authenticate either
    made = keys_json(memhub_cli, "create", "--workspace", "w", "--data-dir", data)
    keys_json(memhub_cli, "revoke", made["id"], "--data-dir", data)
    assert "no way to authenticate" in refusal(memhub_cli, data, {"MEMHUB_JWT_SECRET": STRONG})


def test_serve_off_loopback_starts_with_a_key(
    memhub_cli: Any, tmp_path: Path, child_home: Path
) -> None:
    """The refusals above are about the missing pieces: with a strong secret and a key
    it serves (on every address), and leaves no admin.key behind."""
    data = tmp_path / "data"
    key = keys_json(memhub_cli, "create", "--workspace", "w", "--data-dir", data)["key"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env.update(HOME=str(child_home), MEMHUB_JWT_SECRET=STRONG, MEMHUB_RATE_LIMIT_ENABLED="false")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MEMHUB), "serve", "--host", "0.0.0.0", "--port", str(port), "--data-dir", data],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        status = None
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    status = http.get("/v1/workspaces/w", headers=bearer(key)).status_code
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert status == 200, log.read_text()
            assert http.get("/v1/workspaces/w").status_code == 401
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert not (data / "admin.key").exists()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_on_loopback_creates_the_admin_key_once(
    memhub_server: Any, memhub_cli: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = memhub_server(data_dir=data)
    key_file = data / "admin.key"
    assert mode(key_file) == 0o600
    assert mode(data / "jwt.secret") == 0o600
    key = first.key
    assert KEY_MATERIAL.fullmatch(key)
    assert f"created a local admin key: cat {key_file}" in " ".join(first.log().split())
    assert get(first, "/admin/health", key) == 200
    first.stop()

    second = memhub_server(data_dir=data)
    assert second.key == key, "a restart made a new admin key"
    assert mode(key_file) == 0o600
    assert "created a local admin key" not in second.log()
    assert get(second, "/admin/health", key) == 200
    second.stop()
    records = keys_json(memhub_cli, "list", "--data-dir", data)
    assert [r["prefix"] for r in records] == [key[:11]]
    assert records[0]["scopes"] == ["admin", "read", "write"]

    # a revoked local key is replaced on the next start (and the old one stays out)
    keys_json(memhub_cli, "revoke", records[0]["id"], "--data-dir", data)
    third = memhub_server(data_dir=data, env=NO_CACHE)
    assert third.key != key
    assert mode(key_file) == 0o600
    assert get(third, "/admin/health", third.key) == 200
    assert get(third, "/admin/health", key) == 401
