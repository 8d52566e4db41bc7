"""Which ranked passages are shown: never two that overlap; one passage for text found in several places."""

from __future__ import annotations

from ingest.chunking import Chunk
from ingest.index_store import LoadedIndex
from service.retrieval.results import Source


def overlaps(a: Chunk, b: Chunk) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def _normalise_text(text: str) -> str:
    return " ".join(text.split()).casefold()


class SameText:
    """Passages with the same words, wherever they are: found once per index, not per query."""

    def __init__(self, index: LoadedIndex) -> None:
        self.index = index
        self._same_text: dict[int, list[int]] = {}
        by_text: dict[str, list[int]] = {}
        for number, chunk in enumerate(index.chunks):
            by_text.setdefault(_normalise_text(chunk.text), []).append(number)
        for numbers in by_text.values():
            if len(numbers) > 1:
                for number in numbers:
                    self._same_text[number] = [n for n in numbers if n != number]

    def twins(self, chunk_number: int) -> list[int]:
        """The other passages with this passage's words."""
        return self._same_text.get(chunk_number, [])

    def source(self, chunk_number: int) -> Source:
        chunk = self.index.chunks[chunk_number]
        document = self.index.documents[chunk.doc_id]
        return Source(chunk.doc_id, document.title, document.source, chunk.start, chunk.end)
