"""The search analyzer: one pipeline for documents and queries, in English, Russian, Ukrainian."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memhub.memory.analyzer import analyze, detect_language, highlight, index_text, tokens
from memhub.memory.ukrainian import stem


def shared(*forms: str) -> set[str]:
    """Terms every one of ``forms`` yields."""
    sets = [set(analyze(form)) for form in forms]
    return set.intersection(*sets)


# --- inflected forms meet their base form -------------------------------------------


@pytest.mark.parametrize(
    "forms",
    [
        ("running", "runs", "run"),
        ("migrations", "migration"),
        ("Caroline's", "Caroline"),
        ("миграции", "миграциях", "миграция"),
        ("ветки", "веткой", "ветка"),
        ("сессии", "сессиями", "сессия"),
        ("синхронізація", "синхронізації", "синхронізацію", "синхронізацією"),
        ("бази", "базою", "база"),
        ("хуків", "хуками", "хук"),
        ("налаштування", "налаштувань", "налаштуванням"),
        ("пам'ять", "пам'яті", "пам'яттю"),
        ("копії", "копій", "копія"),
    ],
)
def test_inflected_forms_share_a_term(forms: tuple[str, ...]) -> None:
    assert shared(*forms), [analyze(f) for f in forms]


def test_query_and_document_meet_in_a_sentence() -> None:
    document = "Все миграции БД делать ТОЛЬКО через Alembic."
    assert set(analyze("как применять миграцию")) & set(analyze(document))
    document = "Синхронізація SQLite бази між машинами через MinIO."
    assert set(analyze("синхронізацію баз")) <= set(analyze(document))


@pytest.mark.parametrize("apostrophe", ["'", "’", "ʼ"])
def test_ukrainian_apostrophes_are_one_word(apostrophe: str) -> None:
    assert analyze(f"пам{apostrophe}ять") == analyze("пам'ять")
    assert len(analyze(f"з{apostrophe}єднання")) == 1


def test_yo_folds_to_ye() -> None:
    assert analyze("ёлка") == analyze("елка")
    assert analyze("её") == analyze("ее") == []


# --- stop words, numbers, identifiers -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "the and of to it was",
        "When did they have it?",
        "и в не что это как",
        "і та що це як або",
    ],
)
def test_stop_words_are_dropped(text: str) -> None:
    assert analyze(text) == []


def test_numbers_are_kept() -> None:
    assert analyze("TTL 7200 seconds, 2 hours") == ["ttl", "7200", "second", "2", "hour"]


@pytest.mark.parametrize("identifier", ["go-api", "rp_unique_code", "config.env", "td"])
def test_identifiers_are_findable_whole_and_by_part(identifier: str) -> None:
    document = f"Run `{identifier}` first, then check the logs."
    assert set(analyze(identifier)) <= set(analyze(document))


def test_identifier_parts_match_plain_words() -> None:
    assert set(analyze("unique code")) <= set(analyze("dedup by rp_unique_code"))
    assert "go-api" in analyze("services/go-api")
    assert "go-api" not in analyze("go api")


def test_td_usage_is_found() -> None:
    claude_md = "Run td usage --new-session at conversation start (or after /clear)."
    assert set(analyze("td usage")) <= set(analyze(claude_md))
    assert set(analyze("new session")) <= set(analyze(claude_md))


# --- scripts and languages ----------------------------------------------------------


def test_mixed_text_stems_each_word_by_its_script() -> None:
    terms = analyze("Telegram-сессии для dev и prod")
    assert {"telegram", "dev", "prod"} <= set(terms)
    assert shared("Telegram-сессии", "сессия")


def test_cjk_becomes_overlapping_bigrams() -> None:
    assert analyze("東京都") == ["東京", "京都"]
    assert analyze("中") == ["中"]
    assert "京都" in analyze("я живу в 東京都")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Caroline went to the LGBTQ support group yesterday.", "en"),
        ("Все миграции БД делать только через Alembic.", "ru"),
        ("Никогда не используй одну и ту же сессию", "ru"),
        ("Синхронізація SQLite бази між машинами через MinIO", "uk"),
        ("розгортання на нових машинах", "uk"),  # no і/ї/є: the -ння ending tells
        ("пам'ять та хуки", "uk"),
        ("東京都に住んでいます", "cjk"),
        ("서울에 살아요", "cjk"),
        ("Ελληνικά κείμενο", "other"),
        ("", "other"),
        ("1234 !!!", "other"),
        # mixed: the dominant script wins
        ("Run `go test ./...` in services/go-api before you push", "en"),
        ("Фикс для прода: ветка от master, PR в master, потом деплой", "ru"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("phrase", ["нових машинах", "бази даних", "налаштування хуків"])
def test_ukrainian_read_as_russian_still_meets_itself(phrase: str) -> None:
    # short queries without і/ї/є may be read as Russian: the terms must not change
    assert analyze(phrase, lang="ru") == analyze(phrase, lang="uk")


def test_ukrainian_stemmer_folds_forms() -> None:
    assert stem("налаштування") == stem("налаштувань") == stem("налаштуванням")
    assert stem("завантажує") == stem("завантажуємо") == stem("завантажувати")
    assert stem("хук") == "хук"  # short words stay


# --- offsets ------------------------------------------------------------------------


def test_tokens_point_at_their_words() -> None:
    text = "Deploy go-api, then the Пам’ять check"
    for token in tokens(text):
        word = text[token.start : token.end]
        assert token.term in analyze(word), (token, word)
    positions = [t.position for t in tokens(text)]
    assert positions == sorted(positions)
    assert [t.term for t in tokens(text)] == analyze(text)


# --- highlight ----------------------------------------------------------------------


def test_highlight_marks_matching_words_in_the_original_text() -> None:
    text = "Все миграции БД делать только через Alembic. Никогда не применять SQL напрямую."
    snippet = highlight(text, set(analyze("миграция alembic")))
    assert "**миграции**" in snippet
    assert "**Alembic**" in snippet
    assert "**БД**" not in snippet


def test_highlight_picks_the_densest_cluster_and_cuts_at_words() -> None:
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 10
    text = filler + "The lock is held for two hours; a second lock push fails. " + filler
    snippet = highlight(text, set(analyze("lock hours")), max_chars=80)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert snippet.count("**lock**") == 2 and "**hours**" in snippet
    assert len(snippet.replace("**", "").strip("…")) <= 80
    body = snippet.strip("…")
    assert text.find(body.replace("**", "")[:20]) >= 0  # starts on a word of the original


def test_highlight_without_matches_returns_the_beginning() -> None:
    text = "First words of a long note. " * 20
    snippet = highlight(text, {"absent"}, max_chars=50)
    assert snippet.startswith("First words") and snippet.endswith("…")
    assert "**" not in snippet


def test_highlight_part_of_an_identifier() -> None:
    snippet = highlight("dedup by rp_unique_code in go-poller", set(analyze("unique")))
    assert "rp_**unique**_code" in snippet


def test_highlight_short_text_is_whole() -> None:
    assert highlight("Hooks run on SessionStart", set(analyze("hook"))) == (
        "**Hooks** run on SessionStart"
    )


# --- properties ---------------------------------------------------------------------


@given(st.text())
def test_analyze_never_crashes_and_is_deterministic(text: str) -> None:
    terms = analyze(text)
    assert terms == analyze(text)
    assert all(term and not term.isspace() for term in terms)


@given(st.text(), st.sampled_from([None, "en", "ru", "uk", "cjk", "other"]))
def test_tokens_agree_with_analyze(text: str, lang: str | None) -> None:
    found = tokens(text, lang)
    assert [t.term for t in found] == analyze(text, lang)
    assert all(0 <= t.start < t.end <= len(text) for t in found)


@given(st.text())
def test_detect_language_is_total(text: str) -> None:
    assert detect_language(text) in {"en", "ru", "uk", "cjk", "other"}


@given(st.text(), st.sets(st.text(min_size=1, max_size=5), max_size=5), st.integers(1, 300))
def test_highlight_never_crashes(text: str, terms: set[str], max_chars: int) -> None:
    snippet = highlight(text, terms, max_chars=max_chars)
    assert isinstance(snippet, str)


@given(
    st.lists(st.sampled_from(["sync", "синхронізація", "миграция", "go-api", "東京"]), max_size=8)
)
def test_query_terms_are_found_in_a_document_containing_them(words: list[str]) -> None:
    query = " ".join(words)
    document = f"Notes: {query}. More notes follow."
    assert set(analyze(query)) <= set(analyze(document))


MIXED = st.text(alphabet=st.sampled_from(list("ab XYZ×ёжикіїє'’東京αβ12._-\t\n\u00a0\u0301")))
LANGS = st.sampled_from([None, "en", "ru", "uk", "cjk", "other"])


@given(st.one_of(st.text(), MIXED), LANGS)
def test_index_text_is_the_terms_joined_by_spaces(text: str, lang: str | None) -> None:
    """What the index's whitespace tokenizer cuts back into the terms of ``analyze``."""
    joined = index_text(text, lang)
    assert joined == index_text(text, lang)  # and again from the piece cache
    terms = analyze(text, lang)
    assert re.split(r"[ \t\n\r\f\v]+", joined) == terms if terms else joined == ""


