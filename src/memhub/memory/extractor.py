"""The offline extractor: a transcript in, facts about entities out, no network.

What it does, in order:

1. cuts the transcript into turns (``[ref] Speaker: text`` or ``Speaker: text``
   lines; anything else is the user's own prose) and the turns into sentences;
2. keeps the sentences that state something (not questions, not greetings or
   two-word acknowledgements);
3. finds the entities each sentence mentions: the names and aliases of the
   entities already in the workspace (``memories/{people,contexts,events}/``),
   kinship words ("mom", "my sister"), and capitalised names (a name that opens
   a sentence counts only if it also appears elsewhere in the transcript); a
   first-person sentence is also about its speaker;
4. resolves date expressions against the session date (:mod:`memhub.memory.dates`)
   and writes them into the fact: "yesterday" becomes "yesterday (2024-01-14)".

The same :class:`Extraction` comes out of the LLM extractor
(:mod:`memhub.memory.llm_extractor`), and :mod:`memhub.memory.writer` turns
either into file edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from memhub.memory.dates import MONTHS, WEEKDAYS, resolve_dates

KINDS = ("people", "contexts", "events")
MAX_FACT_CHARS = 600

_TURN = re.compile(
    r"^\s*(?:\[(?P<ref>[^\]\n]{1,40})\]\s*)?"
    r"(?P<speaker>[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3})\s*:\s+(?P<text>\S.*)$"
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_CAPITALISED = re.compile(r"\b[A-Z][a-z'’]+(?:[ -](?:of |de |van |von )?[A-Z][a-z'’]+){0,3}\b")
_WORD = re.compile(r"[\w'’]+")
_FIRST_PERSON = re.compile(r"\b(I|I'm|I’m|I've|I’ve|I'd|I’d|I'll|I’ll|me|my|mine|myself)\b")
_KIN = (
    "mom|mum|mother|dad|father|sister|brother|wife|husband|partner|girlfriend|boyfriend|"
    "son|daughter|grandma|grandmother|grandpa|grandfather|aunt|uncle|cousin|boss|"
    "therapist|doctor|coach|mentor|roommate|best friend"
)
_KINSHIP = re.compile(rf"\b(?:my|our)\s+({_KIN})\b|\b(mom|mum|dad)\b", re.IGNORECASE)
_GREETING = re.compile(
    r"^(hi|hey|hello|thanks|thank you|bye|goodbye|see you|good (morning|night|evening)|"
    r"wow|cool|great|awesome|nice|ok|okay|sure|yes|no|haha|lol)\b",
    re.IGNORECASE,
)
_EVENT_WORDS = frozenset(
    "festival conference party wedding marathon concert parade summit trip birthday "
    "graduation tournament meetup workshop race fair show retreat camp ceremony".split()
)
_PLACE_WORDS = frozenset(
    "city park street avenue university college school inc corp company club center centre "
    "lake beach museum cafe restaurant hospital church library studio gym mountains island "
    "county state airport station bar hotel".split()
)
_PLACE_PREPOSITIONS = frozenset("in at from to near into visited visiting around".split())
# Capitalised words that are not names (sentence openers, pronouns, calendar words, …).
_NOT_NAMES = (
    frozenset(
        """
    i i'm i’m i've i’ve i'd i’d i'll i’ll a an the this that these those there here then
    it it's it’s its he she we they you your our their my his her him them us me what
    when where why how who which whose well so but and or if oh yes no not also just
    really very still maybe thanks thank hi hey hello wow great good nice sure okay ok
    haha lol sounds that's that’s what's what’s let let's let’s do did does don't
    don’t can can't can’t could would should will was were is are am be been being
    have has had as at by for from in into of on to with about after before since
    during all any some every each both many much more most other another such one two
    three first last next today yesterday tomorrow tonight yeah yep hmm um uh aw awesome
    love glad sorry please congrats congratulations happy exactly absolutely definitely
    totally honestly actually anyway btw mr mrs ms dr st
    """.split()
    )
    | frozenset(MONTHS)
    | frozenset(WEEKDAYS)
    | frozenset(m[:3] for m in MONTHS)
)


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    kind: str  # people | contexts | events
    path: str  # memories/<kind>/<slug>.md
    aliases: tuple[str, ...] = ()


@dataclass(slots=True)
class Fact:
    text: str
    day: date  # the day the fact is about: its first resolved date, else the session's
    entities: list[str] = field(default_factory=list)  # entity paths
    speaker: str | None = None
    ref: str | None = None  # the turn it came from, when the transcript names turns
    about_user: bool = False
    when: str | None = None  # the date as precise as the text: a day, week, month or year

    def line(self) -> str:
        ref = f" [{self.ref}]" if self.ref else ""
        who = f"{self.speaker}: " if self.speaker else ""
        return f"- {self.when or self.day.isoformat()}: {who}{self.text}{ref}"


@dataclass(slots=True)
class Extraction:
    facts: list[Fact]
    entities: dict[str, Entity]  # path → entity (known or new) that some fact mentions
    extractor: str = "offline"


def slug(name: str) -> str:
    text = re.sub(r"[^\w]+", "-", name.lower(), flags=re.UNICODE).strip("-_")
    return text[:80] or "entity"


def entity_for(name: str, kind: str) -> Entity:
    kind = kind if kind in KINDS else "people"
    return Entity(name, kind, f"memories/{kind}/{slug(name)}.md")


def turns(transcript: str) -> list[tuple[str | None, str | None, str]]:
    """(ref, speaker, text) per non-empty line; prose lines have no speaker."""
    out: list[tuple[str | None, str | None, str]] = []
    for line in transcript.splitlines():
        if not line.strip():
            continue
        m = _TURN.match(line)
        if m and m.group("speaker").split()[0].lower() not in _NOT_NAMES:
            out.append((m.group("ref"), m.group("speaker").strip(), m.group("text").strip()))
        else:
            out.append((None, None, line.strip()))
    return out


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def states_something(sentence: str) -> bool:
    words = _WORD.findall(sentence)
    if sentence.rstrip().endswith("?"):
        return False
    if len(words) < 4 and not any(ch.isdigit() for ch in sentence):
        return False
    return not (_GREETING.match(sentence) and len(words) < 8)


class _Names:
    """Which entities a sentence names: known names and aliases, kinship, capitalised."""

    def __init__(self, known: list[Entity], user: str, transcript: str) -> None:
        self.by_key: dict[str, Entity] = {}
        for entity in known:
            for name in (entity.name, *entity.aliases):
                if name.strip():
                    self.by_key.setdefault(name.lower(), entity)
        self.user = user.lower()
        keys = sorted(self.by_key, key=len, reverse=True)
        self.known_re = (
            re.compile(r"\b(" + "|".join(re.escape(k) for k in keys) + r")\b", re.IGNORECASE)
            if keys
            else None
        )
        self.inner = self._inner_names(transcript)

    @staticmethod
    def _inner_names(transcript: str) -> set[str]:
        """Capitalised names seen somewhere other than at the start of a sentence."""
        seen: set[str] = set()
        for _ref, _speaker, text in turns(transcript):
            for sentence in sentences(text):
                for m in _CAPITALISED.finditer(sentence):
                    if m.start() > 0:
                        seen.add(m.group(0))
        return seen

    def find(self, sentence: str) -> list[Entity]:
        found: dict[str, Entity] = {}
        if self.known_re is not None:
            for m in self.known_re.finditer(sentence):
                entity = self.by_key[m.group(1).lower()]
                found.setdefault(entity.path, entity)
        for m in _KINSHIP.finditer(sentence):
            word = (m.group(1) or m.group(2)).lower()
            entity = self.by_key.get(word) or entity_for(word.title(), "people")
            found.setdefault(entity.path, entity)
        for m in _CAPITALISED.finditer(sentence):
            name = self._trim(m.group(0))
            if name is not None and m.start() == 0:
                name = self._opener(name)
            if name is None or name.lower() == self.user:
                continue
            entity = self.by_key.get(name.lower()) or entity_for(
                name, self._kind(name, sentence[: m.start()])
            )
            found.setdefault(entity.path, entity)
        return list(found.values())

    def _opener(self, name: str) -> str | None:
        """A name that opens a sentence: kept when known or seen mid-sentence; else its
        first word is taken for an ordinary capitalised word ("Later Tomasz")."""
        if name in self.inner or name.lower() in self.by_key:
            return name
        rest = name.split(" ", 1)[1] if " " in name else ""
        return self._trim(rest) if rest else None

    @staticmethod
    def _trim(name: str) -> str | None:
        words = name.replace("’", "'").split()
        while words and words[0].lower() in _NOT_NAMES:
            words.pop(0)
        while words and words[-1].lower() in _NOT_NAMES:
            words.pop()
        if not words:
            return None
        words[-1] = re.sub(r"'s$", "", words[-1])
        text = " ".join(words)
        return text if len(text) > 1 else None

    @staticmethod
    def _kind(name: str, before: str) -> str:
        last = name.split()[-1].lower()
        if last in _EVENT_WORDS:
            return "events"
        previous = before.split()[-1].lower() if before.split() else ""
        if last in _PLACE_WORDS or previous in _PLACE_PREPOSITIONS:
            return "contexts"
        return "people"


def _annotate(sentence: str, session_date: date) -> tuple[str, date, str]:
    mentions = resolve_dates(sentence, session_date)
    if not mentions:
        return sentence, session_date, session_date.isoformat()
    out, last = [], 0
    for mention in mentions:
        out.append(sentence[last : mention.end])
        if mention.value != mention.text:
            out.append(f" ({mention.value})")
        last = mention.end
    out.append(sentence[last:])
    return "".join(out), mentions[0].day, mentions[0].value


def extract_offline(
    transcript: str, session_date: date, user: str, known: list[Entity]
) -> Extraction:
    """Facts about entities in ``transcript``; ``user`` is the workspace's own person."""
    names = _Names(known, user, transcript)
    facts: list[Fact] = []
    entities: dict[str, Entity] = {}
    for ref, speaker, text in turns(transcript):
        speaker_entity = None
        about_user = speaker is None or speaker.lower() in (names.user, "user", "me")
        if speaker is not None and not about_user:
            speaker_entity = names.by_key.get(speaker.lower()) or entity_for(speaker, "people")
        for sentence in sentences(text):
            if not states_something(sentence):
                continue
            found = names.find(sentence)
            if speaker_entity is not None and (not found or _FIRST_PERSON.search(sentence)):
                found.insert(0, speaker_entity)  # what a speaker says of themselves or theirs
            annotated, day, when = _annotate(sentence[:MAX_FACT_CHARS], session_date)
            paths = list(dict.fromkeys(e.path for e in found))
            for entity in found:
                entities.setdefault(entity.path, entity)
            facts.append(Fact(annotated, day, paths, speaker, ref, about_user, when))
    return Extraction(facts, entities)


def names_in(text: str) -> list[str]:
    """Capitalised names in ``text``; a word that only ever opens a sentence is not one."""
    names = _Names([], "", text)
    found = []
    for _ref, _speaker, line in turns(text):
        for sentence in sentences(line):
            for m in _CAPITALISED.finditer(sentence):
                name = _Names._trim(m.group(0))
                if name is not None and m.start() == 0:
                    name = names._opener(name)
                if name is not None:
                    found.append(name)
    return list(dict.fromkeys(found))
