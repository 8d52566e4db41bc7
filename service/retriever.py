"""The one search path that the service, the CLI and the evaluation all use."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.calibration import COVERAGE
from ingest.calibration import confidence as answer_confidence
from ingest.chunking import Chunk, Sentence
from ingest.documents import Document
from ingest.embedding import Embedder, SentenceTransformerEmbedder, verify_model
from ingest.errors import INGEST_EXTRA, CiteqaError, IndexCorrupt, MissingExtra
from ingest.index_store import LoadedIndex, load_index, verify_index
from ingest.lexical import tokenize
from ingest.pipeline import RetrievalSettings

MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"
CANDIDATES = 200  # per signal; exact for corpora up to this many passages
# A filter that admits at most this many passages has them all scored exactly (a few MB of
# vectors); beyond, the candidate pools are enlarged instead.
DIRECT_SCORING_LIMIT = 5000


class UnknownMode(CiteqaError):
    """A search mode that is not implemented."""


class UnknownDocument(CiteqaError):
    """A filter names a document that is not in the index."""


@dataclass(frozen=True)
class Filters:
    """Which passages may answer: those of these documents, under this section, by this speaker."""

    doc_ids: frozenset[str] | None = None
    section: str | None = None  # a prefix of the section path ("Configuration › Build"), any case
    speaker: str | None = None  # the speaker's name, any case

    def __post_init__(self) -> None:
        if self.doc_ids is not None:
            object.__setattr__(self, "doc_ids", frozenset(self.doc_ids))

    def admits(self, chunk: Chunk) -> bool:
        if self.doc_ids is not None and chunk.doc_id not in self.doc_ids:
            return False
        if self.section is not None and not (chunk.section or "").casefold().startswith(self.section.casefold()):
            return False
        return self.speaker is None or (chunk.speaker or "").casefold() == self.speaker.casefold()


@dataclass(frozen=True)
class Source:
    """Another place where a passage's exact text also lives."""

    doc_id: str
    title: str
    source: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: Chunk
    document: Document
    answer: Sentence | None = None
    also_in: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Answer:
    hits: list[Hit]
    answerable: bool
    confidence: float  # best cosine with a passage or sentence × share of question words the corpus knows


@dataclass
class Signals:
    """Per-query scores of the candidate passages from each signal."""

    dense: dict[int, float] = field(default_factory=dict)
    sentence: dict[int, float] = field(default_factory=dict)
    lexical: dict[int, float] = field(default_factory=dict)
    query: Any = None
    sentence_scores: dict[int, float] = field(default_factory=dict)
    coverage: float = 0.0
    # The query's BM25 tokens and the best passage BM25 in the corpus: enough to score any
    # passage or sentence on demand, without an array over the whole corpus per query.
    tokens: list[str] = field(default_factory=list)
    lexical_top: float = 0.0


def overlaps(a: Chunk, b: Chunk) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


# What opens a new block rather than continuing a paragraph: a list item, a table row, code.
_BLOCK_OPENING = re.compile(r"\s*(?:[-*+]\s|\d{1,3}[.)]\s|\||```|~~~)")


def continues(text: str, sentence: Sentence, following: Sentence) -> bool:
    """Whether `following` carries on what `sentence` says, so that the answer is the two.
    A sentence that matches a question best often names its topic ("pip supports basic
    HTTP-based authentication credentials.") and the next one of the same paragraph gives the
    substance ("This is done by providing the username ... in the URL"); a sentence ending in
    a colon introduces what follows. A blank line, a list item, a table row or code after a
    sentence that does not introduce it is another block, and is left out."""
    if sentence.doc_id != following.doc_id or following.start < sentence.end:
        return False
    gap = text[sentence.end : following.start]
    if gap.strip():
        return False
    if text[sentence.start : sentence.end].rstrip().endswith(":"):
        return True
    return gap.count("\n") <= 1 and not _BLOCK_OPENING.match(text, following.start)


# Words that open a sentence leaning on the one before it: a contrast, a consequence, a pronoun
# for what was just said ("However, for some use cases ... it may be preferable to set a shorter
# limit" says little without "By default searches shorter than 3 chars ... are ignored").
_LEANS_BACK = re.compile(
    r"(?:however|but|therefore|thus|hence|so|this|that|these|those|it|they|such|also|otherwise|instead|then"
    r"|alternatively|additionally|furthermore|moreover|consequently|in addition|in that case|as a result)\b",
    re.IGNORECASE,
)


def leans_back(text: str, previous: Sentence, sentence: Sentence) -> bool:
    """Whether `sentence` refers back to `previous`, the sentence before it in the same paragraph,
    so that the answer starts there."""
    return bool(_LEANS_BACK.match(text, sentence.start)) and continues(text, previous, sentence)