def test_index_text_reads_a_piece_in_each_text_s_language() -> None:
    for lang in ("ru", "uk", None, "uk"):
        assert index_text("ключи, ключі", lang).split(" ") == analyze("ключи, ключі", lang)


def _dominant_script(text: str) -> str:
    """detect_language as defined: the largest of four character counts."""
    latin = len(re.findall(r"[A-Za-z\u00c0-\u024f]", text))
    cyrillic = len(re.findall(r"[\u0400-\u052f]", text))
    cjk = sum(len(run) for run in re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]+", text))
    other = len(re.findall(r"[^\W\d_]", text)) - latin - cyrillic - cjk
    counts = {"en": latin, "cyrillic": cyrillic, "cjk": 2 * cjk, "other": other}
    script = max(counts, key=counts.__getitem__)
    return "other" if counts[script] <= 0 else script


@given(MIXED)
def test_detect_language_takes_the_dominant_script(text: str) -> None:
    found = detect_language(text)
    expected = _dominant_script(text)
    assert found in ("ru", "uk") if expected == "cyrillic" else found == expected


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            "aZ9 .-_'\u00c0\u00ff\u0100\u023f\u0240\u024f\u0250\u027f"
            "\u0400\u04ff\u0500\u052f\u0530\u053fяіё日本\U0001f600\ud800"
        ),
        max_size=60,
    )
)
def test_script_counts_from_bytes_equal_the_regex_counts(text: str) -> None:
    from memhub.memory import analyzer

    assert analyzer._latin_and_cyrillic(text) == (
        analyzer._count(analyzer._LATIN_RUNS, text),
        analyzer._count(analyzer._CYRILLIC_RUNS, text),
    )
