"""GET /metrics: Prometheus text, requests counted by route template, writes counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiclient import WS, api_client, assert_error, sha256
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path) as c:
        yield c


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics as {(name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def requests_total(client: TestClient, method: str, route: str, status: str) -> float:
    labels = frozenset({"method": method, "route": route, "status": status}.items())
    return samples(client).get(("memhub_http_requests_total", labels), 0.0)


def revisions_total(client: TestClient, kind: str) -> float:
    return samples(client).get(("memhub_revisions_written_total", frozenset({("kind", kind)})), 0.0)


def test_metrics_is_prometheus_text(client: TestClient) -> None:
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "version=" in response.headers["content-type"]
    text = response.text
    assert "# TYPE memhub_http_requests_total counter" in text
    assert "# TYPE memhub_http_request_duration_seconds histogram" in text
    assert "# TYPE memhub_revisions_written_total counter" in text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "memhub_http_requests",
        "memhub_http_request_duration_seconds",
        "memhub_revisions_written",
        "memhub_bytes_received",
        "memhub_bytes_sent",
    } <= names


def test_requests_are_labelled_by_route_template_and_status(client: TestClient) -> None:
    for name in ["a.txt", "b/c.txt", "d/e/f.txt"]:
        assert client.put(f"/blob/{name}", content=b"x").status_code == 201
    client.put("/blob/a.txt", content=b"y")
    client.get("/blob/a.txt")
    client.get("/blob/missing.txt")
    client.get("/sync")

    assert requests_total(client, "PUT", "/blob/{path:path}", "201") == 3
    assert requests_total(client, "PUT", "/blob/{path:path}", "200") == 1
    assert requests_total(client, "GET", "/blob/{path:path}", "200") == 1
    assert requests_total(client, "GET", "/blob/{path:path}", "404") == 1
    assert requests_total(client, "GET", "/sync", "200") == 1
    # One label per route template, never one per concrete path.
    text = client.get("/metrics").text
    assert 'route="/blob/a.txt"' not in text
    assert "b/c.txt" not in text


def test_v1_routes_use_their_templates(client: TestClient) -> None:
    client.put(f"{WS}/files/notes/a.md", content=b"x")
    client.get(f"{WS}/files/notes/a.md")
    client.get(f"{WS}/changes")
    route = "/v1/workspaces/{workspace}/files/{path:path}"
    assert requests_total(client, "PUT", route, "201") == 1
    assert requests_total(client, "GET", route, "200") == 1
    assert requests_total(client, "GET", "/v1/workspaces/{workspace}/changes", "200") == 1


def test_unmatched_requests_share_one_label(client: TestClient) -> None:
    for url in ["/nope/1", "/nope/2", "/zzz"]:
        assert_error(client.get(url), 404, "NOT_FOUND")
    assert requests_total(client, "GET", "unmatched", "404") == 3
    assert "/nope/1" not in client.get("/metrics").text


def test_errors_are_counted_with_their_status(client: TestClient) -> None:
    client.put("/blob/x", content=b"1", headers={"Content-MD5": "new"})
    client.put("/blob/x", content=b"2", headers={"Content-MD5": "new"})
    client.put("/blob/%2e%2e/x", content=b"3")
    assert requests_total(client, "PUT", "/blob/{path:path}", "412") == 1
    assert requests_total(client, "PUT", "/blob/{path:path}", "400") == 1


def test_revisions_written_increase_with_writes(client: TestClient) -> None:
    assert revisions_total(client, "put") == 0
    client.put("/blob/a.txt", content=b"1")
    client.put("/blob/a.txt", content=b"2")
    client.put(f"{WS}/files/b.txt", content=b"3")
    assert revisions_total(client, "put") == 3
    client.delete("/blob/a.txt")
    client.delete(f"{WS}/files/b.txt")
    assert revisions_total(client, "delete") == 2
    # A refused write is not a revision.
    client.put("/blob/c.txt", content=b"x", headers={"Content-MD5": "0" * 32})
    assert revisions_total(client, "put") == 3


def test_commits_are_counted(client: TestClient) -> None:
    data = b"chunked"
    sha = sha256(data)
    client.put(f"{WS}/chunks/{sha}", content=data)
    manifest = {"path": "c.bin", "sha256": sha, "chunks": [{"sha256": sha, "size": len(data)}]}
    assert client.post(f"{WS}/commits", json=manifest).status_code == 201
    assert revisions_total(client, "commit") == 1


def test_bytes_in_and_out(client: TestClient) -> None:
    before = samples(client)
    client.put("/blob/a.bin", content=b"x" * 1000)
    client.get("/blob/a.bin")
    client.get("/blob/a.bin")
    after = samples(client)
    key_in = ("memhub_bytes_received_total", frozenset())
    key_out = ("memhub_bytes_sent_total", frozenset())
    assert after[key_in] - before.get(key_in, 0.0) == 1000
    assert after[key_out] - before.get(key_out, 0.0) == 2000


def test_latency_histogram_counts_requests(client: TestClient) -> None:
    for _ in range(3):
        client.get("/health")
    count = samples(client)[
        (
            "memhub_http_request_duration_seconds_count",
            frozenset({("method", "GET"), ("route", "/health")}),
        )
    ]
    assert count == 3


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    with api_client(tmp_path / "one") as one:
        one.put("/blob/a.txt", content=b"x")
        with api_client(tmp_path / "two") as two:
            assert revisions_total(two, "put") == 0
        assert revisions_total(one, "put") == 1
