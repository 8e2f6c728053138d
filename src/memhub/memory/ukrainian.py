"""A light rule-based Ukrainian stemmer: strips one inflectional ending.

Neither Snowball nor tantivy ships a Ukrainian stemmer. This one follows the
shape of Snowball's Russian algorithm, cut down to what search needs: drop a
reflexive particle (``-ся``/``-сь``), then the longest inflectional ending of a
noun, adjective or verb, keeping a letter after the first vowel, then fold a
final soft sign and a doubled consonant (``налаштування`` → ``налаштуван``,
``налаштувань`` → ``налаштуван``, ``пам'яттю`` → ``пам'ят``). It never touches derivational
suffixes, so it conflates the forms of one word, not words of one family.

The analyzer uses it as the fallback for Ukrainian words the pymorphy3
dictionary does not know (slang, loanwords such as ``воркер``, ``пушу``).
Input must be lowercase with apostrophes already folded to ``'``.
"""

from __future__ import annotations

VOWELS = frozenset("аеєиіїоуюя")

_REFLEXIVE = ("ся", "сь")

# Longest first within each length is not needed: matching tries lengths from long to short.
_ENDINGS = frozenset(
    # nouns
    "а я о е є у ю і ї и ь й ам ям ах ях ом ем єм ою ею єю ів їв ей ові еві єві "
    "ами ями ія ії ію ій ією іям іях іями "
    # adjectives and participles
    "ий ого ому им ім их іх ими іми ої ую юю ього ьому ьої "
    "ена ено ені ене ений еного еному "
    # verbs
    "ти ла ло ли ав ив ов ув ють уть еш єш ить имо ите ете єте емо ємо ймо йте іть "
    "ати яти ити іти ути увати ювати ує ює ують юють уєш уємо уєте ується уєть "
    "ував увала увалоували уй уйте ила или ило ала али ало яла яли яло".split()
)
_MAX_ENDING = max(len(e) for e in _ENDINGS)
_MIN_STEM_AFTER_VOWEL = 1


def _rv_start(word: str) -> int:
    """Index just after the first vowel (Snowball's RV region), or len(word)."""
    for i, ch in enumerate(word):
        if ch in VOWELS:
            return i + 1
    return len(word)


def _strip_ending(word: str, rv: int) -> str:
    for size in range(min(_MAX_ENDING, len(word) - rv), 0, -1):
        if word[-size:] in _ENDINGS and len(word) - size - rv >= _MIN_STEM_AFTER_VOWEL:
            return word[:-size]
    return word


def stem(word: str) -> str:
    """Return the stem of one lowercase Ukrainian word."""
    if len(word) <= 3:
        return word
    rv = _rv_start(word)
    for particle in _REFLEXIVE:
        if word.endswith(particle) and len(word) - 2 - rv >= 2:
            word = word[:-2]
            break
    word = _strip_ending(word, rv)
    if word.endswith("ь"):
        word = word[:-1]
    if len(word) > 2 and word[-1] == word[-2] and word[-1] not in VOWELS:
        word = word[:-1]
    return word