def _normalise_text(text: str) -> str:
    return " ".join(text.split()).casefold()


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: RetrievalSettings | None = None) -> None:
        self.index = index
        self.embedder = embedder
        stored = index.manifest.get("retrieval") or {}
        if "lexical_weight" in stored:  # an index from before the answer had its own weight used the fusion's
            stored = {"answer_lexical_weight": stored["lexical_weight"], **stored}
        self.settings = settings or RetrievalSettings(**stored)
        # An index calibrated before the idf-weighted coverage keeps the plain share its threshold is on.
        self._weighted_coverage = (index.manifest.get("calibration") or {}).get("coverage") == COVERAGE
        self._rankers: dict[str, Callable[[Signals], dict[int, float]]] = {
            "hybrid": self._hybrid,
            "dense": lambda s: s.dense,
            "lexical": lambda s: s.lexical,
        }
        # Passages with the same words, wherever they are: found once here, not per query.
        self._same_text: dict[int, list[int]] = {}
        by_text: dict[str, list[int]] = {}
        self._document_chunks: dict[str, list[int]] = {}
        for number, chunk in enumerate(index.chunks):
            by_text.setdefault(_normalise_text(chunk.text), []).append(number)
            self._document_chunks.setdefault(chunk.doc_id, []).append(number)
        for numbers in by_text.values():
            if len(numbers) > 1:
                for number in numbers:
                    self._same_text[number] = [n for n in numbers if n != number]
        self._sentence_chunks: dict[int, list[int]] = {}
        for chunk_number, sentence_ids in enumerate(index.chunk_sentences):
            for sentence_id in sentence_ids:
                self._sentence_chunks.setdefault(sentence_id, []).append(chunk_number)

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self._rankers)

    def with_settings(self, settings: RetrievalSettings) -> Retriever:
        clone = Retriever.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.settings = settings
        clone._rankers = {**self._rankers, "hybrid": clone._hybrid}
        return clone

    # --- signals ------------------------------------------------------------------------

    def signals(self, question: str, pool: int | None = None) -> Signals:
        index = self.index
        pool = pool or CANDIDATES
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(1, -1)
        signals = Signals(query=query[0])
        scores, ids = index.dense.search(query, min(pool, index.dense.ntotal))
        signals.dense = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
        scores, ids = index.sentence_dense.search(query, min(pool, index.sentence_dense.ntotal))
        signals.sentence_scores = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
        for sentence_id, score in signals.sentence_scores.items():
            for chunk_number in self._sentence_chunks.get(sentence_id, []):
                if score > signals.sentence.get(chunk_number, -1.0):
                    signals.sentence[chunk_number] = score
        signals.tokens = tokenize([question])[0]
        best, bm25 = index.lexical.best(signals.tokens, pool)
        if len(best):
            signals.lexical_top = top = float(bm25[0])
            signals.lexical = {int(i): float(s / top) for i, s in zip(best, bm25, strict=True)}
        signals.coverage = index.lexical.coverage(signals.tokens, weighted=self._weighted_coverage)
        return signals

    def _hybrid(self, signals: Signals) -> dict[int, float]:
        """Convex combination of the passage cosine, its best sentence's cosine and max-normalised
        BM25; a passage missing from a signal's candidates gets that signal's lowest seen score."""
        weights = self.settings
        floor_dense = min(signals.dense.values(), default=0.0)
        floor_sentence = min(signals.sentence.values(), default=0.0)
        candidates = set(signals.dense) | set(signals.sentence) | set(signals.lexical)
        return {
            c: weights.dense_weight * signals.dense.get(c, floor_dense)
            + weights.sentence_weight * signals.sentence.get(c, floor_sentence)
            + weights.lexical_weight * signals.lexical.get(c, 0.0)
            for c in candidates
        }

    # --- filters ------------------------------------------------------------------------

    def unknown_documents(self, doc_ids: Iterable[str]) -> list[str]:
        return sorted({d for d in doc_ids if d not in self.index.documents})

    def admitted(self, filters: Filters) -> list[int]:
        """Numbers of the passages that a filter admits, in index order."""
        numbers: Iterable[int] = range(len(self.index.chunks))
        if filters.doc_ids is not None:
            unknown = self.unknown_documents(filters.doc_ids)
            if unknown:
                raise UnknownDocument(f"unknown document id: {', '.join(unknown)}")
            numbers = sorted(n for d in filters.doc_ids for n in self._document_chunks[d])
        return [n for n in numbers if filters.admits(self.index.chunks[n])]

    def filtered(self, question: str, signals: Signals, filters: Filters) -> Signals:
        """The signals of the admitted passages alone. The candidate pools hold the corpus's best
        passages and may hold none of a small document, so a small admitted set is scored
        exactly, from its stored vectors and BM25 scores; a large one is taken from pools
        enlarged in proportion to how small a share of the corpus it is."""
        admitted = self.admitted(filters)
        if len(admitted) <= DIRECT_SCORING_LIMIT or not admitted:
            return self._scored_exactly(signals, admitted)
        share = len(admitted) / len(self.index.chunks)
        pooled = signals if share == 1 else self.signals(question, pool=int(np.ceil(CANDIDATES / share)))
        keep = set(admitted)
        sentences = {s for n in admitted for s in self.index.chunk_sentences[n]}
        return Signals(
            dense={n: s for n, s in pooled.dense.items() if n in keep},
            sentence={n: s for n, s in pooled.sentence.items() if n in keep},
            lexical={n: s for n, s in pooled.lexical.items() if n in keep},
            query=pooled.query,
            sentence_scores={i: s for i, s in pooled.sentence_scores.items() if i in sentences},
            coverage=pooled.coverage,
            tokens=pooled.tokens,
            lexical_top=pooled.lexical_top,
        )

    def _scored_exactly(self, signals: Signals, numbers: list[int]) -> Signals:
        index = self.index
        scored = Signals(
            query=signals.query,
            coverage=signals.coverage,
            tokens=signals.tokens,
            lexical_top=signals.lexical_top,
        )
        if not numbers:
            return scored
        cosines = index.dense.reconstruct_batch(np.asarray(numbers, dtype=np.int64)) @ signals.query
        scored.dense = {n: float(s) for n, s in zip(numbers, cosines, strict=True)}
        sentence_ids = list(dict.fromkeys(s for n in numbers for s in index.chunk_sentences[n]))
        if sentence_ids:
            cosines = index.sentence_dense.reconstruct_batch(np.asarray(sentence_ids, dtype=np.int64)) @ signals.query
            scored.sentence_scores = {i: float(s) for i, s in zip(sentence_ids, cosines, strict=True)}
            for n in numbers:
                if index.chunk_sentences[n]:
                    scored.sentence[n] = max(scored.sentence_scores[i] for i in index.chunk_sentences[n])
        top = signals.lexical_top
        if top > 0:  # normalised by the corpus's best, as unfiltered, so scores mean the same
            lexical = index.lexical.scores_of(signals.tokens, numbers)
            scored.lexical = {n: float(s / top) for n, s in zip(numbers, lexical, strict=True) if s > 0}
        return scored

    # --- answers ------------------------------------------------------------------------

    def _source(self, chunk_number: int) -> Source:
        chunk = self.index.chunks[chunk_number]
        document = self.index.documents[chunk.doc_id]
        return Source(chunk.doc_id, document.title, document.source, chunk.start, chunk.end)

    def best_sentence(self, chunk_number: int, signals: Signals) -> Sentence | None:
        """The sentence of a passage that best answers: its cosine with the question plus
        its share of the question's BM25 weight among the passage's sentences."""
        ids = self.index.chunk_sentences[chunk_number]
        if not ids:
            return None
        vectors = self.index.sentence_dense.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        dense = vectors @ signals.query
        lexical = self.index.sentence_lexical.scores_of(signals.tokens, ids)
        if lexical.max() > 0:
            lexical = lexical / lexical.max()
        combined = dense + self.settings.answer_lexical_weight * lexical
        best = int(np.argmax(combined))
        sentence = self.index.sentences[ids[best]]
        text = self.index.documents[sentence.doc_id].text
        start, end = sentence.start, sentence.end
        # At most two sentences: the one that continues it, else the one it leans back on.
        if best + 1 < len(ids) and continues(text, sentence, self.index.sentences[ids[best + 1]]):
            end = self.index.sentences[ids[best + 1]].end
        elif best > 0 and leans_back(text, self.index.sentences[ids[best - 1]], sentence):
            start = self.index.sentences[ids[best - 1]].start
        return sentence if (start, end) == (sentence.start, sentence.end) else Sentence(sentence.doc_id, start, end)

    def answer(
        self,
        question: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        signals: Signals | None = None,
        *,
        filters: Filters | None = None,
    ) -> Answer:
        """Top-k passages, best first, never two that overlap or repeat the same text; with
        `filters`, only passages they admit, and the confidence is over those alone."""
        ranker = self._rankers.get(mode)
        if ranker is None:
            raise UnknownMode(f"unknown mode '{mode}' (choose from {', '.join(self._rankers)})")
        signals = signals or self.signals(question)
        if filters is not None:
            signals = self.filtered(question, signals, filters)
        ranked = sorted(ranker(signals).items(), key=lambda item: (-item[1], item[0]))
        kept: list[Hit] = []
        shown: set[int] = set()  # passages kept, or listed as another source of a kept one
        for chunk_number, score in ranked:
            if len(kept) == k:
                break
            chunk = self.index.chunks[chunk_number]
            if chunk_number in shown or any(overlaps(chunk, hit.chunk) for hit in kept):
                continue
            # Same words in other documents: one passage, every source listed.
            twins = [n for n in self._same_text.get(chunk_number, []) if n not in shown]
            shown.update([chunk_number, *twins])
            also_in = tuple(self._source(n) for n in twins)
            answer = self.best_sentence(chunk_number, signals)
            kept.append(Hit(len(kept) + 1, score, chunk, self.index.documents[chunk.doc_id], answer, also_in))
        # A question can resemble the corpus in embedding space ("Moscow" in a question about a
        # TV tower) yet use words the corpus never does; both have to hold for an answer.
        similarity = max([*signals.dense.values(), *signals.sentence_scores.values()], default=0.0)
        confidence = answer_confidence(similarity, signals.coverage)
        return Answer(kept, confidence >= self.settings.answerable_threshold, confidence)

    def search(
        self, question: str, k: int = 5, mode: str = DEFAULT_MODE, *, filters: Filters | None = None
    ) -> list[Hit]:
        return self.answer(question, k, mode, filters=filters).hits


