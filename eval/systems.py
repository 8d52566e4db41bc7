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


System = Callable[[str, int], Result]


def retriever_system(retriever: Retriever, mode: str) -> System:
    def ask(question: str, k: int) -> Result:
        answer = retriever.answer(question, k, mode)
        return Result(
            spans=[Span(h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in answer.hits],
            answers=[Span(h.chunk.doc_id, h.answer.start, h.answer.end) if h.answer else None for h in answer.hits],
            speakers=[h.chunk.speaker for h in answer.hits],
            answerable=answer.answerable,
        )

    return ask


def langchain_store(documents: list[Document], model_dir: Path) -> Any:
    """The usual recipe: RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings +
    LangChain's FAISS vector store, built in memory (never saved, so never unpickled)."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LCDocument
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    pieces = splitter.split_documents(
        [LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id}) for d in documents]
    )
    embeddings = HuggingFaceEmbeddings(model_name=str(model_dir), encode_kwargs={"normalize_embeddings": True})
    return FAISS.from_documents(pieces, embeddings)


def langchain_system(documents: list[Document], model_dir: Path) -> System:
    store = langchain_store(documents, model_dir)

    def ask(question: str, k: int) -> Result:
        found = store.similarity_search(question, k=k)
        # The recipe's own start_index (found with str.find, so wrong for repeated text).
        spans = [
            Span(d.metadata["doc_id"], d.metadata["start_index"], d.metadata["start_index"] + len(d.page_content))
            for d in found
        ]
        return Result(spans=spans, answers=[None] * len(spans), speakers=[None] * len(spans), answerable=None)

    return ask
