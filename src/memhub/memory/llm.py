"""An OpenAI-compatible chat-completions provider, used only when configured.

One call, :meth:`ChatProvider.complete_json`::

    provider = ChatProvider(LLMConfig(base_url, api_key, model))
    answer = provider.complete_json(messages, schema)   # a dict valid against schema

- any endpoint that speaks ``POST {base_url}/chat/completions`` (OpenAI,
  OpenRouter, Ollama's ``/v1``, vLLM, LiteLLM) over httpx;
- the JSON schema is sent in a system message and ``response_format`` asks for
  a JSON object; the answer is parsed (a fenced ```json block is accepted) and
  validated with ``jsonschema``: an invalid answer counts as a failed attempt;
- timeouts per request; retries with exponential backoff (honouring a short
  ``Retry-After``) on timeouts, connection errors, 429 and 5xx; other 4xx fail
  at once; every failure ends as :class:`~memhub.errors.LLMUnavailable` (502);
- token usage (``usage.prompt_tokens`` / ``completion_tokens``) goes to the
  ``on_usage`` callback; the server counts it in ``/metrics``
  (``memhub_llm_tokens_total{kind}``, ``memhub_llm_requests_total{outcome}``).

The server builds one provider at start-up (``app.state.llm``: a ChatProvider, or
None when no LLM is configured), with its metrics wired; features that may use an
LLM take it from there and keep an offline path for None.

Settings: ``MEMHUB_LLM_BASE_URL``, ``MEMHUB_LLM_API_KEY``, ``MEMHUB_LLM_MODEL``,
``MEMHUB_LLM_TIMEOUT_SECONDS``, ``MEMHUB_LLM_MAX_RETRIES``, ``MEMHUB_LLM_BACKOFF_SECONDS``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema

from memhub.errors import LLMUnavailable

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF = 8.0
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

UsageCallback = Callable[[str, int, int], None]  # (model, prompt tokens, completion tokens)
OutcomeCallback = Callable[[str], None]  # ok | retry | invalid | error


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 0.5


def _parse_json(content: str) -> Any:
    text = content.strip()
    fenced = _FENCED.search(text)
    if fenced:
        text = fenced.group(1).strip()
    return json.loads(text)


class ChatProvider:
    def __init__(
        self,
        config: LLMConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        on_usage: UsageCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=config.timeout,
            transport=transport,
        )
        self._on_usage = on_usage
        self._on_outcome = on_outcome
        self._sleep = sleep

    @property
    def model(self) -> str:
        return self.config.model

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ChatProvider:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _outcome(self, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _wait(self, attempt: int, retry_after: str | None = None) -> None:
        delay = self.config.backoff * (2**attempt)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        self._sleep(min(delay, MAX_BACKOFF))

    def complete_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any]
    ) -> dict[str, Any]:
        """The model's answer to ``messages`` as a JSON object valid against ``schema``."""
        system = (
            "Answer with one JSON object and nothing else. It must validate against this "
            "JSON schema:\n" + json.dumps(schema)
        )
        body = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, *messages],
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        last = "no attempt was made"
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._outcome("retry")
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException as exc:
                last = f"timed out after {self.config.timeout} s ({type(exc).__name__})"
                self._wait(attempt)
                continue
            except httpx.TransportError as exc:
                last = f"could not reach {self.config.base_url}: {exc}"
                self._wait(attempt)
                continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                self._wait(attempt, response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:
                self._outcome("error")
                raise LLMUnavailable(
                    f"the LLM endpoint refused the request: HTTP {response.status_code}",
                    context={"status": response.status_code, "body": response.text[:500]},
                    hint="check MEMHUB_LLM_BASE_URL, MEMHUB_LLM_API_KEY and MEMHUB_LLM_MODEL",
                )
            try:
                answer = self._answer(response, schema)
            except ValueError as exc:
                last = f"invalid answer: {exc}"
                self._outcome("invalid")
                continue
            self._outcome("ok")
            return answer
        self._outcome("error")
        raise LLMUnavailable(
            f"the LLM gave no valid answer after {self.config.max_retries + 1} attempts: {last}",
            context={"model": self.config.model},
            hint="unset MEMHUB_LLM_BASE_URL to use the offline extractor",
        )

    def _answer(self, response: httpx.Response, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            payload = response.json()
            usage = payload.get("usage") or {}
            if self._on_usage is not None:
                self._on_usage(
                    self.config.model,
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                )
            content = payload["choices"][0]["message"]["content"]
            answer = _parse_json(content or "")
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a chat completion with JSON content ({exc})") from exc
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
        try:
            jsonschema.validate(answer, schema)
        except jsonschema.ValidationError as exc:
            raise ValueError(f"does not match the schema: {exc.message}") from exc
        return answer
