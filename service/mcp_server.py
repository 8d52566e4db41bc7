"""citeqa as an MCP server (issue #20): search, passages, documents and, with an LLM configured,
checked written answers, as tools for an MCP client (Claude Desktop, an IDE, an agent).

Two transports serve the same tools:
- stdio, `citeqa mcp --index DIR`: a process the client starts; stdout carries the protocol,
  logs go to stderr;
- Streamable HTTP at `/mcp` of the served app (`McpHttp`), behind the API key of `/ask`,
  stateless (any request may reach any worker of `serve --workers`) and answered as JSON.

Every search goes through `service.asking.search`, so through the app's gate (its limits and its
timeout) like `/ask`, and its passages are the dicts `/ask` answers, less their `display` blocks
(the web page's formatting, which would only fill a model's context). Citations are exact:
`document.text[start:end]` is the passage, and `get_passage` gives any such span back.
"""

import asyncio
import logging
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service.app import document_list, warm
from service.asking import Asked
from service.asking import search as search_index
from service.display import Displays
from service.guards import API_KEY_MISSING, Overloaded, SearchGate, TimedOut, api_key_matches, send_problem
from service.llm.reader import reader_from_settings, written_answer
from service.observability import Metrics
from service.retriever import Retriever
from service.schemas import AnswerSpan, AskRequest, Citation, DocumentList, WrittenAnswer
from service.settings import Settings

log = logging.getLogger("citeqa")

MAX_SPAN_CHARS = 20_000  # the longest text get_passage returns: a few pages, not a whole book
LOOPBACK_ORIGINS = ("http://127.0.0.1", "http://localhost", "http://[::1]", "https://127.0.0.1", "https://localhost")

