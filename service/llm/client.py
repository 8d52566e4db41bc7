"""A client for any OpenAI-compatible chat server: llama.cpp's llama-server, Ollama, vLLM.

Everything that can go wrong with the server (unreachable, an HTTP error, a reply that is not a
chat completion, a stream that stops before its end, a reply slower than the timeout) is one
`LLMFailure` with a sentence saying which; the reader then answers extractively.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


class LLMFailure(Exception):
    """The LLM gave no usable answer; the message says why, for the API's `fallback_reason`."""


@dataclass(frozen=True)
class LLMConfig:
    base_url: str  # e.g. http://127.0.0.1:8080/v1
    model: str = ""  # sent as `model` when set (llama-server ignores it; Ollama and vLLM need it)
    api_key: str | None = None
    timeout_s: float = 30.0  # for the whole reply, streamed or not
    max_tokens: int = 400
    seed: int = 0


def _body(config: LLMConfig, messages: list[dict[str, str]], stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": messages,
        "temperature": 0,
        "seed": config.seed,
        "max_tokens": config.max_tokens,
        "stream": stream,
    }
    if config.model:
        body["model"] = config.model
    return body


class ChatClient:
    def __init__(self, config: LLMConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _deadline_message(self) -> str:
        return f"the LLM did not answer within {self.config.timeout_s:g} s"

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """The whole reply's text."""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                response = await self._client.post("chat/completions", json=_body(self.config, messages, False))
        except TimeoutError as exc:
            raise LLMFailure(self._deadline_message()) from exc
        except httpx.TimeoutException as exc:
            raise LLMFailure(self._deadline_message()) from exc
        except httpx.HTTPError as exc:
            raise LLMFailure(f"the LLM server cannot be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise LLMFailure(f"the LLM server answered HTTP {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMFailure("the LLM's reply is not a chat completion") from exc
        if not isinstance(content, str):
            raise LLMFailure("the LLM's reply has no text")
        return content

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """The reply's text as it comes; LLMFailure when the stream breaks, stops before its
        end (no finish_reason and no [DONE]) or outlasts the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout_s
        request = self._client.build_request("POST", "chat/completions", json=_body(self.config, messages, True))
        try:
            response = await asyncio.wait_for(self._client.send(request, stream=True), self.config.timeout_s)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMFailure(self._deadline_message()) from exc
        except httpx.HTTPError as exc:
            raise LLMFailure(f"the LLM server cannot be reached ({type(exc).__name__})") from exc
        try:
            if response.status_code != 200:
                raise LLMFailure(f"the LLM server answered HTTP {response.status_code}")
            lines = response.aiter_lines()
            finished = False
            while True:
                try:
                    line = await asyncio.wait_for(anext(lines), max(0.0, deadline - loop.time()))
                except StopAsyncIteration:
                    break
                except (TimeoutError, httpx.TimeoutException) as exc:
                    raise LLMFailure(self._deadline_message()) from exc
                except httpx.HTTPError as exc:
                    raise LLMFailure(f"the LLM's stream broke off ({type(exc).__name__})") from exc
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                text, finish = _delta(data)
                if text:
                    yield text
                if finish:
                    finished = True
            if not finished:
                raise LLMFailure("the LLM's stream stopped before its end")
        finally:
            await response.aclose()


def _delta(data: str) -> tuple[str, bool]:
    """A stream chunk's text and whether it says the reply is finished."""
    try:
        choice = json.loads(data)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMFailure("the LLM's stream holds something other than chat completion chunks") from exc
    if not isinstance(choice, dict):
        raise LLMFailure("the LLM's stream holds something other than chat completion chunks")
    delta = choice.get("delta") or {}
    text = delta.get("content") if isinstance(delta, dict) else None
    return (text if isinstance(text, str) else ""), bool(choice.get("finish_reason"))
