"""The SDK's MCP client against citeqa, for the MCP tests with and without an LLM."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.conftest import CITEQA, REPO, citeqa_env

T = TypeVar("T")


def run(session: Callable[[Client], Awaitable[T]], client: Client) -> T:
    async def main() -> T:
        async with client:
            return await session(client)

    return asyncio.run(main())


def stdio_client(index: Path, **env: str) -> Client:
    """`citeqa mcp --index INDEX` spawned by the SDK, with the environment of `run_citeqa`."""
    command, *args = CITEQA
    server = StdioServerParameters(
        command=command, args=[*args, "mcp", "--index", str(index)], env=citeqa_env(**env), cwd=REPO
    )
    return Client(server, read_timeout_seconds=60)


def http_client(url: str, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    return Client(transport, read_timeout_seconds=60)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(str(getattr(block, "text", "")) for block in result.content)


async def tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


def documents_of(url: str, key: str | None = None) -> Callable[[str], str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def text(doc_id: str) -> str:
        response = httpx.get(f"{url}/documents/{doc_id}", headers=headers, timeout=10)
        assert response.status_code == 200
        return str(response.json()["text"])

    return text
