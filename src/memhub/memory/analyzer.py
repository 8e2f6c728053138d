"""The one text analyzer memhub's search uses for documents and queries alike.

``analyze(text)`` turns text into index terms, and the same call on a query
yields the same terms for the same words, whatever their inflection:

- Tokens are runs of Unicode letters and digits. An apostrophe inside a word
  keeps it whole (``пам'ять``, ``пам’ять`` and ``памʼять`` are one word). Words
  joined by ``-``, ``_`` or ``.`` (``go-api``, ``rp_unique_code``, ``config.env``,
  ``2023-05-08``) yield the joined term followed by each part, so both the
  identifier and its words are findable.
- Each word is lowercased and handled by its own script. Latin words get the
  English stop list and Snowball English. Cyrillic words are Ukrainian or
  Russian by their own letters (і ї є ґ, an apostrophe / ы э ъ ё), else by the
  language of the whole text, else Russian: Russian words get Snowball Russian
  (ё folded to е), Ukrainian words their pymorphy3 lemma cut by the light
  stemmer in :mod:`memhub.memory.ukrainian`. CJK runs become overlapping
  character bigrams. Anything else is lowercased.
- Stop words (English, Russian, Ukrainian) are dropped; they still take a
  position, as in Lucene, so phrase queries line up.

Per-word results are cached (bounded LRU): vocabularies repeat and dictionary
look-ups are the slow part. ``index_text(text)`` gives the terms joined by spaces,
what the index takes (cached per whitespace-separated piece of text: the build's hot
loop). ``tokens(text)`` gives them with character offsets and positions: the words
``highlight`` marks in the original text.

One module (about 540 lines) because documents and queries must be cut by the
same rules: the per-script word handling, stop lists and stemmers live side by
side so that a change to one is seen against the others.
"""

from __future__ import annotations

import itertools
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any, NamedTuple

import Stemmer  # type: ignore[import-not-found]

from memhub.memory import ukrainian

__all__ = [
    "EN_STOP",
    "RU_STOP",
    "UK_STOP",
    "Token",
    "analyze",
    "detect_language",
    "highlight",
    "index_text",
    "tokens",
]

_CJK = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
)
_INNER = "\u0300-\u036f\u00ad\u200c\u200d"  # combining marks, soft hyphen, ZWNJ, ZWJ
# Possessive runs (Python 3.11): the two classes are disjoint and nothing after a piece
# needs it shorter, so this matches what ``(?:[^\W_]|[inner])*`` would, ~4x faster.
_PIECE = rf"[^\W_{_CJK}](?:[^\W_{_CJK}]++|[{_INNER}]++)*+"
_WORD = rf"{_PIECE}(?:['’‘]{_PIECE})*"
_TOKEN_RE = re.compile(rf"([{_CJK}]+)|({_WORD}(?:(?:[-‐‑_]+|\.){_WORD})*)")
_PART_RE = re.compile(_WORD)
_WORDS_RE = re.compile(rf"{_WORD}(?:(?:[-‐‑_]+|\.){_WORD})*")  # _TOKEN_RE without CJK
_DROP = dict.fromkeys(map(ord, "\u0300\u0301\u00ad\u200c\u200d"))
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
_HYPHENS = str.maketrans({"‐": "-", "‑": "-"})

_CYRILLIC_RE = re.compile("[\u0400-\u052f]")
_CYRILLIC_WORD_RE = re.compile("[\u0400-\u052f]+(?:'[\u0400-\u052f]+)*")
_LATIN_RE = re.compile("[A-Za-z\u00c0-\u024f]")
_CYRILLIC_RUNS = re.compile("[\u0400-\u052f]+")
_LATIN_RUNS = re.compile("[A-Za-z\u00c0-\u024f]+")
_CJK_RUNS = re.compile(f"[{_CJK}]+")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
_UK_LETTERS = frozenset("іїєґ")
_RU_LETTERS = frozenset("ыэъё")
_CACHE_SIZE = 1 << 18  # distinct words per cache: 100k blocks of mixed notes hold ~65k
# index_text's cache: whitespace-separated piece -> its terms, each followed by a space, per
# language the Cyrillic words of the text are read in (a piece's terms depend on it);
# 40k blocks of mixed notes hold ~30k pieces a language (~170 bytes each)
_PIECES: dict[str | None, dict[str, str]] = {None: {}, "ru": {}, "uk": {}}
_PIECE_CACHE_SIZE = 1 << 17

