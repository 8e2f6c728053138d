"""Output schemas are published with their references inlined: the same verdicts for
every result, without a ``$ref`` for a client's validator to resolve per value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from memhub.mcp.registry import inline_refs


class Hit(BaseModel):
    path: str
    heading: list[str]
    rev: int = Field(description="The revision.")


class Page(BaseModel):
    results: list[Hit]
    best: Hit | None = None
    total: int


class Node(BaseModel):
    name: str
    children: list[Node] = []


def verdict(schema: dict[str, Any], value: Any) -> list[str]:
    return sorted(e.message for e in Draft202012Validator(schema).iter_errors(value))


HIT = {"path": "a.md", "heading": ["A"], "rev": 1}
VALUES = [
    {"results": [HIT, HIT], "best": HIT, "total": 2},
    {"results": [], "best": None, "total": 0},
    {"results": [{**HIT, "rev": "one"}], "total": 1},
    {"results": [{"path": "a.md", "heading": [1]}], "total": 1},
    {"results": [HIT], "best": {"path": 3}, "total": "x"},
    {"total": 1},
]


@pytest.mark.parametrize("value", VALUES)
def test_inlined_schema_gives_the_same_verdicts(value: dict[str, Any]) -> None:
    schema = Page.model_json_schema()
    inlined = inline_refs(schema)
    assert "$ref" not in json.dumps(inlined) and "$defs" not in inlined
    assert verdict(inlined, value) == verdict(schema, value)
    described = inlined["properties"]["results"]["items"]["properties"]["rev"]
    assert described["description"] == "The revision."


def test_a_recursive_schema_keeps_its_references() -> None:
    schema = Node.model_json_schema()
    assert inline_refs(schema) == schema
    assert verdict(schema, {"name": "a", "children": [{"name": 1}]})
