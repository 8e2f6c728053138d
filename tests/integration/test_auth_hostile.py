"""Hostile credentials: malformed and oversized headers, bytes that are not ASCII,
credentials that disagree, forged JWTs, the internal-service header.

Every one of them is a 401 (a 400 only when Authorization and X-API-Key name two
different credentials): never a 500, never a pass, always the JSON error body,
and ``WWW-Authenticate`` on every 401. Requests go straight to the ASGI app with
raw header bytes, so nothing between the test and the app normalises them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from apiclient import build_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memhub.auth.keys import generate_key
from raw_asgi import RawResponse, asgi_call

SECRET = "test-jwt-secret-" + "x" * 60  # ≥ 64 bytes: PyJWT warns below that for HS512
INTERNAL = "internal-service-secret-0123456789"
TARGET = "/v1/workspaces/default"  # any route that needs a read key of "default"


def assert_refused(result: RawResponse, status: int = 401) -> dict[str, Any]:
    code, headers, body = result
    assert code == status, (code, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)
    assert {"detail", "error_code"} <= error.keys(), error
    assert isinstance(error["detail"], str) and error["detail"], error
    if status == 401:
        assert error["error_code"] == "UNAUTHORIZED", error
        assert headers.get("www-authenticate", "").startswith("Bearer"), headers
    return dict(error)


def bearer(credential: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {credential}".encode())]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """One app for the module: nothing here changes what another test sees (the tests
    that revoke keys revoke keys of their own)."""
    return build_app(tmp_path_factory.mktemp("hostile"), jwt_secret=SECRET, key_cache_seconds=0)


@pytest.fixture(scope="module")
def key(app: FastAPI) -> str:
    """An admin key of ``default`` (what build_app made)."""
    return str(app.state.test_key)


def test_the_good_key_passes(app: FastAPI, key: str) -> None:
    """The baseline every refusal below is measured against."""
    for headers in (
        bearer(key),
        [(b"authorization", f"Token {key}".encode())],
        [(b"authorization", f"bearer {key}".encode())],  # the scheme is case-insensitive
        [(b"authorization", f"BEARER {key}".encode())],  # (ASGI names are lowercase)
        [(b"x-api-key", key.encode())],
        [(b"authorization", f"Bearer {key}".encode()), (b"x-api-key", key.encode())],
    ):
        status, _, body = asgi_call(app, "GET", TARGET, headers)
        assert status == 200, (headers, body)


# -- malformed Authorization / X-API-Key ------------------------------------------------


def malformed(key: str) -> dict[str, list[tuple[bytes, bytes]]]:
    """Each carries the good key (where it can), so only the form is wrong."""
    return {
        "no scheme": [(b"authorization", key.encode())],
        "unknown scheme": [(b"authorization", f"Basic {key}".encode())],
        "basic credentials": [
            (b"authorization", b"Basic " + base64.b64encode(f"admin:{key}".encode()))
        ],
        "scheme glued on": [(b"authorization", f"Bearer{key}".encode())],
        "empty": [(b"authorization", b"")],
        "blank": [(b"authorization", b"   ")],
        "two spaces": [(b"authorization", f"Bearer  {key}".encode())],
        "two credentials": [(b"authorization", f"Bearer {key} {key}".encode())],
        "tab": [(b"authorization", f"Bearer\t{key}".encode())],
        "bearer only": [(b"authorization", b"Bearer")],
        "bearer and a space": [(b"authorization", b"Bearer ")],
        "token only": [(b"authorization", b"Token")],
        "newline inside": [(b"authorization", f"Bearer {key[:10]}\n{key[10:]}".encode())],
        "NUL inside": [(b"authorization", f"Bearer {key}\x00".encode())],
        "oversized (9 KiB)": [(b"authorization", b"Bearer " + b"a" * 9 * 1024)],
        "oversized key-like (9 KiB)": [(b"authorization", f"Bearer {key}".encode() + b"A" * 9216)],
        "oversized (1 MiB)": [(b"authorization", b"Bearer mh_" + b"a" * 1024 * 1024)],
        "oversized X-API-Key": [(b"x-api-key", b"mh_" + b"a" * 9 * 1024)],
        "empty X-API-Key": [(b"x-api-key", b"")],
        "key cut short": [(b"authorization", f"Bearer {key[:-1]}".encode())],
        "key one longer": [(b"authorization", f"Bearer {key}A".encode())],
        "key in another case": [(b"authorization", f"Bearer {key.upper()}".encode())],
        "prefix only": [(b"authorization", f"Bearer {key[:11]}".encode())],
        "unknown key": [(b"authorization", f"Bearer {generate_key()}".encode())],
        "not a key": [(b"authorization", b"Bearer hunter2")],
        "dots but no JWT": [(b"authorization", b"Bearer a.b.c")],
        "many dots": [(b"authorization", b"Bearer ....")],
    }


@pytest.mark.parametrize("case", list(malformed("mh_x")))
def test_malformed_credentials_are_401(app: FastAPI, key: str, case: str) -> None:
    assert_refused(asgi_call(app, "GET", TARGET, malformed(key)[case]))


@pytest.mark.parametrize("case", ["two spaces", "oversized (9 KiB)", "empty", "no scheme"])
def test_malformed_credentials_are_401_on_public_and_credential_routes(
    app: FastAPI, key: str, case: str
) -> None:
    """A bad credential is refused even where none is needed (/metrics, /auth/*); the
    exempt routes (/health, /docs, /openapi.json) never look at credentials."""
    headers = malformed(key)[case]
    for path in ("/metrics", "/auth/token", "/auth/github", "/nonexistent"):
        assert_refused(asgi_call(app, "POST" if path.startswith("/auth") else "GET", path, headers))
    for path in ("/health", "/openapi.json", "/docs"):
        assert asgi_call(app, "GET", path, headers)[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer mh_" + "é".encode("latin-1") * 43)],
        [(b"authorization", b"Bearer mh_" + "ключ".encode())],  # UTF-8 bytes
        [(b"authorization", "Bearer mh_ÿ".encode("latin-1"))],
        [(b"authorization", "Bеarer mh_abc".encode())],  # Cyrillic е in the scheme
        [(b"x-api-key", b"mh_\xff\xfe\x80" + b"a" * 40)],
        [(b"x-api-key", "mh_клю".encode())],
        [(b"authorization", b"Bearer \xc3\xa9.\xc3\xa9.\xc3\xa9")],  # a "JWT" of UTF-8
    ],
    ids=[
        "latin-1",
        "utf-8",
        "y-umlaut",
        "cyrillic-scheme",
        "x-api-key-bytes",
        "x-api-key-utf8",
        "jwt",
    ],
)
def test_non_ascii_credentials_are_401(app: FastAPI, headers: list[tuple[bytes, bytes]]) -> None:
    assert_refused(asgi_call(app, "GET", TARGET, headers))


def test_non_ascii_next_to_a_good_key_is_still_refused(app: FastAPI, key: str) -> None:
    status, _, _ = asgi_call(
        app,
        "GET",
        TARGET,
        [(b"authorization", f"Bearer {key}".encode()), (b"x-api-key", b"mh_\xe9")],
    )
    assert status in (400, 401)


def test_disagreeing_credentials_are_400(app: FastAPI, key: str) -> None:
    other = app.state.keys.create("default", ["read"])[0]
    for second in (other, generate_key(), "garbage"):
        error = assert_refused(
            asgi_call(
                app,
                "GET",
                TARGET,
                [(b"authorization", f"Bearer {key}".encode()), (b"x-api-key", second.encode())],
            ),
            400,
        )
        assert error["error_code"] == "BAD_REQUEST"
        assert "disagree" in error["detail"]
    # the same key twice is one credential
    both = [(b"authorization", f"Bearer {other}".encode()), (b"x-api-key", other.encode())]
    assert asgi_call(app, "GET", TARGET, both)[0] == 200


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from([b"authorization", b"x-api-key", b"x-internal-service"]),
    value=st.binary(max_size=300)
    | st.text(max_size=120).map(lambda t: t.encode("utf-8"))
    | st.builds(lambda t: b"Bearer " + t.encode("utf-8"), st.text(max_size=120))
    | st.builds(lambda t: b"Bearer mh_" + t.encode("utf-8"), st.text(max_size=60)),
)
@example(name=b"authorization", value=b"Bearer \x00")
@example(name=b"authorization", value=b"Bearer eyJ.eyJ.")
@example(name=b"authorization", value=b"Token ..")
def test_random_credentials_never_pass_and_never_500(
    app: FastAPI, name: bytes, value: bytes
) -> None:
    status, headers, body = asgi_call(app, "GET", TARGET, [(name, value)])
    if name == b"x-internal-service":  # ignored: no secret is configured
        assert status == 401
    else:
        assert status in (400, 401), (value, status, body)
    assert {"detail", "error_code"} <= json.loads(body).keys()
    if status == 401:
        assert "www-authenticate" in headers


# -- forged JWTs ------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A JWT signed by hand (PyJWT refuses to use a PEM public key as an HMAC secret)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims_for(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "memhub",
        "sub": "key:forged",
        "ws": "default",
        "scopes": ["read", "write", "admin"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def issued(app: FastAPI) -> Iterator[tuple[TestClient, str, str]]:
    """(client, a read-only key of default, a real token of that key)."""
    key, _ = app.state.keys.create("default", ["read"])
    client = TestClient(app)  # no lifespan: the module's app outlives this test
    response = client.post("/auth/token", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    yield client, key, response.json()["access_token"]


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def forgeries(real: str) -> dict[str, str]:
    private = rsa_key()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload, signature = real.split(".")
    real_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    escalated = {**real_claims, "scopes": ["read", "write", "admin"]}
    claims = claims_for()
    body = b64url(json.dumps(claims).encode())
    none = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    none_title = b64url(json.dumps({"alg": "None"}).encode())
    return {
        "alg none": f"{none}.{body}.",
        "alg none with a signature": f"{none}.{payload}.{signature}",
        "alg None (case)": f"{none_title}.{body}.",
        "RS256 (own RSA key)": jwt.encode(claims, private_pem, algorithm="RS256"),
        "HS256 keyed with the RSA public key": hand_signed(
            {"alg": "HS256", "typ": "JWT"}, claims, public_pem
        ),
        "HS256 keyed with the public key, alg RS256": hand_signed(
            {"alg": "RS256", "typ": "JWT"}, claims, public_pem
        ),
        "HS512 with the real secret": jwt.encode(claims, SECRET, algorithm="HS512"),
        "HS384 with the real secret": jwt.encode(claims, SECRET, algorithm="HS384"),
        "HS256 with another secret": jwt.encode(claims, "another-secret-" + "y" * 60, "HS256"),
        "tampered payload, original signature": (
            f"{header}.{b64url(json.dumps(escalated).encode())}.{signature}"
        ),
        "tampered workspace, original signature": (
            f"{header}.{b64url(json.dumps({**real_claims, 'ws': 'other'}).encode())}.{signature}"
        ),
        "signature of another token": f"{header}.{payload}.{b64url(b'x' * 32)}",
        "signature stripped": f"{header}.{payload}.",
        "expired": jwt.encode(
            claims_for(iat=int(time.time()) - 7200, exp=int(time.time()) - 60), SECRET, "HS256"
        ),
        "no exp": jwt.encode(claims_for(exp=None), SECRET, "HS256"),
        "no iat": jwt.encode(claims_for(iat=None), SECRET, "HS256"),
        "no sub": jwt.encode(claims_for(sub=None), SECRET, "HS256"),
        "wrong issuer": jwt.encode(claims_for(iss="evil"), SECRET, "HS256"),
        "no issuer": jwt.encode(claims_for(iss=None), SECRET, "HS256"),
        "issued in the future": jwt.encode(
            claims_for(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200), SECRET, "HS256"
        ),
        "not before in the future": jwt.encode(
            claims_for(nbf=int(time.time()) + 3600), SECRET, "HS256"
        ),
        "workspace not a string": jwt.encode(claims_for(ws=["default"]), SECRET, "HS256"),
        "scopes not a list": jwt.encode(claims_for(scopes="admin"), SECRET, "HS256"),
        "key that never existed": jwt.encode(claims_for(kid="0123456789abcdef"), SECRET, "HS256"),
        "garbage segments": "eyJhbGciOiJIUzI1NiJ9.!!!.???",
        "header not JSON": f"{b64url(b'not json')}.{payload}.{signature}",
        "payload an array": hand_signed({"alg": "HS256"}, [1, 2], SECRET.encode()),  # type: ignore[arg-type]
    }


def test_forged_tokens_are_401(issued: tuple[TestClient, str, str]) -> None:
    client, _key, real = issued
    assert client.get(TARGET, headers={"authorization": f"Bearer {real}"}).status_code == 200
    problems = []
    for case, token in forgeries(real).items():
        for headers in ({"authorization": f"Bearer {token}"}, {"x-api-key": token}):
            response = client.get(TARGET, headers=headers)
            if response.status_code != 401:
                problems.append(f"{case}: {response.status_code} {response.text[:200]}")
            elif not (
                {"detail", "error_code"} <= response.json().keys()
                and response.headers["www-authenticate"].startswith("Bearer")
            ):
                problems.append(f"{case}: 401 without the error body or WWW-Authenticate")
    assert not problems, "\n".join(problems)


def test_tampered_token_does_not_escalate(issued: tuple[TestClient, str, str]) -> None:
    """The real token of a read-only key may read and may not write."""
    client, _key, real = issued
    h = {"authorization": f"Bearer {real}"}
    assert client.get(TARGET, headers=h).status_code == 200
    assert client.put(f"{TARGET}/files/x.txt", content=b"x", headers=h).status_code == 403
    assert client.get("/admin/keys", headers=h).status_code == 403


def test_token_of_a_revoked_key_is_401(app: FastAPI, issued: tuple[TestClient, str, str]) -> None:
    client, key, real = issued
    h = {"authorization": f"Bearer {real}"}
    assert client.get(TARGET, headers=h).status_code == 200
    record = next(k for k in app.state.keys.list("default") if key.startswith(k.prefix))
    app.state.keys.revoke(record.id)
    response = client.get(TARGET, headers=h)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


# -- X-Internal-Service -----------------------------------------------------------------


def test_internal_service_header_is_ignored_without_a_secret(app: FastAPI, key: str) -> None:
    for value in (b"", b"true", b"1", INTERNAL.encode(), b"memhub"):
        assert_refused(asgi_call(app, "GET", TARGET, [(b"x-internal-service", value)]))
        assert_refused(asgi_call(app, "GET", "/admin/health", [(b"x-internal-service", value)]))
    # next to a read-only key it adds nothing
    reader = app.state.keys.create("default", ["read"])[0]
    headers = [*bearer(reader), (b"x-internal-service", b"true")]
    assert asgi_call(app, "GET", TARGET, headers)[0] == 200
    assert asgi_call(app, "GET", "/admin/health", headers)[0] == 403
    status, _, _ = asgi_call(app, "PUT", f"{TARGET}/files/x.txt", headers, body=b"x")
    assert status == 403


@pytest.fixture(scope="module")
def internal_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return build_app(tmp_path_factory.mktemp("internal"), internal_service_secret=INTERNAL)


def test_internal_service_with_the_exact_secret(internal_app: FastAPI) -> None:
    headers = [(b"x-internal-service", INTERNAL.encode())]
    assert asgi_call(internal_app, "GET", TARGET, headers)[0] == 200
    status, _, body = asgi_call(internal_app, "GET", "/admin/health", headers)
    assert status == 200
    assert json.loads(body)["internal_service_configured"] is True


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"wrong",
        INTERNAL[:-1].encode(),
        (INTERNAL + "x").encode(),
        INTERNAL.upper().encode(),
        b" " + INTERNAL.encode() + b"x",
        INTERNAL.encode()[:-1] + b"\xe9",
        b"\xff" * 40,
    ],
    ids=["empty", "wrong", "prefix", "longer", "upper", "padded", "latin-1", "bytes"],
)
def test_internal_service_with_a_wrong_secret_is_401(internal_app: FastAPI, value: bytes) -> None:
    assert_refused(asgi_call(internal_app, "GET", TARGET, [(b"x-internal-service", value)]))
    # a wrong secret is not waved through because a good key rides along
    good = [*bearer(internal_app.state.test_key), (b"x-internal-service", value)]
    assert_refused(asgi_call(internal_app, "GET", TARGET, good))


def test_internal_service_secret_never_works_as_a_key(internal_app: FastAPI) -> None:
    for headers in (bearer(INTERNAL), [(b"x-api-key", INTERNAL.encode())]):
        assert_refused(asgi_call(internal_app, "GET", TARGET, headers))