EN_STOP = frozenset(
    "a about above after again against all also am an and any are as at be because been before "
    "being below between both but by can cannot could did do does doing down during each few "
    "for from further had has have having he her here hers herself him himself his how i if in "
    "into is it its itself just me more most my myself no nor not now of off on once only or "
    "other our ours ourselves out over own same she should so some such than that the their "
    "theirs them themselves then there these they this those through to too under until up very "
    "was we were what when where which while who whom why will with would you your yours "
    "yourself yourselves i'm you're he's she's it's we're they're i've you've we've they've i'd "
    "you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll they'll isn't aren't wasn't "
    "weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't shan't shouldn't can't "
    "couldn't mustn't let's that's who's what's here's there's when's where's why's how's "
    "s t d ll m re ve".split()
)
RU_STOP = frozenset(
    "а без более бы был была были было быть в вам вас ведь во вот все всего всех всю вы где да "
    "даже для до его ее ей ему если есть еще ж же за зачем здесь и из или им их к как какая "
    "какой когда кто ли между меня мне мной мы на над надо нас не него нее ней нет ни них но ну "
    "о об однако он она они оно от очень перед по под после при про с сам себе себя со так "
    "также там тебе тебя тем то тогда того тоже той только том тот ту тут ты у уж уже хоть чего "
    "чем через что чтобы чтоб чье эта эти этим этих это этого этой этом этот эту я который "
    "которая которое которые которого которой которых которым котором".split()
)
UK_STOP = frozenset(
    "а або аби але б без би бо був була були було буде будуть бути в вам вас ви від вже вона "
    "вони воно все всі всього всіх втім де для до ж же з за зі і із й його йому її їй їм їх "
    "коли лише ми мене мені мною на над нам нас не нею ним них ні ну о однак от по під після "
    "перед при про саме себе собі та так також там те тебе теж ти тим тих тільки тобі того той "
    "тому тут у усе усі хоч хоча хто це цей ці цим цих цього цієї цю ця через чи що щоб ще як "
    "яка який яке які якщо якого якої яких яким якому я є".split()
)
_UK_WORDS = frozenset("і та що це як або якщо щоб від також тому але вже буде є ці цей".split())
_RU_WORDS = frozenset("и что это как или если чтобы от также поэтому но уже будет эти этот".split())


class Token(NamedTuple):
    """One index term with the place of its word in the original text (a named tuple:
    indexing builds one per word, and a tuple is built twice as fast as a dataclass)."""

    term: str
    start: int  # character offsets of the word (or CJK bigram) in the text
    end: int
    position: int


class _Word(NamedTuple):
    """What one token of the text yields: its terms, and where each part sits in it."""

    terms: tuple[str, ...]  # the joined term (if any) first, then the kept parts
    joined: str | None
    parts: tuple[tuple[str | None, int, int], ...]  # (term or None for a stop word, start, end)


# --- stemmers and lemmatisers: built on first use, shared by threads ---------------------


class _Locked:
    """Serialise calls into a library object that is not documented as thread-safe."""

    def __init__(self, fn: Callable[[str], str]) -> None:
        self._fn = fn
        self._lock = threading.Lock()

    def __call__(self, word: str) -> str:
        with self._lock:
            return self._fn(word)


@cache
def _snowball(language: str) -> _Locked:
    stemmer: Any = Stemmer.Stemmer(language)
    stemmer.maxCacheSize = 0  # cached per word below
    return _Locked(stemmer.stemWord)