INSTRUCTIONS = (
    "citeqa answers questions from one indexed corpus of documents, every passage with an exact citation: "
    "doc_id plus start and end, character offsets (Unicode code points) such that the document's "
    "text[start:end] is the passage word for word. Use `search` to find passages, `get_passage` to read a "
    "cited span (or more around it), `list_documents` to see what the corpus holds. When you use a passage, "
    "cite it as doc_id[start:end] (with its page when it has one). When `answerable` is false, say that the "
    "corpus does not answer rather than answering from the passages."
)
CITATION_HELP = (
    "Each passage has `text`, `answer` (the sentence of the passage that best answers, with its own "
    "start/end; may be null) and `citation`: doc_id, title, source, section, speaker, page(s), and start/end, "
    "character offsets such that the document's text[start:end] is exactly the passage (get_passage returns "
    "it). Cite what you use as doc_id[start:end]."
)
SEARCH_DESCRIPTION = (
    "Search the corpus for the passages that answer a question, best first. "
    + CITATION_HELP
    + " `answerable` is false when nothing in the corpus looks relevant enough (`no_answer_reason` says why): "
    "then tell the user the corpus does not answer; the passages are only the closest found. Filters: "
    "doc_ids (ids from list_documents), section (a prefix of the section path, any case), speaker (exact "
    "name, any case)."
)
ASK_DESCRIPTION = (
    "Answer a question in prose, written by the configured LLM from the top passages and checked: every "
    "sentence of `written.sentences` lists the `citations` that support it (spans with doc_id, start, end "
    "and the exact `text`), and a sentence no cited passage supports is marked `supported: false` (and "
    "'[unsupported]' in `written.text`): do not present those as facts. `written.status` is 'written', "
    "'unsupported', 'declined' (the passages do not answer) or 'extractive' (the LLM failed: the best "
    "passage's sentence instead). The passages searched come along as in `search`. " + CITATION_HELP
)
GET_PASSAGE_DESCRIPTION = (
    "The exact text of a document between two character offsets: text[start:end] of document `doc_id`, with "
    "its title, source and page(s). Use it to read a passage that search cited (its citation's doc_id, start, "
    f"end) or the text around it. At most {MAX_SPAN_CHARS} characters at once; `characters` is the document's "
    "length."
)
LIST_DESCRIPTION = (
    "The documents of the corpus, in corpus order, a page at a time (as GET /documents): doc_id, title, "
    "source, format, length in characters, pages. Use the doc_ids to filter `search` or with `get_passage`."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

Question = Annotated[
    str,
    Field(min_length=1, max_length=1000, description="The question, 1–1000 characters, in the corpus's language."),
]
K = Annotated[int, Field(ge=1, le=50, description="How many passages to return.")]
ModeArg = Annotated[
    Literal["hybrid", "dense", "lexical"],
    Field(description="Retrieval: hybrid (default, best), dense (meaning) or lexical (exact words)."),
]
DocIds = Annotated[
    list[str] | None,
    Field(min_length=1, max_length=100, description="Only passages of these documents (doc_ids of list_documents)."),
]
Section = Annotated[
    str | None,
    Field(
        max_length=500,
        description="Only passages whose section path starts with this, any case; a section path is the "
        "headings above the passage joined with ' › ', e.g. 'Configuration › Build'.",
    ),
]
Speaker = Annotated[str | None, Field(max_length=500, description="Only passages spoken by this person (any case).")]


class CitedPassage(BaseModel):
    """A passage as `/ask` answers it, without the web page's display blocks."""

    rank: int
    score: float
    chunk_id: str
    text: str = Field(description="The passage: its document's text[citation.start:citation.end].")
    answer: AnswerSpan | None = Field(description="The sentence of the passage that best answers the question.")
    citation: Citation


class SearchResult(BaseModel):
    question: str
    mode: str
    took_ms: float
    answerable: bool = Field(description="False when nothing in the corpus looks relevant enough.")
    no_answer_reason: str | None = Field(description="Why nothing answers, when `answerable` is false.")
    generation: int = Field(description="The index generation that answered.")
    passages: list[CitedPassage]


class AskResult(SearchResult):
    written: WrittenAnswer = Field(description="The written answer, each sentence checked against its citations.")


class PassageText(BaseModel):
    doc_id: str
    title: str
    source: str
    format: str = Field(description="The reader that extracted the text: text, markdown, html or pdf.")
    start: int = Field(description="Offset of the span in the document's text (code points).")
    end: int
    text: str = Field(description="The document's text[start:end], exactly.")
    page: int | None = Field(description="Page (1-based) where the span starts; null for documents without pages.")
    pages: list[int] | None = Field(description="First and last page of the span; null without pages.")
    characters: int = Field(description="Length of the whole document's text, in code points.")


@contextmanager
def root_logging_kept() -> Iterator[None]:
    """MCPServer() calls logging.basicConfig (a rich handler on the root logger): keep the root
    logger as citeqa set it, so the service's logs stay one JSON line each."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" if e["loc"] else str(e["msg"])
        for e in error.errors(include_url=False)
    )


def _request(**fields: Any) -> AskRequest:
    """The arguments checked as /ask checks its body (no control characters, trimmed text, ...)."""
    try:
        return AskRequest.model_validate({name: value for name, value in fields.items() if value is not None})
    except ValidationError as error:
        raise ToolError(f"invalid arguments: {_problems(error)}") from None


def _retriever(app: FastAPI) -> Retriever:
    retriever: Retriever | None = app.state.retriever
    if retriever is None:
        failed = getattr(app.state, "load_error", None)
        raise ToolError(f"the index failed to load: {failed}" if failed else "the index is not loaded yet; retry")
    return retriever


async def _asked(app: FastAPI, request: AskRequest) -> Asked:
    retriever = _retriever(app)
    unknown = retriever.unknown_documents(request.doc_ids or ())
    if unknown:
        raise ToolError(f"unknown document id(s): {', '.join(unknown)} (list_documents lists them)")
    try:
        return await search_index(app, request.question, request.k, request.mode, request.filters(), retriever)
    except Overloaded:
        raise ToolError("the server is busy (too many searches in flight); retry shortly") from None
    except TimedOut:
        timeout = app.state.settings.request_timeout_s
        raise ToolError(f"the search took longer than {timeout:g}s; retry, or ask for fewer passages") from None


def _result(asked: Asked) -> dict[str, Any]:
    body = asked.body()
    body["passages"] = [{key: value for key, value in p.items() if key != "display"} for p in asked.passages]
    return body


def build_mcp(app: FastAPI) -> MCPServer:
    """The tools, over the state of `app` (its retriever, gate, displays, metrics and reader);
    `ask` only when an LLM is configured."""
    with root_logging_kept():
        server: MCPServer = MCPServer(
            "citeqa", title="citeqa", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING"
        )

    @server.tool(description=SEARCH_DESCRIPTION, annotations=READ_ONLY, structured_output=True)
    async def search(
        question: Question,
        k: K = 5,
        mode: ModeArg = "hybrid",
        doc_ids: DocIds = None,
        section: Section = None,
        speaker: Speaker = None,
    ) -> SearchResult:
        request = _request(question=question, k=k, mode=mode, doc_ids=doc_ids, section=section, speaker=speaker)
        return SearchResult.model_validate(_result(await _asked(app, request)))

    @server.tool(description=GET_PASSAGE_DESCRIPTION, annotations=READ_ONLY, structured_output=True)
    def get_passage(
        doc_id: Annotated[str, Field(max_length=128, description="The document's id (a citation's doc_id).")],
        start: Annotated[int, Field(description="Offset where the span starts (a citation's start).")],
        end: Annotated[int, Field(description="Offset where the span ends, exclusive (a citation's end).")],
    ) -> PassageText:
        document = _retriever(app).index.documents.get(doc_id)
        if document is None:
            raise ToolError(f"no document with id '{doc_id}' (list_documents lists them)")
        length = len(document.text)
        if not 0 <= start < end <= length:
            raise ToolError(f"bad span [{start}:{end}]: need 0 <= start < end <= {length} (the document's length)")
        if end - start > MAX_SPAN_CHARS:
            raise ToolError(f"the span is {end - start} characters long; ask for at most {MAX_SPAN_CHARS} at once")
        pages = document.page_span(start, end)
        return PassageText(
            doc_id=document.doc_id,
            title=document.title,
            source=document.source,
            format=document.format,
            start=start,
            end=end,
            text=document.text[start:end],
            page=pages[0] if pages else None,
            pages=list(pages) if pages else None,
            characters=length,
        )

    @server.tool(description=LIST_DESCRIPTION, annotations=READ_ONLY, structured_output=True)
    def list_documents(
        offset: Annotated[int, Field(ge=0, description="How many documents to skip.")] = 0,
        limit: Annotated[int, Field(ge=1, le=200, description="How many documents to return.")] = 50,
    ) -> DocumentList:
        return document_list(_retriever(app), offset, limit)

    if app.state.settings.llm_config() is not None:

        @server.tool(description=ASK_DESCRIPTION, annotations=READ_ONLY, structured_output=True)
        async def ask(
            question: Question,
            k: K = 5,
            mode: ModeArg = "hybrid",
            doc_ids: DocIds = None,
            section: Section = None,
            speaker: Speaker = None,
        ) -> AskResult:
            request = _request(question=question, k=k, mode=mode, doc_ids=doc_ids, section=section, speaker=speaker)
            asked = await _asked(app, request)
            written = await written_answer(app.state.reader, asked)
            return AskResult.model_validate({**_result(asked), "written": written, "took_ms": asked.took_ms()})

    return server


def allowed_origin(origin: str, configured: list[str]) -> bool:
    """A browser's Origin that may call /mcp: this machine's pages and the CORS origins set."""
    if origin in configured:
        return True
    return any(origin == base or origin.startswith(f"{base}:") for base in LOOPBACK_ORIGINS)


class McpHttp:
    """The Streamable HTTP endpoint (an ASGI app routed at /mcp). Stateless, so that any worker
    answers any request, and answered as JSON rather than a stream. Before the SDK sees a request:
    the API key of /ask (401) and, as the MCP spec asks of every server against DNS rebinding, the
    Origin a browser sends (403 unless it is this machine's or one of CITEQA_CORS_ORIGINS); the
    SDK's own Host check would refuse every name but localhost, so it is off."""

    def __init__(self, app: FastAPI, path: str) -> None:
        self.app = app
        self.route = Route(path, endpoint=self, methods=["GET", "POST", "DELETE"], include_in_schema=False)
        server = build_mcp(app)
        settings: Settings = app.state.settings
        server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=settings.max_body_bytes,  # BodyGuard refuses larger ones first
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.session_manager = server.session_manager
        self.handler = StreamableHTTPASGIApp(self.session_manager)

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group: entered in the app's lifespan, once."""
        return self.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI's router names only its own routes in the scope: the request telemetry labels
        # by the route, and would count these as "unmatched".
        scope["route"] = self.route
        settings: Settings = self.app.state.settings
        headers = Headers(scope=scope)
        key = settings.api_key.get_secret_value() if settings.api_key else None
        if not api_key_matches(headers.get("authorization", ""), key):
            await send_problem(send, 401, API_KEY_MISSING, [(b"www-authenticate", b"Bearer")])
            return
        origin = headers.get("origin")
        if origin and not allowed_origin(origin, settings.cors_origins):
            await send_problem(send, 403, f"requests from the origin {origin} are not allowed")
            return
        await self.handler(scope, receive, send)


async def serve_stdio(settings: Settings, retriever: Retriever) -> None:
    """`citeqa mcp`: the tools over stdin/stdout until the client closes stdin. The state they
    read is a served app's (gate, displays, metrics, reader), on an app that serves no HTTP and
    runs no document writer."""
    app = FastAPI()
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.displays = Displays()
    app.state.gate = SearchGate(settings.max_running, settings.max_waiting, settings.request_timeout_s)
    app.state.reader = reader_from_settings(settings, app.state.metrics)
    app.state.load_error = None
    await warm(app, retriever)
    app.state.retriever = retriever
    server = build_mcp(app)
    log.info("serving MCP over stdio from %s", settings.index_dir)
    try:
        await server.run_stdio_async()
    finally:
        app.state.gate.close()
        if app.state.reader is not None:
            await app.state.reader.aclose()


def run_stdio(settings: Settings, retriever: Retriever) -> None:
    asyncio.run(serve_stdio(settings, retriever))
