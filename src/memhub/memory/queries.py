"""Search queries over the index's schema (:mod:`memhub.memory.documents`): the text
query a list of analysed terms becomes, and the filters (path prefix, file kinds,
date range, always-load)."""

from __future__ import annotations

import tantivy

from memhub.memory.documents import SCHEMA, Ranking, SearchFilters


def text_query(
    searcher: tantivy.Searcher, terms: list[str], ranking: Ranking
) -> tantivy.Query | None:
    """Each term: a name of a speaker → the speaker field; otherwise the best of the
    text fields (disjunction max). Repeated terms weigh more."""
    if not terms:
        return None
    weights: dict[str, float] = {}
    for term in terms:
        weights[term] = weights.get(term, 0.0) + 1.0
    clauses = []
    for term, weight in weights.items():
        if searcher.doc_freq("speaker", term) > 0:
            query = tantivy.Query.term_query(SCHEMA, "speaker", term, index_option="freq")
            clauses.append(
                (
                    tantivy.Occur.Should,
                    tantivy.Query.boost_query(query, ranking.speaker_boost * weight),
                )
            )
            continue
        per_field = [
            tantivy.Query.boost_query(
                tantivy.Query.term_query(SCHEMA, field, term, index_option="freq"), boost * weight
            )
            for field, boost in ranking.field_boosts()
            if boost > 0
        ]
        clauses.append(
            (
                tantivy.Occur.Should,
                tantivy.Query.disjunction_max_query(per_field, ranking.tie_breaker),
            )
        )
    return tantivy.Query.boolean_query(clauses)


def filter_queries(filters: SearchFilters) -> list[tantivy.Query]:
    out: list[tantivy.Query] = []
    if filters.path_prefix:
        out.append(prefix_query(filters.path_prefix))
    if filters.file_kinds:
        out.append(
            tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Should, tantivy.Query.term_query(SCHEMA, "file_kind", kind))
                    for kind in filters.file_kinds
                ]
            )
        )
    if filters.since is not None or filters.until is not None:
        out.append(
            tantivy.Query.range_query(
                SCHEMA,
                "date",
                tantivy.FieldType.Integer,
                int(filters.since) if filters.since is not None else None,
                int(filters.until) if filters.until is not None else None,
            )
        )
    if filters.always_load_only:
        out.append(tantivy.Query.term_query(SCHEMA, "always_load", 1))
    return out


def prefix_query(prefix: str) -> tantivy.Query:
    """Paths starting with ``prefix`` (as the store's listings): a folder (``notes/``) is
    a term of the prefixes field; any other string, a regex over the path terms."""
    if prefix.endswith("/"):
        return tantivy.Query.term_query(SCHEMA, "prefixes", prefix)
    escaped = "".join(ch if ch.isalnum() else f"\\x{{{ord(ch):X}}}" for ch in prefix)
    return tantivy.Query.regex_query(SCHEMA, "path", f"{escaped}.*")
