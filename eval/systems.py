"""Systems under evaluation: citeqa's Retriever in each mode, and the usual LangChain recipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.questions import Span
from ingest.documents import Document
from service.retriever import Retriever


@dataclass(frozen=True)
class Result:
    spans: list[Span]
    answers: list[Span | None]
    speakers: list[str | None]
    answerable: bool | None
    highlighted: bool | None = None  # the rank-1 answer sentence is highlighted (systems with answers)


System = Callable[[str, int], Result]


def retriever_system(retriever: Retriever, mode: str) -> System:
    def ask(question: str, k: int) -> Result:
        answer = retriever.answer(question, k, mode)
        return Result(
            spans=[Span(h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in answer.hits],
            answers=[Span(h.chunk.doc_id, h.answer.start, h.answer.end) if h.answer else None for h in answer.hits],
            speakers=[h.chunk.speaker for h in answer.hits],
            answerable=answer.answerable,
            highlighted=bool(answer.hits and answer.hits[0].highlighted),
        )

    return ask


def langchain_chunks(documents: list[Document]) -> list[Any]:
    from langchain_core.documents import Document as LCDocument
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    return splitter.split_documents([LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id}) for d in documents])


def _span(piece: Any) -> Span:
    # The recipe's own start_index (found with str.find, so wrong for repeated text).
    start = piece.metadata["start_index"]
    return Span(piece.metadata["doc_id"], start, start + len(piece.page_content))


def _plain(spans: list[Span]) -> Result:
    return Result(spans=spans, answers=[None] * len(spans), speakers=[None] * len(spans), answerable=None)


def bm25_system(documents: list[Document]) -> System:
    """bm25s over the recipe's chunks (its default tokenizer, English stop words)."""
    import bm25s

    pieces = langchain_chunks(documents)
    model = bm25s.BM25()
    model.index(
        bm25s.tokenize([p.page_content for p in pieces], stopwords="en", show_progress=False), show_progress=False
    )

    def ask(question: str, k: int) -> Result:
        tokens = bm25s.tokenize([question], stopwords="en", show_progress=False)
        ids, _ = model.retrieve(tokens, k=min(k, len(pieces)), show_progress=False)
        return _plain([_span(pieces[int(i)]) for i in ids[0]])

    return ask


def rrf_system(first: System, second: System, depth: int = 50, constant: int = 60) -> System:
    """Reciprocal rank fusion of two systems' rankings (the usual hybrid baseline)."""

    def ask(question: str, k: int) -> Result:
        scores: dict[Span, float] = {}
        for system in (first, second):
            for rank, span in enumerate(system(question, depth).spans, 1):
                scores[span] = scores.get(span, 0.0) + 1.0 / (constant + rank)
        return _plain(sorted(scores, key=lambda s: -scores[s])[:k])

    return ask


def langchain_store(documents: list[Document], model_dir: Path) -> Any:
    """The usual recipe: RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings +
    LangChain's FAISS vector store, built in memory (never saved, so never unpickled)."""
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    pieces = langchain_chunks(documents)
    embeddings = HuggingFaceEmbeddings(model_name=str(model_dir), encode_kwargs={"normalize_embeddings": True})
    return FAISS.from_documents(pieces, embeddings)


def langchain_system(documents: list[Document], model_dir: Path) -> System:
    store = langchain_store(documents, model_dir)

    def ask(question: str, k: int) -> Result:
        return _plain([_span(d) for d in store.similarity_search(question, k=k)])

    return ask
