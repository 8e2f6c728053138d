"""The client does not import the server: the CLI, sync and client modules load without
SQLAlchemy, tantivy, boto3 or FastAPI (start-up is a feature)."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_LIBRARIES = ("sqlalchemy", "tantivy", "boto3", "botocore", "fastapi", "alembic")
CLIENT_MODULES = (
    "memhub.cli.main",
    "memhub.cli.common",
    "memhub.cli.sync",
    "memhub.cli.files",
    "memhub.cli.memory",
    "memhub.cli.db",
    "memhub.cli.hooks",
    "memhub.cli.lease",
    "memhub.client",
    "memhub.sync.folder",
    "memhub.sync.dbsync",
    "memhub.sync.dbpull",
    "memhub.sync.hooks",
    "memhub.sync.doctor",
    "memhub.core.paths",
    "memhub.core.durable",
    "memhub.core.models",
)


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``code``."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\nimport sys, json\n{listing}"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_client_modules_do_not_import_the_server() -> None:
    loaded = loaded_after("\n".join(f"import {module}" for module in CLIENT_MODULES))
    assert "memhub" in loaded
    assert not loaded & set(SERVER_LIBRARIES), f"the client loads {loaded & set(SERVER_LIBRARIES)}"


def test_the_cli_entry_point_imports_almost_nothing() -> None:
    """``memhub --help`` and ``memhub version`` load only typer's stack, not memhub's
    command modules, pydantic-settings, httpx or rich's tables."""
    loaded = loaded_after("import memhub.cli.main")
    assert not loaded & {"httpx", "pydantic_settings", "httpcore", *SERVER_LIBRARIES}
    modules = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, memhub.cli.main\n"
            "print(sorted(m for m in sys.modules if m.startswith('memhub.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "memhub.cli.sync" not in modules and "memhub.cli.files" not in modules
