"""What the search index stores and gives back: the tantivy schema, the documents a
file's blocks become, the ranking weights, and the hits read back.

A block is one document: its text, its heading trail and its neighbours' text
(``context``) analysed by :mod:`memhub.memory.analyzer` (so documents and queries go
through one analyzer for every language), its path and the path's folders
(``prefixes``), file kind, speaker, date and weight as fields to filter and rank on,
and the whole block record as JSON for the hit.

The analysed terms reach tantivy as one space-joined string per field, cut again by
its whitespace tokenizer: a pre-tokenised string costs a Python ``Token`` per word,
which was most of tantivy's share of a build. Queries are term queries only, so the
text fields keep term frequencies, not positions. The block record is a stored bytes
field, not indexed: indexed as text, each record was one huge term of the term
dictionary (two thirds of the index, most of the commit time).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
import tantivy

from memhub.memory.analyzer import detect_language, index_text
from memhub.memory.blocks import Block
from memhub.store import Revision

MAX_INDEXED_BYTES = 4 * 1024 * 1024  # larger files are kept, not indexed
STRENGTH_WEIGHT = {"High": 0.828, "Medium": 0.297}  # log2(2 + w): x1.5, x1.2
TEXT_FIELDS = ("text", "context", "heading")


@dataclass(frozen=True, slots=True)
class Ranking:
    """How a search weighs a block's fields. Each query term scores the best of the
    text fields (a disjunction max with a tie breaker); a term that names a speaker
    scores the speaker field instead. ``neighbours`` turns before and after a turn
    are indexed as its context (so it is fixed when the index is built).

    The defaults are chosen by leave-one-conversation-out on the LoCoMo dev files
    (``bench/locomo.py --loo``): every figure there is reported on a file the
    weights were not chosen on."""

    text: float = 1.0
    context: float = 0.7
    heading: float = 0.5
    tie_breaker: float = 0.3
    speaker_boost: float = 2.0
    neighbours: int = 2

    def field_boosts(self) -> tuple[tuple[str, float], ...]:
        return (("text", self.text), ("context", self.context), ("heading", self.heading))


RANKING = Ranking()


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    builder.add_text_field("prefixes", stored=False, tokenizer_name="raw")
    builder.add_text_field("file_kind", stored=False, tokenizer_name="raw")
    for name in (*TEXT_FIELDS, "speaker"):  # index_text() strings: terms joined by spaces
        builder.add_text_field(name, stored=False, tokenizer_name="whitespace", index_option="freq")
    builder.add_integer_field("always_load", indexed=True, fast=True)
    builder.add_integer_field("date", indexed=True, fast=True)
    builder.add_float_field("weight", fast=True)
    # 1 on blocks with a weight: a search scales scores by weight only when some block
    # has one (scaling made tantivy's part of a search ~40% slower at 100k blocks)
    builder.add_integer_field("weighted", indexed=True)
    builder.add_bytes_field("block", stored=True)  # the block record, UTF-8 JSON
    return builder.build()


SCHEMA = _schema()


@dataclass(frozen=True, slots=True)
class SearchFilters:
    path_prefix: str | None = None
    file_kinds: tuple[str, ...] = ()
    since: float | None = None  # block date (the file's revision time or the block's own)
    until: float | None = None
    always_load_only: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    heading: list[str]
    line_start: int
    line_end: int
    rev: int
    score: float
    text: str
    file_kind: str
    always_load: bool
    strength: str | None
    turn_id: str | None
    speaker: str | None
    date: float
    seq: int = 0  # the block's place in its file

    @classmethod
    def from_record(cls, path: str, data: dict[str, Any], score: float) -> Hit:
        """A hit from the JSON record the index stores with a block."""
        return cls(
            path=path,
            heading=data["heading"],
            line_start=data["line_start"],
            line_end=data["line_end"],
            rev=data["rev"],
            score=score,
            text=data["text"],
            file_kind=data["file_kind"],
            always_load=data["always_load"],
            strength=data["strength"],
            turn_id=data["turn_id"],
            speaker=data["speaker"],
            date=data["date"],
            seq=int(data.get("seq", 0)),
        )

    def to_dict(self, snippet: str) -> dict[str, Any]:
        return {
            "path": self.path,
            "heading": self.heading,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "rev": self.rev,
            "score": round(self.score, 4),
            "snippet": snippet,
            "file_kind": self.file_kind,
            "always_load": self.always_load,
            "strength": self.strength,
            "turn_id": self.turn_id,
            "speaker": self.speaker,
            "date": self.date,
        }


@lru_cache(maxsize=1024)  # a file's blocks come one after the other
def _prefixes(path: str) -> tuple[str, ...]:
    parts = path.split("/")
    return (*("/".join(parts[:i]) + "/" for i in range(1, len(parts))), path)


class BlockFields(NamedTuple):
    """One block's document, analysed: plain values, so that a worker process can make
    them (:mod:`memhub.memory.prepare`) and only :func:`document` runs where the writer
    is. Text fields are :func:`~memhub.memory.analyzer.index_text` strings; None leaves
    the field out."""

    path: str
    file_kind: str
    text: str
    speaker: str | None
    heading: str | None
    context: str | None
    always_load: bool
    date: int
    weight: float
    record: bytes  # the block record (:func:`block_record`) as UTF-8 JSON (by orjson:
    # compact, five times cheaper than json.dumps; read back by json.loads all the same)


def block_fields(
    blocks: list[Block], revision: Revision, neighbours: int = RANKING.neighbours
) -> list[BlockFields]:
    """The analysed fields of one file's blocks."""
    lang = detect_language(" ".join(b.text[:400] for b in blocks[:20]))
    out = []
    for i, block in enumerate(blocks):
        when = block.meta.get("when")
        text = f"{block.text} ({when})" if when else block.text
        speaker = heading = None
        if block.speaker:
            speaker = index_text(block.speaker, lang)
        elif block.heading:
            heading = index_text(" / ".join(block.heading), lang)
        context = _context_of(blocks, i, neighbours)
        date = block.timestamp if block.timestamp is not None else revision.created_at
        record = orjson.dumps(block_record(block, revision, i))
        out.append(
            BlockFields(
                path=block.path,
                file_kind=block.file_kind,
                text=index_text(text, lang),
                speaker=speaker,
                heading=heading,
                context=index_text(context, lang) if context else None,
                always_load=block.always_load,
                date=int(date),
                weight=STRENGTH_WEIGHT.get(block.strength or "", 0.0),
                record=record,
            )
        )
    return out


