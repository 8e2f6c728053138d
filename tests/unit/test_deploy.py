"""The deployment files, checked without Docker (no engine or registry here).

``deploy/docker-compose.yml`` against the Compose specification's JSON schema, then what
a schema cannot know about memhub; the ``Dockerfile``'s shape; the Caddyfile's upstreams.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from memhub.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NODES = ("memhub-1", "memhub-2")
ONE_SHOT = {"minio-init"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_matches_the_compose_schema(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_a_broken_compose_file_is_caught() -> None:
    """The schema check can fail: a typo'd key and a bad depends_on condition are errors."""
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    bad = {
        "services": {
            "a": {"image": "x", "healthchek": {"test": ["CMD", "true"]}},
            "b": {"image": "x", "depends_on": {"a": {"condition": "healthy"}}},
        }
    }
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(bad))


def memhub_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service]["environment"]
    assert isinstance(env, dict)
    return {str(k): str(v) for k, v in env.items()}


def test_nodes_use_real_settings_and_match(compose: dict[str, Any]) -> None:
    known = {f"MEMHUB_{name.upper()}" for name in Settings.model_fields}
    envs = {node: memhub_env(compose, node) for node in NODES}
    for node, env in envs.items():
        unknown = sorted(k for k in env if k.startswith("MEMHUB_") and k not in known)
        assert not unknown, f"{node}: not memhub settings: {unknown}"
        for required in ("MEMHUB_DATABASE_URL", "MEMHUB_BLOB_URL", "MEMHUB_REDIS_URL",
                         "MEMHUB_JWT_SECRET", "MEMHUB_MASTER_KEY_HASH", "MEMHUB_HOST",
                         "MEMHUB_TRUSTED_PROXIES", "MEMHUB_NODE_ID"):  # fmt: skip
            assert env.get(required), f"{node} lacks {required}"
        assert env["MEMHUB_DATABASE_URL"].startswith("postgresql://")
        assert env["MEMHUB_BLOB_URL"].startswith("s3://")
    one, two = (dict(envs[n]) for n in NODES)
    assert one.pop("MEMHUB_NODE_ID") != two.pop("MEMHUB_NODE_ID")
    assert one == two  # the same secret, database, bucket and Redis on both
    # the trusted proxy is the load balancer's pinned address
    caddy_ip = compose["services"]["caddy"]["networks"]["backend"]["ipv4_address"]
    assert envs[NODES[0]]["MEMHUB_TRUSTED_PROXIES"] == f"{caddy_ip}/32"


def test_services_are_wired_and_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for target in service.get("depends_on") or {}:
            assert target in services, f"{name} depends on unknown {target}"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name}: volume {source} not declared"
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no health check"
            assert service.get("restart") == "unless-stopped", name
    published = [name for name, s in services.items() if s.get("ports")]
    assert published == ["caddy"], "only the load balancer publishes a port"
    for node in NODES:
        conditions = {k: v["condition"] for k, v in services[node]["depends_on"].items()}
        assert conditions == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "minio-init": "service_completed_successfully",
        }
        assert "/health" in " ".join(services[node]["healthcheck"]["test"])
    # each node keeps its own index volume
    mounts = {node: services[node]["volumes"][0].split(":")[0] for node in NODES}
    assert len(set(mounts.values())) == len(NODES)
    # the bucket gets versioning (the blob half of backups)
    assert "mc version enable" in " ".join(services["minio-init"]["entrypoint"])


def test_required_variables_are_documented(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = (DEPLOY / ".env.example").read_text()
    readme = (DEPLOY / "README.md").read_text()
    for name in required:
        assert re.search(rf"^{name}=", example, re.M), f"{name} missing from .env.example"
    for name in ("MEMHUB_JWT_SECRET", "MEMHUB_MASTER_KEY_HASH", "MEMHUB_TRUSTED_PROXIES",
                 "MEMHUB_CORS_ORIGINS"):  # fmt: skip
        assert name in readme


def test_caddy_balances_the_two_nodes() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert upstreams.group(1).split() == [f"{node}:8000" for node in NODES]
    assert "health_uri /health" in caddyfile


def test_dockerfile_is_multi_stage_slim_non_root_with_a_health_check() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage"
    assert all("slim" in stage for stage in stages)
    final = lines[lines.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [line for line in final if line.upper().startswith("HEALTHCHECK ")]
    assert len(health) == 1 and "/health" in health[0]
    assert any(line.startswith("ENTRYPOINT") and "serve" in line for line in final)
    assert "EXPOSE 8000" in final
    # nothing from the build stage but the wheels reaches the runtime
    assert not any(line.startswith("COPY") for line in final)
