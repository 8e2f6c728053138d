"""The MemOS ``filter`` grammar over memory items, compiled to a predicate.

A filter is a JSON object. ``{"and": [c, …]}`` and ``{"or": [c, …]}`` combine
conditions (and nest); any other object is an implicit AND of its
``field: condition`` pairs. A condition is a value (equality), or an object of
operators::

    {"and": [{"tags": {"contains": "travel"}},
             {"created_at": {"gt": "2026-01-01"}},
             {"or": [{"info.project": "memhub"}, {"memory_type": {"in": ["UserMemory"]}}]}]}

Fields: ``id``, ``memory``, ``memory_type``, ``key``, ``tags``, ``session_id``,
``user_id``, ``source``, ``status``, ``cube_id``, ``created_at``, ``updated_at``
and ``info.<name>`` (any key of ``info``). Operators: ``eq``, ``ne``, ``in``,
``nin``, ``gt``, ``gte``, ``lt``, ``lte`` (times compare as instants; an ISO date
or a Unix time), ``contains`` (a tag in ``tags``, a substring of a string, an
element of a list). Anything else is a 400 naming what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from memhub.errors import BadRequest

Predicate = Callable[[dict[str, Any]], bool]

FIELDS = frozenset(
    {
        "id",
        "memory",
        "memory_type",
        "key",
        "tags",
        "session_id",
        "user_id",
        "source",
        "status",
        "cube_id",
        "created_at",
        "updated_at",
    }
)
TIME_FIELDS = frozenset({"created_at", "updated_at"})
OPERATORS = frozenset({"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains"})
MAX_DEPTH = 8
MAX_CONDITIONS = 200


def compile_filter(spec: dict[str, Any] | None) -> Predicate | None:
    """A predicate over an item's fields (see :func:`memhub.memory.items.Item.fields`),
    or None for an empty filter."""
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise BadRequest("filter must be a JSON object", context={"filter": spec})
    counter = [0]
    return _node(spec, 0, counter)


def _node(spec: Any, depth: int, counter: list[int]) -> Predicate:
    if depth > MAX_DEPTH:
        raise BadRequest(f"filter is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, dict) or not spec:
        raise BadRequest("each filter condition must be a non-empty JSON object")
    parts: list[Predicate] = []
    for name, value in spec.items():
        if name in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise BadRequest(f"filter {name!r} takes a non-empty list of conditions")
            children = [_node(child, depth + 1, counter) for child in value]
            parts.append(_all(children) if name == "and" else _any(children))
        else:
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise BadRequest(f"filter has more than {MAX_CONDITIONS} conditions")
            parts.append(_field(name, value))
    return _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    return lambda item: all(p(item) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda item: any(p(item) for p in parts)


def _field(name: str, condition: Any) -> Predicate:
    if name not in FIELDS and not (name.startswith("info.") and len(name) > 5):
        raise BadRequest(
            f"unknown filter field {name!r}",
            context={"field": name, "fields": [*sorted(FIELDS), "info.<name>"]},
        )
    getter = _getter(name)
    is_time = name in TIME_FIELDS
    ops = condition if isinstance(condition, dict) else {"eq": condition}
    if not ops:
        raise BadRequest(f"filter field {name!r} has an empty condition")
    tests: list[Predicate] = []
    for op, operand in ops.items():
        if op not in OPERATORS:
            raise BadRequest(
                f"unknown filter operator {op!r} on {name!r}",
                context={"operator": op, "operators": sorted(OPERATORS)},
            )
        tests.append(_test(getter, op, _operand(operand, op, name, is_time), is_time))
    return _all(tests)


def _getter(name: str) -> Callable[[dict[str, Any]], Any]:
    if name.startswith("info."):
        key = name[5:]

        def info_value(item: dict[str, Any]) -> Any:
            info = item.get("info")
            return info.get(key) if isinstance(info, dict) else None

        return info_value
    return lambda item: item.get(name)


def _operand(value: Any, op: str, name: str, is_time: bool) -> Any:
    if op in ("in", "nin"):
        if not isinstance(value, list):
            raise BadRequest(f"filter operator {op!r} on {name!r} takes a list")
        return [to_instant(v, name) if is_time else v for v in value]
    if is_time and op != "contains":
        return to_instant(value, name)
    return value


def _test(
    getter: Callable[[dict[str, Any]], Any], op: str, operand: Any, is_time: bool
) -> Predicate:
    def value_of(item: dict[str, Any]) -> Any:
        value = getter(item)
        if is_time and value is not None:
            return to_instant(value, "item time")
        return value

    if op == "eq":
        return lambda item: _equal(value_of(item), operand)
    if op == "ne":
        return lambda item: not _equal(value_of(item), operand)
    if op == "in":
        return lambda item: any(_equal(value_of(item), v) for v in operand)
    if op == "nin":
        return lambda item: not any(_equal(value_of(item), v) for v in operand)
    if op == "contains":
        return lambda item: _contains(value_of(item), operand)
    compare = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[op]
    return lambda item: _ordered(value_of(item), operand, compare)


def _equal(value: Any, operand: Any) -> bool:
    if isinstance(value, list) and not isinstance(operand, list):
        return operand in value  # a tag equal to the operand, as MemOS's tag filters mean
    return bool(value == operand)


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, list):
        if isinstance(operand, list):
            return all(o in value for o in operand)
        return operand in value
    if isinstance(value, str) and isinstance(operand, str):
        return operand.casefold() in value.casefold()
    if isinstance(value, dict) and isinstance(operand, str):
        return operand in value
    return False


def _ordered(value: Any, operand: Any, compare: Callable[[Any, Any], bool]) -> bool:
    if value is None:
        return False
    try:
        return bool(compare(value, operand))
    except TypeError:
        return False  # a string info value against a number: not a match


def to_instant(value: Any, name: str) -> float:
    """An ISO 8601 date/time (naive = UTC) or a Unix time, as a Unix time."""
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an ISO date or a Unix time", context={name: value})
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise BadRequest(f"{name} must be a finite number")
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise BadRequest(f"{name} must be an ISO date or a Unix time", context={name: value})