@cache
def _ukrainian_lemmatiser() -> _Locked:
    import pymorphy3  # type: ignore[import-untyped]  # 25 ms to import, 0.35 s to load: on first use

    morph: Any = pymorphy3.MorphAnalyzer(lang="uk")
    return _Locked(lambda word: str(morph.parse(word)[0].normal_form))


def _stem_ru(word: str) -> str:
    return _snowball("russian")(word)


def _stem_uk(word: str) -> str:
    # The lemma undoes stem alternations; the light stemmer then folds what the
    # dictionary left (unknown words, aspect pairs) and keeps terms close to the
    # Russian stems, so a word read in the wrong language still meets its forms.
    return ukrainian.stem(_ukrainian_lemmatiser()(word))


# --- words -------------------------------------------------------------------------


def _clean(word: str) -> str:
    if not word.isascii():
        word = unicodedata.normalize("NFC", word).translate(_DROP).translate(_APOSTROPHES)
    return word.lower()


def _cyrillic_language_of(word: str, context: str | None) -> str:
    if not _UK_LETTERS.isdisjoint(word) or "'" in word:
        return "uk"
    if not _RU_LETTERS.isdisjoint(word):
        return "ru"
    return context or "ru"


@lru_cache(maxsize=_CACHE_SIZE)
def _part(word: str, cyrillic: str | None) -> tuple[str, bool]:
    """Return (term, is_stop_word) for one word without joiners."""
    word = _clean(word)
    if word.isascii():
        if word.isdigit():
            return word, False
        if word in EN_STOP:
            return word, True
        word = word.removesuffix("'s").replace("'", "")
        return _snowball("english")(word), word in EN_STOP
    if _CYRILLIC_RE.search(word):
        if _cyrillic_language_of(word, cyrillic) == "uk":
            return _stem_uk(word), word in UK_STOP
        word = word.replace("ё", "е")
        return _stem_ru(word), word in RU_STOP
    if _LATIN_RE.search(word):
        return _snowball("english")(word), word in EN_STOP
    return word, False


@lru_cache(maxsize=_CACHE_SIZE)
def _word(word: str, cyrillic: str | None) -> _Word:
    spans = [(m.group(), m.start(), m.end()) for m in _PART_RE.finditer(word)]
    analysed = [(*_part(text, cyrillic), start, end) for text, start, end in spans]
    parts = tuple((None if stop else term, start, end) for term, stop, start, end in analysed)
    kept = tuple(term for term, _, _ in parts if term is not None)
    if len(parts) == 1 or not kept:
        return _Word(kept, None, parts)
    joined = [analysed[0][0]]
    for (_, _, _, prev_end), (term, _, start, _) in pairwise(analysed):
        joined += (word[prev_end:start].translate(_HYPHENS), term)
    return _Word(("".join(joined), *kept), "".join(joined), parts)


def _bigrams(run: str) -> Iterator[tuple[str, int]]:
    if len(run) == 1:
        yield run, 0
    for i in range(len(run) - 1):
        yield run[i : i + 2], i


# --- language -----------------------------------------------------------------------


def _cyrillic_context(text: str, lang: str | None) -> str | None:
    """The language the Cyrillic words of ``text`` are read in, or None if nothing tells.

    Evidence: letters only one alphabet has; when they tie (short queries),
    Ukrainian apostrophes and ``-ння`` nouns against Russian ``-ие``/``-ия``
    endings, and frequent function words.
    """
    if lang in ("ru", "uk"):
        return lang
    low = text.lower()
    uk = sum(low.count(ch) for ch in _UK_LETTERS)
    ru = sum(low.count(ch) for ch in _RU_LETTERS)
    if uk == ru:
        for word in _CYRILLIC_WORD_RE.findall(low.translate(_APOSTROPHES)):
            uk += word in _UK_WORDS or "'" in word or word.endswith(("ння", "нню", "нням"))
            ru += word in _RU_WORDS or word.endswith(("ие", "ия", "ию", "иях"))
    if uk == ru:
        return None
    return "uk" if uk > ru else "ru"


