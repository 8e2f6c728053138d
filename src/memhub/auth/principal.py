"""Who is asking: the principal a request authenticated as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SCOPES = ("read", "write", "admin")
PrincipalKind = Literal["key", "jwt", "master", "internal", "local"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    workspace: str | None  # the key's home workspace; None for the master key
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    key_id: str | None = None
    kind: PrincipalKind = "key"

    def can(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def reaches(self, workspace: str) -> bool:
        return self.is_admin or self.workspace == workspace

    @property
    def rate_key(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"{self.kind}:{self.name}"