def _needs_model(index_dir: Path) -> MissingExtra:
    return MissingExtra(
        f"index {index_dir} has no ONNX query encoder, so serving it needs the embedding model: "
        f"{INGEST_EXTRA}, or ingest again without --no-onnx"
    )


def verify_serving(index_dir: Path, model_dir: Path | None, expected_model_sha256: str) -> None:
    """Cheap checks before anything heavy is imported: model weights (when a model folder is
    installed or configured) and every artifact, the ONNX query encoder included."""
    model_sha = verify_model(model_dir, expected_model_sha256) if model_dir is not None else expected_model_sha256
    manifest = verify_index(index_dir, model_sha)
    if model_dir is None and manifest.get("query_encoder", {}).get("backend") != "onnx":
        raise _needs_model(index_dir)


def open_retriever(
    index_dir: Path,
    model_dir: Path | None,
    expected_model_sha256: str,
    encoder_threads: int = 2,
    batch_queries: bool = False,
    batch_encoder_threads: int = 1,
    verified_manifest_sha256: str | None = None,
) -> Retriever:
    """The index, verified, with the query encoder it was built with: the exported ONNX model
    when there is one (no torch import, no model folder needed), else the sentence-transformers
    model from `model_dir`. With `verified_manifest_sha256`, a parent process has just run
    `verify_serving` on this index."""
    if model_dir is not None and verified_manifest_sha256 is None:
        verify_model(model_dir, expected_model_sha256)
    # Verifies every artifact before reading any (by size alone when the parent hashed them).
    index = load_index(index_dir, expected_model_sha256, verified_manifest_sha256)
    encoder = index.manifest.get("query_encoder", {})
    embedder: Embedder
    if encoder.get("backend") == "onnx":
        from ingest.onnx_model import MODEL_FILE, BatchingEmbedder, OnnxEmbedder

        # Indexes from before the int8 query encoder name no query_file: they serve the float32 model.
        folder, query_file = index_dir / encoder["dir"], str(encoder.get("query_file", MODEL_FILE))
        if f"{encoder['dir']}/{query_file}" not in index.manifest.get("artifacts", {}):
            raise IndexCorrupt(f"{index_dir}: the query encoder {query_file!r} is not a checksummed file of the index")
        if batch_queries:
            # Queued queries are encoded while requests are in flight, every core busy with them:
            # one thread (at 16 clients on 2 cores, 557 against 476 req/s with two, interleaved
            # rounds, measured when queued queries were still padded into one batch).
            # A lone query gets `encoder_threads`, spinning, for the latency of one client.
            onnx = OnnxEmbedder(folder, index.model_sha256, batch_encoder_threads, query_file)
            lone = OnnxEmbedder(folder, index.model_sha256, encoder_threads, query_file, cache_size=0, spin=True)
            embedder = BatchingEmbedder(onnx, lone)
        else:
            embedder = OnnxEmbedder(folder, index.model_sha256, encoder_threads, query_file)
    else:
        if model_dir is None:
            raise _needs_model(index_dir)
        embedder = SentenceTransformerEmbedder(model_dir, expected_model_sha256)
    return Retriever(index, embedder)