def _count(runs: re.Pattern[str], text: str) -> int:
    """Characters of ``text`` in the class of ``runs`` (counted by runs: no list of
    single characters to build, which made this a tenth of indexing time)."""
    return sum(map(len, runs.findall(text)))


_NOT_ASCII_LETTERS = bytes(b for b in range(256) if not (b < 128 and chr(b).isalpha()))
_LATIN_LEADS = (b"\xc3", b"\xc4", b"\xc5", b"\xc6", b"\xc7", b"\xc8")  # U+00C0-U+023F
_CYRILLIC_LEADS = (b"\xd0", b"\xd1", b"\xd2", b"\xd3")  # U+0400-U+04FF


def _latin_and_cyrillic(text: str) -> tuple[int, int]:
    """``_count`` of ``_LATIN_RUNS`` and of ``_CYRILLIC_RUNS`` in ``text``, from its UTF-8
    bytes: each character of those ranges is one lead byte there (or an ASCII letter),
    and counting bytes is ten times cheaper than finding runs. The two lead bytes whose
    range a class cuts in the middle (U+0240-U+027F, U+0500-U+053F) send the text to
    the regexes."""
    data = text.encode("utf-8", "surrogatepass")
    if b"\xc9" in data or b"\xd4" in data:
        return _count(_LATIN_RUNS, text), _count(_CYRILLIC_RUNS, text)
    latin = len(data.translate(None, _NOT_ASCII_LETTERS)) + sum(map(data.count, _LATIN_LEADS))
    return latin, sum(map(data.count, _CYRILLIC_LEADS))


def detect_language(text: str) -> str:
    """Return "en", "ru", "uk", "cjk" or "other": the language of the dominant script.

    Latin script counts as English (memhub does not tell Latin languages apart).
    Cyrillic is Ukrainian or Russian by the evidence ``analyze`` uses, and
    Russian when nothing tells. No letters at all is "other".
    """
    # A script holding over two thirds of the characters outweighs every other count
    # (CJK's doubled included), so the usual text needs no regex pass at all.
    latin, cyrillic = _latin_and_cyrillic(text)
    if 3 * latin > 2 * len(text):
        return "en"
    if 3 * cyrillic > 2 * len(text):
        return _cyrillic_context(text, None) or "ru"
    counts = {"en": latin, "cyrillic": cyrillic, "cjk": _count(_CJK_RUNS, text)}
    counts["other"] = _count(_LETTER_RUNS, text) - sum(counts.values())
    counts["cjk"] *= 2  # a CJK character carries about as much as a short word
    script = max(counts, key=counts.__getitem__)
    if counts[script] <= 0:
        return "other"
    if script == "cyrillic":
        return _cyrillic_context(text, None) or "ru"
    return script


# --- public API ---------------------------------------------------------------------


def analyze(text: str, lang: str | None = None) -> list[str]:
    """Return the index terms of ``text`` in order (documents and queries alike).

    ``lang`` "ru" or "uk" settles which language Cyrillic words without telltale
    letters are read in; otherwise the text decides. Latin words are English.
    """
    cyrillic = _cyrillic_context(text, lang) if _CYRILLIC_RE.search(text) else None
    return _terms(text, cyrillic)


def _terms(text: str, cyrillic: str | None) -> list[str]:
    out: list[str] = []
    for cjk, word in _TOKEN_RE.findall(text):
        if word:
            out.extend(_word(word, cyrillic if not word.isascii() else None).terms)
        else:
            out.extend(bigram for bigram, _ in _bigrams(cjk))
    return out


