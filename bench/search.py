"""Search speed at 100k blocks: memhub in-process and over HTTP, beside rank_bm25 and SQLite FTS5.

Run: ``.venv/bin/python bench/search.py [--quick] [--files N] [--sections N]
[--skip-one-process] [--json-out PATH] [--scratch DIR] [--results-out PATH]`` (1M blocks:
``--files 10000 --sections 100``; ``--results-out``: every query's results after the
first build, then stop, to compare two versions of memhub byte for byte)

The corpus is synthetic and deterministic (``--seed``): markdown notes of ~10 ``##``
sections each (10k files, 100k blocks; ``--quick``: 1k files, 10k blocks), sentences
drawn with a Zipf law from English, Russian and Ukrainian vocabularies (common words
first, then a long tail: word forms from pymorphy3's Russian and Ukrainian dictionaries,
some made-up words no dictionary knows, made-up English words), a note's language
chosen per file with some English terms mixed into the Cyrillic ones.

1. **Fill**: every file goes through ``Store.put`` into the embedded default layout
   (SQLite + local blobs) of a temporary data dir (puts/s is reported, not an aim).
2. **Build**: ``Memory.rebuild`` (``WorkspaceIndex`` reading every head from the store,
   cutting it into blocks, analysing and indexing; the cutting and analysing in its
   worker processes, whose CPU time is counted) → blocks/s. In the same run: building
   an FTS5 table (``unicode61``) over the same block texts, the memhub build again in
   one process (unless ``--skip-one-process``), and a ``rank_bm25.BM25Okapi`` (lowercase
   whitespace tokens, as DiffMem), with the process RSS growth of each. The aim: memhub's
   build rate ≥ 1/3 of FTS5's.
3. **Search in-process**, interleaved in rounds so that noise hits every series alike:
   ``Memory.search`` (k=10, the whole path: catch-up check, search, stored-block
   decoding, snippets), ``WorkspaceIndex.search`` alone, FTS5 (``MATCH`` of the query
   words OR-ed, ``ORDER BY bm25() LIMIT 10``) and ``BM25Okapi.get_top_n`` (fewer
   queries: it scores every block).
4. **Over HTTP**: a real ``memhub serve`` on that data dir, reusing the index built in
   step 2 (``MEMHUB_INDEX_DIR``), ``POST /v1/workspaces/bench/search`` over one
   keep-alive ``http.client`` connection; the server's RSS afterwards.
5. **A write is searchable at once**: ~50 times, ``PUT`` a note with a word nobody used
   and search for it right away (again until it shows, up to 5 s): the time from
   sending the PUT to the first search that returns it.

Aims (checked in the summary): in-process p50 ≤ 2 ms and p99 ≤ 10 ms, HTTP p50 ≤ 10
ms, ≥ 50× faster than rank_bm25 (p50 ratio), every write visible within 1 s, the build
at ≥ 1/3 of FTS5's rate. Prints a table, writes ``bench/results/search.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import http.client
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from locomo import ROOT, memhub_server
from memhub.memory.blocks import split_file
from memhub.memory.documents import SearchFilters
from memhub.memory.service import Memory
from memhub.store import Store, open_store

WORKSPACE = "bench"
BLOCKS_PER_FILE = 10


@dataclass(frozen=True)
class Plan:
    files: int
    queries: int  # per in-process memhub / FTS5 series, and over HTTP
    bm25_queries: int
    rounds: int
    write_trials: int


FULL = Plan(files=10_000, queries=1_000, bm25_queries=30, rounds=5, write_trials=50)
QUICK = Plan(files=1_000, queries=300, bm25_queries=30, rounds=3, write_trials=30)

AIMS = {
    "inproc_p50_ms": 2.0,
    "inproc_p99_ms": 10.0,
    "http_p50_ms": 10.0,
    "vs_bm25": 50.0,
    "build_vs_fts5": 1 / 3,  # memhub's build rate ÷ FTS5's, in the same run
}

# -- the corpus ---------------------------------------------------------------------------

EN = """memory agent search index block file note project server client request response
cache token context query vector store database table schema migration deploy release branch
commit merge review test latency error retry timeout lock lease session user team meeting plan
task issue bug fix feature config setting secret key backup restore sync replica node cluster
pod container image build pipeline log metric alert dashboard report summary draft document
page section heading paragraph language model prompt answer question reason decision idea goal
risk budget cost price invoice customer order payment warehouse supplier contract doctor
patient travel flight hotel train ticket weather garden recipe kitchen dinner birthday gift
family friend sister brother mother father school teacher lesson exam music guitar concert
movie book chapter author museum painting photo camera beach mountain river forest city street
market coffee bread morning evening weekend monday friday january summer winter write read
send receive open close start stop run check update delete create move copy share remember
forget learn teach explain compare measure improve break repair install configure upgrade
quick slow new old large small broken stable fresh remote local shared private public
running reading writing meetings deployed tested merged released configured broke learned
remembered notes files users teams servers clients tickets reports photos books friends""".split()

RU = """память памяти памятью поиск поиска поиском индекс индекса индексы блок блока блоки
файл файла файлы заметка заметки заметку заметкой проект проекта проекты сервер сервера
серверы клиент клиента запрос запроса запросы ответ ответа кэш токен контекст контекста
хранилище хранилища база базы базу данных таблица таблицы таблицу схема миграция миграции
миграцию деплой релиз ветка ветки ветку коммит слияние ревью тест тесты задержка ошибка ошибки
ошибку повтор таймаут блокировка блокировки сессия сессии пользователь пользователя
пользователи команда команды встреча встречи план задача задачи задачу баг исправление
настройка настройки настройку секрет ключ ключи резервная копия восстановление
синхронизация синхронизации реплика узел кластер под контейнер образ сборка сборки журнал
метрика оповещение отчёт отчёта отчёты сводка черновик документ страница раздел заголовок
язык модель вопрос решение идея цель риск бюджет стоимость цена счёт заказ оплата склад
поставщик договор врач пациент поездка рейс гостиница поезд билет погода сад рецепт кухня
ужин день рождения подарок семья друг сестра брат мама папа школа учитель урок экзамен музыка
гитара концерт фильм книга глава автор музей картина фото камера пляж гора река лес город
улица рынок кофе хлеб утро вечер выходные понедельник пятница январь лето зима написать
прочитать отправить получить открыть закрыть запустить проверить обновить удалить создать
перенести запомнить забыть объяснить сравнить измерить улучшить сломать починить установить
быстрый медленный новый старый большой маленький сломанный стабильный удалённый локальный
общий важно всегда никогда проверили обновили запустили сломалось починили""".split()

UK = """пам'ять пам'яті пошук пошуку індекс індексу блок блоку файл файлу файли нотатка
нотатки нотатку проєкт проєкту сервер сервера клієнт клієнта запит запиту відповідь кеш
токен контекст сховище сховища база бази базу даних таблиця таблиці схема міграція міграції
розгортання реліз гілка гілки коміт злиття рев'ю тест затримка помилка помилки повтор
тайм-аут блокування сесія сесії користувач користувача команда зустріч план завдання вада
виправлення налаштування секрет ключ ключі резервна копія відновлення синхронізація
синхронізації репліка вузол кластер контейнер образ збірка журнал метрика сповіщення звіт
звіту підсумок чернетка документ сторінка розділ заголовок мова модель питання рішення ідея
мета ризик бюджет вартість ціна рахунок замовлення оплата склад постачальник договір лікар
пацієнт подорож рейс готель потяг квиток погода сад рецепт кухня вечеря день народження
подарунок родина друг сестра брат мама тато школа вчитель урок іспит музика гітара концерт
фільм книжка розділ автор музей картина фото камера пляж гора річка ліс місто вулиця ринок
кава хліб ранок вечір вихідні понеділок п'ятниця січень літо зима написати прочитати
надіслати отримати відкрити закрити запустити перевірити оновити видалити створити
перенести запам'ятати забути пояснити порівняти виміряти покращити зламати полагодити
встановити швидкий повільний новий старий великий малий зламаний стабільний віддалений
локальний спільний важливо завжди ніколи перевірили оновили запустили зламалося""".split()

LATIN_SYLLABLES = "ka lo mer tan vis dor pel quin ra sto lin bar gen tor vel mis kor den".split()
CYRILLIC_SYLLABLES = "ра но ств ли ко ме пра ти ва ло ден гор ми ска тру бла ре зо чи пе".split()
TAIL = 12_000  # further words per language: dictionary word forms (English: made up)
MADE_UP = 500  # words no dictionary knows (names, jargon), per Cyrillic language


@dataclass
class Vocabulary:
    words: list[str]
    cum_weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        total = 0.0
        for rank in range(len(self.words)):
            total += 1.0 / (rank + 2) ** 1.05
            self.cum_weights.append(total)

    def draw(self, rng: random.Random, n: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum_weights, k=n)


def _made_up(rng: random.Random, syllables: list[str], endings: list[str], n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        stem = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        out.add(stem + rng.choice(endings))
    return sorted(out)


def _dictionary_forms(lang: str, seeds: list[str], n: int) -> list[str]:
    """Real word forms from pymorphy3's dictionary (a dependency of memhub's analyzer):
    forms of words that start like the base vocabulary's."""
    import pymorphy3  # type: ignore[import-untyped]

    morph = pymorphy3.MorphAnalyzer(lang=lang)
    out: dict[str, None] = {}
    per_prefix = max(1, n // max(1, len({w[:4] for w in seeds})))
    for prefix in sorted({w[:4] for w in seeds if len(w) >= 4}):
        taken = 0
        for word, *_ in morph.iter_known_word_parses(prefix):
            if word not in out and word.isalpha():
                out[word] = None
                taken += 1
                if taken >= per_prefix or len(out) >= n:
                    break
        if len(out) >= n:
            break
    return list(out)


def vocabularies(seed: int) -> dict[str, Vocabulary]:
    """Per language: the base words (frequent), then the tail, shuffled, Zipf-weighted."""
    rng = random.Random(seed)
    out = {}
    for lang, base_words in (("en", EN), ("ru", RU), ("uk", UK)):
        base = list(dict.fromkeys(base_words))
        rng.shuffle(base)
        if lang == "en":
            tail = _made_up(rng, LATIN_SYLLABLES, ["", "s", "ed", "ing"], TAIL)
        else:
            tail = _dictionary_forms(lang, base, TAIL)
            tail += _made_up(rng, CYRILLIC_SYLLABLES, ["", "а", "и", "у", "ом", "ами"], MADE_UP)
        tail = [w for w in dict.fromkeys(tail) if w not in base]
        rng.shuffle(tail)
        out[lang] = Vocabulary(base + tail)
    return out


def sentence(rng: random.Random, vocab: dict[str, Vocabulary], lang: str) -> str:
    words = vocab[lang].draw(rng, rng.randint(6, 15))
    if lang != "en":
        for i in range(len(words)):
            if rng.random() < 0.1:
                words[i] = vocab["en"].draw(rng, 1)[0]
    if rng.random() < 0.05:
        words.append(f"v{rng.randint(1, 40)}.{rng.randint(0, 9)}")
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def note(
    rng: random.Random, vocab: dict[str, Vocabulary], n: int, sections: int = BLOCKS_PER_FILE
) -> tuple[str, str]:
    lang = rng.choices(("en", "ru", "uk"), weights=(0.4, 0.35, 0.25))[0]
    title = " ".join(vocab[lang].draw(rng, 3)).capitalize()
    lines = [f"# {title}", ""]
    for _ in range(sections):
        lines += [f"## {' '.join(vocab[lang].draw(rng, 2)).capitalize()}", ""]
        lines += [" ".join(sentence(rng, vocab, lang) for _ in range(rng.randint(2, 5))), ""]
    topic = vocab["en"].words[n % 50]
    return f"notes/{topic}/{n:05d}-{lang}.md", "\n".join(lines)


def queries(rng: random.Random, vocab: dict[str, Vocabulary], n: int) -> list[str]:
    """2–4 words of one language: mostly mid-frequency words, sometimes a common one."""
    out = []
    for _ in range(n):
        lang = rng.choices(("en", "ru", "uk"), weights=(0.4, 0.35, 0.25))[0]
        words = vocab[lang].words
        picked = [words[min(len(words) - 1, int(rng.paretovariate(0.6)) * 5)] for _ in range(2)]
        picked += rng.sample(words[20:3000], rng.randint(0, 2))
        out.append(" ".join(picked))
    return out


# -- measuring ------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hwm_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_cpu_s() -> float:
    """CPU time of this process's finished children (the index's worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 3),
        "p90": round(percentile(ms, 90), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(max(ms), 3) if ms else 0.0,
        "mean": round(statistics.fmean(ms), 3) if ms else 0.0,
    }


def timed(fn: Callable[[str], Any], items: list[str], cpu: list[float]) -> list[float]:
    """Wall time of ``fn(item)`` for each item; appends the thread's CPU time to ``cpu``
    (steadier than wall time when other processes share the cores)."""
    out = []
    for item in items:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return out


# -- baselines ----------------------------------------------------------------------------------


def fts5_build(path: Path, texts: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE VIRTUAL TABLE blocks USING fts5(text, tokenize='unicode61')")
    with db:
        db.executemany("INSERT INTO blocks(rowid, text) VALUES (?, ?)", enumerate(texts))
    return db


def fts5_query(query: str) -> str:
    words = re.findall(r"\w+", query.lower())
    return " OR ".join(f'"{w}"' for w in words)


def whitespace(text: str) -> list[str]:
    return text.lower().split()


# -- HTTP ----------------------------------------------------------------------------------------


class Http:
    """One keep-alive connection (TCP_NODELAY), JSON in and out."""

    def __init__(self, base_url: str, key: str) -> None:
        url = urlparse(base_url)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes, expect: int) -> bytes:
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def search_body(query: str, k: int = 10) -> bytes:
    return json.dumps({"query": query, "k": k}).encode()


def write_visible_trials(http: Http, trials: int, rng: random.Random) -> dict[str, Any]:
    """PUT a note with a new word, then search for it at once (again until it shows)."""
    visible: list[float] = []
    puts: list[float] = []
    first_search: list[float] = []
    searches_needed: list[int] = []
    search_path = f"/v1/workspaces/{WORKSPACE}/search"
    for i in range(trials):
        word = f"zq{i}x{rng.getrandbits(40):010x}"
        body = f"# Live note {i}\n\n## Trial\n\nJust written: {word} appears here only.\n"
        t0 = time.perf_counter()
        http.call("PUT", f"/v1/workspaces/{WORKSPACE}/files/live/trial-{i}.md", body.encode(), 201)
        t_put = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            t_s = time.perf_counter()
            found = json.loads(http.call("POST", search_path, search_body(word, 3), 200))
            if attempts == 1:
                first_search.append(time.perf_counter() - t_s)
            if any(h["path"] == f"live/trial-{i}.md" for h in found["results"]):
                break
            if time.perf_counter() - t0 > 5:
                break
        visible.append(time.perf_counter() - t0)
        puts.append(t_put - t0)
        searches_needed.append(attempts)
    return {
        "trials": trials,
        "write_to_visible_ms": stats_ms(visible),
        "put_ms": stats_ms(puts),
        "first_search_after_put_ms": stats_ms(first_search),
        "visible_on_first_search": sum(1 for a in searches_needed if a == 1),
        "within_1s": sum(1 for v in visible if v <= 1.0),
    }


# -- the run ----------------------------------------------------------------------------------


def fill(store: Store, files: list[tuple[str, str]]) -> float:
    t0 = time.perf_counter()
    for path, text in files:
        store.put(WORKSPACE, path, text.encode("utf-8"), content_type="text/markdown")
    return time.perf_counter() - t0


def write_results(path: Path, memory: Memory, index: Any, query_set: list[str]) -> None:
    """One JSON line per query: ``Memory.search``'s answer (hits, rounded scores,
    snippets) and the index's own hits with their scores' full ``repr``."""
    with path.open("w", encoding="utf-8") as out:
        for query in query_set:
            hits, _, total = index.search(query, k=10)
            raw = [(h.path, h.seq, repr(h.score)) for h in hits]
            found = memory.search(WORKSPACE, query, k=10)
            line = {"query": query, "found": found, "raw": raw, "total": total}
            out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote the results of {len(query_set)} queries to {path}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1k files (10k blocks)")
    parser.add_argument("--files", type=int, default=None, help="corpus size in files")
    parser.add_argument(
        "--sections",
        type=int,
        default=BLOCKS_PER_FILE,
        help="sections (blocks) per file: 1M blocks is --files 10000 --sections 100",
    )
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument(
        "--skip-one-process",
        action="store_true",
        help="do not build the index a second time in one process (saves time at 1M blocks)",
    )
    parser.add_argument("--json-out", default=str(ROOT / "bench" / "results" / "search.json"))
    parser.add_argument("--scratch", default=None, help="where the temporary data dir goes")
    parser.add_argument(
        "--results-out",
        default=None,
        help="write every query's results (hits, scores, snippets; revision times from a "
        "fixed clock) after the first build to this file and stop: run it with two "
        "versions of memhub and compare the files",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.files:
        plan = dataclasses.replace(plan, files=args.files)
    phases: dict[str, float] = {}
    started = time.perf_counter()

    rng = random.Random(args.seed)
    vocab = vocabularies(args.seed)
    files = [note(rng, vocab, n, args.sections) for n in range(plan.files)]
    texts = [b.text for path, text in files for b in split_file(path, text)]
    query_set = queries(random.Random(args.seed + 1), vocab, plan.queries)
    corpus_mb = sum(len(t.encode()) for _, t in files) / 1e6
    print(
        f"corpus: {len(files)} files, {len(texts)} blocks, {corpus_mb:.1f} MB; "
        f"{len(query_set)} queries",
        file=sys.stderr,
    )
    phases["generate_s"] = time.perf_counter() - started

    scratch = Path(tempfile.mkdtemp(prefix="memhub-search-", dir=args.scratch))
    data_dir = scratch / "data"
    index_dir = scratch / "index"
    results: dict[str, Any] = {}
    rows: list[tuple[str, ...]] = []
    try:
        data_dir.mkdir()
        store = open_store(f"sqlite:///{data_dir / 'memhub.db'}", (data_dir / "blobs").as_uri())
        if args.results_out:  # the same revision times in every run
            store.clock = itertools.count(1_700_000_000.0).__next__
        store.create_workspace(WORKSPACE)
        fill_s = fill(store, files)
        phases["fill_s"] = fill_s
        print(f"filled: {len(files) / fill_s:.0f} puts/s", file=sys.stderr)

        # -- builds: memhub (its worker processes), FTS5, memhub in one process
        memory = Memory(store, index_dir)
        index = memory.index.workspace(WORKSPACE)
        workers = index.processes
        rss0 = rss_mb()
        c0, k0 = time.process_time(), children_cpu_s()
        t0 = time.perf_counter()
        built = memory.rebuild(WORKSPACE)
        build_s = time.perf_counter() - t0
        build_cpu_s = time.process_time() - c0
        worker_cpu_s = children_cpu_s() - k0  # the workers stop (and are reaped) at the end
        rss_memhub = rss_mb() - rss0
        blocks = built["blocks"]
        disk_mb = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file()) / 1e6
        print(f"memhub index: {blocks} blocks in {build_s:.1f} s", file=sys.stderr)

        if args.results_out:
            write_results(Path(args.results_out), memory, index, query_set)
            memory.close()
            store.close()
            return 0

        rss0 = rss_mb()
        c0 = time.process_time()
        t0 = time.perf_counter()
        fts = fts5_build(scratch / "fts.db", texts)
        fts_build_s = time.perf_counter() - t0
        fts_cpu_s = time.process_time() - c0
        rss_fts = rss_mb() - rss0

        one_s = one_cpu_s = math.nan
        if not args.skip_one_process:
            index.processes = 0
            c0 = time.process_time()
            t0 = time.perf_counter()
            memory.rebuild(WORKSPACE)
            one_s = time.perf_counter() - t0
            one_cpu_s = time.process_time() - c0
            index.processes = workers
            print(f"memhub index in one process: {one_s:.1f} s", file=sys.stderr)

        from rank_bm25 import BM25Okapi

        rss0 = rss_mb()
        t0 = time.perf_counter()
        corpus_tokens = [whitespace(t) for t in texts]
        bm25 = BM25Okapi(corpus_tokens)
        bm25_build_s = time.perf_counter() - t0
        rss_bm25 = rss_mb() - rss0
        phases["build_s"] = build_s + fts_build_s + bm25_build_s + (one_s if one_s > 0 else 0)
        results["build"] = {
            "memhub": {
                "blocks": blocks,
                "workers": workers,
                "seconds": round(build_s, 2),
                "blocks_per_s": round(blocks / build_s),
                "cpu_seconds": round(build_cpu_s, 2),
                "worker_cpu_seconds": round(worker_cpu_s, 2),
                "blocks_per_cpu_s": round(blocks / (build_cpu_s + worker_cpu_s)),
                "rss_growth_mb": round(rss_memhub, 1),
                "index_disk_mb": round(disk_mb, 1),
            },
            "memhub_one_process": {  # NaN with --skip-one-process
                "seconds": round(one_s, 2),
                "blocks_per_s": round(blocks / one_s, 1),
                "cpu_seconds": round(one_cpu_s, 2),
                "blocks_per_cpu_s": round(blocks / one_cpu_s, 1),
            },
            "fts5": {
                "seconds": round(fts_build_s, 2),
                "blocks_per_s": round(len(texts) / fts_build_s),
                "blocks_per_cpu_s": round(len(texts) / fts_cpu_s),
                "rss_growth_mb": round(rss_fts, 1),
            },
            "rank_bm25": {
                "seconds": round(bm25_build_s, 2),
                "blocks_per_s": round(len(texts) / bm25_build_s),
                "rss_growth_mb": round(rss_bm25, 1),
            },
        }

        # -- in-process searches, interleaved in rounds
        def memhub_search(q: str) -> Any:
            return memory.search(WORKSPACE, q, k=10)

        def index_search(q: str) -> Any:
            return index.search(q, k=10, filters=SearchFilters())

        def fts_search(q: str) -> Any:
            return fts.execute(
                "SELECT rowid, bm25(blocks) FROM blocks WHERE blocks MATCH ? "
                "ORDER BY bm25(blocks) LIMIT 10",
                (fts5_query(q),),
            ).fetchall()

        def bm25_search(q: str) -> Any:
            return bm25.get_top_n(whitespace(q), texts, n=10)

        # Everything built so far (the corpus, rank_bm25's 100k dicts, ...) lives until the
        # end: keep it out of the collector, or a full collection triggered by one series
        # walks the other's data inside the timed loop.
        gc.collect()
        gc.freeze()
        for q in query_set[:20]:  # warm-up: caches, page cache, the first searcher
            memhub_search(q)
            fts_search(q)
        names = (
            "memhub Memory.search",
            "memhub WorkspaceIndex.search",
            "SQLite FTS5 bm25()",
            "rank_bm25 get_top_n",
        )
        series: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        round_ratio: list[float] = []
        empty = sum(1 for q in query_set if not memhub_search(q)["results"])
        t0 = time.perf_counter()
        for r in range(plan.rounds):
            part = query_set[r :: plan.rounds]
            bm25_part = query_set[: plan.bm25_queries][r :: plan.rounds]
            mem = timed(memhub_search, part, cpu[names[0]])
            series[names[0]] += mem
            series[names[1]] += timed(index_search, part, cpu[names[1]])
            series[names[2]] += timed(fts_search, part, cpu[names[2]])
            slow = timed(bm25_search, bm25_part, cpu[names[3]])
            series[names[3]] += slow
            round_ratio.append(statistics.median(slow) / statistics.median(mem))
        phases["search_inproc_s"] = time.perf_counter() - t0
        rss_bench = rss_mb()
        results["inprocess"] = {name: stats_ms(values) for name, values in series.items()}
        results["inprocess_cpu"] = {name: stats_ms(values) for name, values in cpu.items()}
        results["inprocess_round_ratios_bm25"] = [round(x, 1) for x in round_ratio]
        results["queries_without_results"] = empty
        memory.close()
        store.close()
        fts.close()

        # -- over HTTP, on the same data dir and index
        t0 = time.perf_counter()
        with memhub_server(data_dir, {"MEMHUB_INDEX_DIR": str(index_dir)}) as server:
            http = Http(server.base_url, server.key)
            path = f"/v1/workspaces/{WORKSPACE}/search"
            for q in query_set[:20]:
                http.call("POST", path, search_body(q), 200)
            latencies = []
            for q in query_set:
                body = search_body(q)
                t1 = time.perf_counter()
                http.call("POST", path, body, 200)
                latencies.append(time.perf_counter() - t1)
            results["http"] = {"POST /v1/…/search": stats_ms(latencies)}
            results["server_rss_mb"] = round(rss_mb(server.pid), 1)
            results["server_peak_rss_mb"] = round(hwm_mb(server.pid), 1)
            results["write_visible"] = write_visible_trials(
                http, plan.write_trials, random.Random(args.seed + 2)
            )
            http.close()
        phases["http_s"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    ours = results["inprocess"]["memhub Memory.search"]
    slow = results["inprocess"]["rank_bm25 get_top_n"]
    fts_p50 = results["inprocess"]["SQLite FTS5 bm25()"]["p50"]
    http_stats = results["http"]["POST /v1/…/search"]
    ratio_bm25 = slow["p50"] / ours["p50"]
    for name, s in results["inprocess"].items():
        base = f"{slow['p50'] / s['p50']:.0f}x faster" if name != "rank_bm25 get_top_n" else "-"
        rows.append(
            (
                f"{name} (in-process)",
                str(s["n"]),
                f"{s['p50']:.2f}",
                f"{s['p90']:.2f}",
                f"{s['p99']:.2f}",
                f"{results['inprocess_cpu'][name]['p50']:.2f}",
                f"{results['inprocess_cpu'][name]['p99']:.2f}",
                base,
            )
        )
    rows.append(
        (
            "memhub POST /v1/…/search (HTTP)",
            str(http_stats["n"]),
            f"{http_stats['p50']:.2f}",
            f"{http_stats['p90']:.2f}",
            f"{http_stats['p99']:.2f}",
            "",
            "",
            f"{slow['p50'] / http_stats['p50']:.0f}x faster",
        )
    )
    wv = results["write_visible"]
    rows.append(
        (
            "write → visible (PUT, then search)",
            str(wv["trials"]),
            f"{wv['write_to_visible_ms']['p50']:.2f}",
            f"{wv['write_to_visible_ms']['p90']:.2f}",
            f"{wv['write_to_visible_ms']['p99']:.2f}",
            "",
            "",
            f"max {wv['write_to_visible_ms']['max']:.1f} ms",
        )
    )
    header = ("series", "n", "p50 ms", "p90 ms", "p99 ms", "cpu p50", "cpu p99", "vs rank_bm25")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    print(f"{results['build']['memhub']['blocks']} blocks ({len(files)} files)")
    for i, row in enumerate([header, *rows]):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    print()
    build = results["build"]
    print(
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "(wall times include waiting for a core; cpu = this thread's CPU time)"
    )
    fts_rate = build["fts5"]["blocks_per_s"]
    print("index build (blocks/s, ÷ FTS5's blocks/s in this run, CPU seconds):")
    for name, label, cpu_s in (
        (
            "memhub",
            f"memhub ({build['memhub']['workers']} workers)",
            f"{build['memhub']['cpu_seconds']:.1f} + workers "
            f"{build['memhub']['worker_cpu_seconds']:.1f}",
        ),
        (
            "memhub_one_process",
            "memhub (one process)",
            f"{build['memhub_one_process']['cpu_seconds']:.1f}",
        ),
        ("fts5", "SQLite FTS5", ""),
        ("rank_bm25", "rank_bm25", ""),
    ):
        rate = build[name]["blocks_per_s"]
        print(
            f"  {label:22} {rate:>7} blocks/s  {rate / fts_rate:5.2f}  "
            f"{build[name]['seconds']:>6.1f} s  {cpu_s}"
        )
    print(
        f"  blocks per CPU second: memhub {build['memhub']['blocks_per_cpu_s']} (workers "
        f"included), one process {build['memhub_one_process']['blocks_per_cpu_s']}, "
        f"FTS5 {build['fts5']['blocks_per_cpu_s']}"
    )
    print(
        f"  RSS growth: memhub +{build['memhub']['rss_growth_mb']:.0f} MB, "
        f"FTS5 +{build['fts5']['rss_growth_mb']:.0f} MB, "
        f"rank_bm25 +{build['rank_bm25']['rss_growth_mb']:.0f} MB; "
        f"memhub index on disk: {build['memhub']['index_disk_mb']:.0f} MB"
    )
    print(
        f"RSS: bench process {rss_bench:.0f} MB (everything above in it); "
        f"memhub server {results['server_rss_mb']:.0f} MB "
        f"(peak {results['server_peak_rss_mb']:.0f})"
    )
    print(
        f"write → visible: {wv['within_1s']}/{wv['trials']} within 1 s, "
        f"{wv['visible_on_first_search']}/{wv['trials']} on the first search; "
        f"PUT p50 {wv['put_ms']['p50']:.1f} ms, first search after it p50 "
        f"{wv['first_search_after_put_ms']['p50']:.1f} ms"
    )
    print(f"queries with no result: {results['queries_without_results']}/{len(query_set)}")
    summary = {
        "inproc_p50_ms": ours["p50"],
        "inproc_p99_ms": ours["p99"],
        "http_p50_ms": http_stats["p50"],
        "vs_bm25": round(ratio_bm25, 1),
        "vs_fts5_p50": round(fts_p50 / ours["p50"], 2),
        "build_vs_fts5": round(build["memhub"]["blocks_per_s"] / fts_rate, 2),
        "writes_visible_within_1s": wv["within_1s"] == wv["trials"],
    }
    met = {
        "inproc_p50_ms": ours["p50"] <= AIMS["inproc_p50_ms"],
        "inproc_p99_ms": ours["p99"] <= AIMS["inproc_p99_ms"],
        "http_p50_ms": http_stats["p50"] <= AIMS["http_p50_ms"],
        # rank_bm25 scores every block, so the ratio grows with the corpus: the aim is
        # for 100k blocks, not for --quick
        "vs_bm25": ratio_bm25 >= AIMS["vs_bm25"] or args.quick,
        "writes_visible_within_1s": summary["writes_visible_within_1s"],
        "build_vs_fts5": summary["build_vs_fts5"] >= AIMS["build_vs_fts5"],
    }
    print(
        f"aims: in-process p50 {ours['p50']:.2f} ≤ 2 ms {met['inproc_p50_ms']}, "
        f"p99 {ours['p99']:.2f} ≤ 10 ms {met['inproc_p99_ms']}; "
        f"HTTP p50 {http_stats['p50']:.2f} ≤ 10 ms {met['http_p50_ms']}; "
        f"{ratio_bm25:.0f}x rank_bm25 ≥ 50x {met['vs_bm25']}"
        f"{' (not checked at 10k blocks)' if args.quick else ''}; "
        f"writes visible within 1 s {met['writes_visible_within_1s']}; "
        f"build {summary['build_vs_fts5']:.2f} of FTS5's rate ≥ 0.33 {met['build_vs_fts5']}"
    )
    phases["total_s"] = time.perf_counter() - started
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results |= {
        "plan": plan.__dict__,
        "corpus": {"files": len(files), "blocks": len(texts), "mb": round(corpus_mb, 1)},
        "bench_rss_mb": round(rss_bench, 1),
        "summary": summary,
        "aims": AIMS,
        "met": met,
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg": os.getloadavg(),
        },
    }
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {out} ({phases['total_s']:.0f} s)")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
