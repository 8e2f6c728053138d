"""A small OpenAI-compatible chat-completions server for the LLM tests.

``POST /v1/chat/completions`` answers like OpenAI does (``choices[0].message.content``,
``usage``). What it answers is decided by the prompt, deterministically:

- "Extract every fact" (memhub's extractor prompt): one fact per sentence of the
  transcript, its capitalised words as people, ``date`` when the sentence says
  "yesterday" (the session date minus one day, as an LLM would resolve it);
- "Plan up to 5" (the orchestrated-search planner): the capitalised words and the
  last line as queries;
- "Answer the last message" (DiffMem's orchestrated ``response``): the first memory.

A test scripts failures first with :meth:`FakeOpenAI.script`: ``"500"``, ``"429"``,
``"400"``, ``"invalid-json"``, ``"bad-schema"``, ``"fenced"`` (a valid answer in a
```json fence), ``"slow"`` (answers after ``slow_seconds``). Every request is
recorded (headers and body) for assertions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_CAPS = re.compile(r"\b[A-Z][a-z]+\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_COMMON = {"The", "This", "That", "We", "She", "He", "They", "It", "Had", "Met", "Went", "Known"}


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scripted: list[str] = []
        self.slow_seconds = 2.0
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    def script(self, *behaviours: str) -> None:
        with self.lock:
            self.scripted.extend(behaviours)

    def _next(self) -> str:
        with self.lock:
            return self.scripted.pop(0) if self.scripted else "ok"

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        behaviour = self._next()
        if behaviour in ("500", "429", "400"):
            headers = {"retry-after": "0"} if behaviour == "429" else {}
            return JSONResponse({"error": behaviour}, status_code=int(behaviour), headers=headers)
        if behaviour == "slow":
            import anyio

            await anyio.sleep(self.slow_seconds)
        prompt = body["messages"][-1]["content"]
        answer = self.answer(prompt)
        content = json.dumps(answer)
        if behaviour == "invalid-json":
            content = "Sure! Here are the facts: {facts: [oops"
        elif behaviour == "bad-schema":
            content = json.dumps({"facts": [{"no_text": True}], "queries": "not a list"})
        elif behaviour == "fenced":
            content = f"```json\n{content}\n```"
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": len(content.split()),
                },
            }
        )

    @staticmethod
    def answer(prompt: str) -> dict[str, Any]:
        if prompt.startswith("Answer the last message"):
            memories = prompt.split("Memories:\n", 1)[1]
            first = memories.split("\n\n")[0]
            return {"response": f"From memory: {first[:200]}"}
        if prompt.startswith("Plan up to 5"):
            conversation = prompt.split("\n\n", 1)[1]
            names = [w for w in _CAPS.findall(conversation) if w not in _COMMON]
            last = conversation.strip().splitlines()[-1]
            return {"queries": list(dict.fromkeys([*names, last]))[:5]}
        session = re.search(r"Session date: (\d{4}-\d{2}-\d{2})", prompt)
        day = date.fromisoformat(session.group(1)) if session else date.today()
        transcript = prompt.split("\n\n", 1)[1]
        facts = []
        for sentence in _SENTENCE.split(transcript.strip()):
            names = [w for w in _CAPS.findall(sentence) if w not in _COMMON]
            fact: dict[str, Any] = {
                "text": sentence.replace("yesterday", f"on {day - timedelta(days=1)}"),
                "about_user": " I " in f" {sentence} ",
                "entities": [{"name": n, "kind": "people"} for n in names],
            }
            if "yesterday" in sentence:
                fact["date"] = (day - timedelta(days=1)).isoformat()
            facts.append(fact)
        return {"facts": facts}


@contextmanager
def running(fake: FakeOpenAI) -> Iterator[str]:
    """Serve ``fake`` on a free loopback port; yields its base URL (``…/v1``)."""
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake OpenAI server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