def index_text(text: str, lang: str | None = None) -> str:
    """The terms of ``analyze(text, lang)`` joined by single spaces, for the index.

    The index cuts this string at spaces and gets the same terms back (no term
    holds whitespace: words are runs of letters and digits). It is built from
    whitespace-separated pieces of ``text``, each looked up whole in a cache: no
    token crosses whitespace, so a piece's terms do not depend on its neighbours,
    and the pieces of a corpus (``word``, ``word,``, ``Word.``) repeat like its words.
    """
    cyrillic = _cyrillic_context(text, lang) if _CYRILLIC_RE.search(text) else None
    known = _PIECES[cyrillic]
    pieces = text.split()
    try:  # each piece's terms end with a space: one join, then the last space cut
        return "".join(map(known.__getitem__, pieces))[:-1]
    except KeyError:  # pieces seen for the first time
        terms = [known[p] if p in known else _piece_terms(p, cyrillic) for p in pieces]
        return "".join(terms)[:-1]


def _piece_terms(piece: str, cyrillic: str | None) -> str:
    """The terms of one whitespace-free piece of text, each followed by a space (nothing
    when it has none), remembered."""
    known = _PIECES[cyrillic]
    if len(known) >= _PIECE_CACHE_SIZE:
        known.clear()  # a bound, not an LRU: refilling costs less than ordering every hit
    terms = known[piece] = "".join(term + " " for term in _terms(piece, cyrillic))
    return terms


def tokens(text: str, lang: str | None = None) -> list[Token]:
    """Return the terms of ``analyze(text, lang)`` with offsets and positions.

    A joined term (``go-api``) shares the position of its first part; stop
    words leave a gap.
    """
    cyrillic = _cyrillic_context(text, lang) if _CYRILLIC_RE.search(text) else None
    out: list[Token] = []
    position = 0
    for match in _TOKEN_RE.finditer(text):
        cjk, word = match.groups()
        start = match.start()
        if cjk:
            for bigram, offset in _bigrams(cjk):
                out.append(Token(bigram, start + offset, start + offset + len(bigram), position))
                position += 1
            continue
        analysed = _word(word, cyrillic if not word.isascii() else None)
        if analysed.joined is not None:
            out.append(Token(analysed.joined, start, match.end(), position))
        for term, part_start, part_end in analysed.parts:
            if term is not None:
                out.append(Token(term, start + part_start, start + part_end, position))
            position += 1
    return out


def highlight(text: str, terms: set[str], lang: str | None = None, max_chars: int = 200) -> str:
    """Return a snippet of ``text`` around the densest cluster of matching words.

    A word matches when one of its terms is in ``terms`` (pass the query's
    ``analyze`` output). Matches are wrapped in ``**…**``; the rest is the
    original wording with whitespace collapsed, and "…" marks a cut.
    """
    hits = _matching(text, terms, lang)
    start, end = _window(text, hits, max_chars)
    spans = _merge([(t.start, t.end) for t in hits if start <= t.start and t.end <= end])
    out: list[str] = []
    cursor = start
    for span_start, span_end in spans:
        out += (_unbold(text[cursor:span_start]), "**", _unbold(text[span_start:span_end]), "**")
        cursor = span_end
    out.append(_unbold(text[cursor:end]))
    # matches hold no whitespace, so collapsing it once over the whole snippet is the same
    # as collapsing it in each piece
    snippet = _SPACES_RE.sub(" ", "".join(out)).strip()
    return ("…" if start > 0 else "") + snippet + ("…" if end < len(text) else "")


_JOINERS = frozenset("-‐‑_.")
_SPACE_RE = re.compile(r"\s")
_SPACES_RE = re.compile(r"\s+")


@lru_cache(maxsize=256)  # one query's terms serve all its hits' snippets
def _initials(terms: frozenset[str]) -> frozenset[str]:
    """Letters a word must start with to yield one of ``terms``.

    Stemming and lemmatising change endings and inner vowels (Ukrainian і/о), never
    the first letter, which only lowercasing, ё→е folding and NFC composition
    touch; so a word starting with anything else needs no analysis.
    """
    out: set[str] = set()
    for term in terms:
        for first in {term[:1], "ё" if term[:1] == "е" else ""} - {""}:
            out |= {first, first.upper(), unicodedata.normalize("NFD", first)[0]}
            out.add(unicodedata.normalize("NFD", first.upper())[0])
    return frozenset(out)