def document(fields: BlockFields) -> tantivy.Document:
    """The tantivy document of one block (made from one dict: half the cost of a call
    per value, and this runs where the writer is)."""
    values: dict[str, Any] = {
        "path": fields.path,
        "prefixes": list(_prefixes(fields.path)),  # a list: tantivy takes no tuple
        "file_kind": fields.file_kind,
        "text": fields.text,
        "always_load": 1 if fields.always_load else 0,
        "date": fields.date,
        "weight": fields.weight,
        "block": fields.record,
    }
    for name, value in (
        ("speaker", fields.speaker),
        ("heading", fields.heading),
        ("context", fields.context),
    ):
        if value is not None:
            values[name] = value
    if fields.weight:
        values["weighted"] = 1
    return tantivy.Document.from_dict(values, SCHEMA)


def block_record(block: Block, revision: Revision, seq: int) -> dict[str, Any]:
    """What the index stores with a block (a search's :class:`Hit` is made from it)."""
    date = block.timestamp if block.timestamp is not None else revision.created_at
    return {
        "heading": list(block.heading),
        "line_start": block.line_start,
        "line_end": block.line_end,
        "rev": revision.rev,
        "seq": seq,
        "text": block.text,
        "file_kind": block.file_kind,
        "always_load": block.always_load,
        "strength": block.strength,
        "turn_id": block.turn_id,
        "speaker": block.speaker,
        "date": date,
    }


def _context_of(blocks: list[Block], i: int, neighbours: int) -> str:
    if blocks[i].kind != "turn" or neighbours <= 0:
        return ""
    lo, hi = max(0, i - neighbours), min(len(blocks), i + neighbours + 1)
    return "\n".join(blocks[j].text for j in range(lo, hi) if j != i and blocks[j].kind == "turn")


def decode_text(data: bytes, content_type: str) -> str | None:
    """The text of a file worth indexing, or None (binary, or too large)."""
    if len(data) > MAX_INDEXED_BYTES or b"\x00" in data[:8192]:
        return None
    if content_type.startswith(("image/", "audio/", "video/", "application/x-sqlite")):
        return None
    return data.decode("utf-8", errors="replace")
