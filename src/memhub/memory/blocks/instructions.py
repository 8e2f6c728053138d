"""Instruction files (``CLAUDE.md``, ``AGENTS.md``, …): a section whose heading, or a
bold lead-in, states a mandatory rule is always loaded."""

from __future__ import annotations

import re

from memhub.memory.blocks.model import Block

LEAD_IN_CHARS = 400

_MANDATORY = re.compile(
    r"\b(MANDATORY|IMPORTANT|CRITICAL|REQUIRED|MUST|NEVER|ALWAYS|STRICT RULE|DO NOT)\b"
    r"|ВАЖНО|СТРОГОЕ ПРАВИЛО|СТРОГО|НИКОГДА|ВСЕГДА|ОБЯЗАТЕЛЬНО|ЗАПРЕЩЕНО|ОБЯЗАН"
    r"|ВАЖЛИВО|СУВОРЕ ПРАВИЛО|НІКОЛИ|ЗАВЖДИ|ОБОВ'?ЯЗКОВО|ОБОВʼЯЗКОВО|ЗАБОРОНЕНО",
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")


def is_mandatory(block: Block) -> bool:
    """A rule an agent must always see: stated in a heading or a bold lead-in."""
    if any(_MANDATORY.search(h) for h in block.heading[-1:]):
        return True
    for match in _BOLD.finditer(block.text[:LEAD_IN_CHARS]):
        if _MANDATORY.search(match.group(1) or match.group(2) or ""):
            return True
    return False