class _Hit(NamedTuple):
    term: str
    start: int
    end: int


def _matching(text: str, terms: set[str], lang: str | None) -> list[_Hit]:
    """The tokens of ``tokens(text, lang)`` whose term is in ``terms``, in the same order,
    without building the others (a snippet per search hit: this is the hot loop)."""
    cyrillic = _cyrillic_context(text, lang) if _CYRILLIC_RE.search(text) else None
    initials = _initials(frozenset(terms))
    out: list[_Hit] = []
    if not _CJK_RUNS.search(text):  # the common case: one regex alternative, no groups
        for match in _WORDS_RE.finditer(text):
            word = match.group()
            if word[0] in initials or not _JOINERS.isdisjoint(word):
                _add_matches(out, match.start(), match.end(), word, terms, cyrillic)
        return out
    for match in _TOKEN_RE.finditer(text):
        cjk, word = match.groups()
        start = match.start()
        if cjk:
            out += (
                _Hit(bigram, start + offset, start + offset + len(bigram))
                for bigram, offset in _bigrams(cjk)
                if bigram in terms
            )
            continue
        if word[0] in initials or not _JOINERS.isdisjoint(word):
            _add_matches(out, start, match.end(), word, terms, cyrillic)
    return out


def _add_matches(
    out: list[_Hit], start: int, end: int, word: str, terms: set[str], cyrillic: str | None
) -> None:
    """Append the hits of one word (a candidate: starting with one of the terms' initials,
    or joined; any other word cannot match, and analysing it would be wasted)."""
    analysed = _word(word, cyrillic if not word.isascii() else None)
    if terms.isdisjoint(analysed.terms):
        return
    if analysed.joined is not None and analysed.joined in terms:
        out.append(_Hit(analysed.joined, start, end))
    out += (
        _Hit(term, start + part_start, start + part_end)
        for term, part_start, part_end in analysed.parts
        if term is not None and term in terms
    )


def _window(text: str, hits: list[_Hit], max_chars: int) -> tuple[int, int]:
    """The stretch of at most max_chars with the most distinct, then most, matches."""
    if not hits:
        return 0, _snap_end(text, min(len(text), max_chars), 0)
    best, best_score, best_last = 0, (0, 0), hits[0].end
    for i, first in enumerate(hits):
        limit = first.start + max_chars
        inside: set[str] = set()
        count, last = 0, first.end
        for hit in itertools.islice(hits, i, None):
            if hit.start > limit:  # hits are in text order: none further fits either
                break
            if hit.end <= limit:
                inside.add(hit.term)
                count += 1
                last = max(last, hit.end)
        if (len(inside), count) > best_score:
            best, best_score, best_last = i, (len(inside), count), last
    # (a single match longer than max_chars is the whole window: it is shown whole)
    first, last = hits[best], best_last
    slack = max(0, max_chars - (last - first.start))
    start = max(0, min(first.start - slack // 3, len(text) - max_chars))
    end = min(len(text), start + max_chars)
    return _snap_start(text, start, first.start), _snap_end(text, end, last)


def _snap_start(text: str, start: int, limit: int) -> int:
    """Move ``start`` forward to the start of a word, never past ``limit``."""
    if start == 0 or text[start - 1].isspace():
        return start
    space = _SPACE_RE.search(text, start, limit)
    return space.end() if space else limit


def _snap_end(text: str, end: int, limit: int) -> int:
    """Move ``end`` back to the end of a word, never before ``limit``."""
    if end >= len(text) or text[end].isspace():
        return end
    space = max(text.rfind(" ", limit, end), text.rfind("\n", limit, end))
    return space if space > limit else max(end, limit) if space < 0 else limit


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _unbold(chunk: str) -> str:
    """Original text without markdown bold markers (the snippet's are the only ones)."""
    return chunk.replace("**", "")
