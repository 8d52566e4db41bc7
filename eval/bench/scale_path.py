"""The whole `Retriever.answer` path on synthetic corpora of 10k to 1M passages, beside the
article's own index in the same run: does the cost of a question stay flat as the corpus grows?

A synthetic index is built in memory as `load_index` would return it: clustered unit vectors
(`eval.bench.scale.clustered`) for passages and their sentences, Zipf-distributed words for their
texts, the dense index type that ingest would choose for the size, bm25s over the same words.
Questions go through the real query encoder (so its cost is in every number) but search with
a synthetic vector near a data point, since the encoder knows nothing of the synthetic words.
"""

from __future__ import annotations

import copy
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.scale import DIMENSION, clustered
from ingest import vector_index
from ingest.chunking import Chunk, Sentence
from ingest.documents import Document
from ingest.embedding import Embedder
from ingest.index_store import LoadedIndex
from ingest.lexical import LexicalIndex

SENTENCES_PER_PASSAGE = 3
WORDS_PER_SENTENCE = 13
PASSAGES_PER_DOCUMENT = 100
VOCABULARY = 50_000
QUESTIONS = 200
Say = Callable[[str], None]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class SyntheticQueries:
    """Encodes each question with the real encoder (its cost stays in the path), then searches
    with the synthetic vector that the question's text names."""

    name = "synthetic"
    dimension = DIMENSION
    weights_sha256 = "synthetic"

    def __init__(self, encoder: Embedder | None, vectors: dict[str, np.ndarray]) -> None:
        self.encoder, self.vectors = encoder, vectors

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError("synthetic corpora are not embedded")

    def embed_query(self, text: str) -> np.ndarray:
        if self.encoder is not None:
            self.encoder.embed_query(text)
        return self.vectors[text]


def _lexical(words: np.ndarray) -> LexicalIndex:
    import bm25s

    model = bm25s.BM25()
    vocab = {f"w{i}": i for i in range(VOCABULARY)}
    model.index(([row.tolist() for row in words], vocab), show_progress=False)
    return LexicalIndex(model)


def lexical_agreement(retriever: Any, questions: list[str]) -> dict[str, float]:
    """How the bounded lexical top-k (`LexicalIndex.best`) compares with the exhaustive one on
    these questions: recall of the candidate pool, share of pools with the very same scores,
    and share of questions whose five answers (hybrid) are the same passages in the same order."""
    from service.retriever import CANDIDATES

    lexical = retriever.index.lexical
    recalls, same_scores, same_answers = [], 0, 0
    for question in questions:
        signals = retriever.signals(question)
        exact = copy.copy(signals)
        numbers, scores = lexical.best(signals.tokens, CANDIDATES, exhaustive_postings=sys.maxsize)
        exact.lexical = {int(n): float(s / scores[0]) for n, s in zip(numbers, scores, strict=True)}
        bounded = lexical.best(signals.tokens, CANDIDATES)[1]
        recalls.append(len(set(signals.lexical) & set(exact.lexical)) / len(exact.lexical) if exact.lexical else 1.0)
        same_scores += bounded.tolist() == scores.tolist()
        ids = [[h.chunk.chunk_id for h in retriever.answer(question, 5, signals=s).hits] for s in (signals, exact)]
        same_answers += ids[0] == ids[1]
    return {
        "lexical_recall_mean": float(np.mean(recalls)),
        "lexical_recall_min": float(np.min(recalls)),
        "lexical_same_scores": same_scores / len(questions),
        "same_top5": same_answers / len(questions),
    }


def synthetic_index(count: int, say: Say) -> tuple[LoadedIndex, np.ndarray, np.ndarray]:
    """An in-memory index of `count` passages; also its sentence vectors' cluster centres and
    a word sample, from which questions are drawn."""
    rng = np.random.default_rng(count)
    centres = rng.normal(size=(max(100, count // 500), DIMENSION)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sentence_count = count * SENTENCES_PER_PASSAGE
    say(f"scale-path: {count:,} passages, {sentence_count:,} sentences: vectors")
    sentence_vectors = clustered(sentence_count, 1, centres)
    passage_vectors = sentence_vectors.reshape(count, SENTENCES_PER_PASSAGE, DIMENSION).mean(axis=1)
    passage_vectors /= np.linalg.norm(passage_vectors, axis=1, keepdims=True)
    say(f"scale-path: {count:,}: dense indexes")
    dense_spec, sentence_spec = vector_index.choose_spec(count), vector_index.choose_spec(sentence_count)
    dense = vector_index.configure(vector_index.build(passage_vectors, dense_spec), dense_spec)
    del passage_vectors
    sentence_dense = vector_index.configure(vector_index.build(sentence_vectors, sentence_spec), sentence_spec)
    del sentence_vectors
    say(f"scale-path: {count:,}: texts and bm25s")
    words = (np.minimum(rng.zipf(1.3, size=(sentence_count, WORDS_PER_SENTENCE)), VOCABULARY) - 1).astype(np.int32)
    sentence_lexical = _lexical(words)
    # As ingest writes it: passages with impact-ordered postings (in RSS), sentences without.
    lexical = _lexical(words.reshape(count, SENTENCES_PER_PASSAGE * WORDS_PER_SENTENCE)).with_impact_order()
    chunks, sentences, documents = [], [], {}
    sentence_length = WORDS_PER_SENTENCE * 7  # "w12345 " per word, padded so offsets are regular
    for first in range(0, count, PASSAGES_PER_DOCUMENT):
        doc_id = f"d{first // PASSAGES_PER_DOCUMENT}"
        documents[doc_id] = Document(doc_id, f"Synthetic {doc_id}", f"synthetic://{doc_id}", "")
        for offset, number in enumerate(range(first, min(first + PASSAGES_PER_DOCUMENT, count))):
            start = offset * SENTENCES_PER_PASSAGE * sentence_length
            row = words[number * SENTENCES_PER_PASSAGE : (number + 1) * SENTENCES_PER_PASSAGE].ravel()
            text = " ".join(f"w{w}" for w in row)
            end = start + SENTENCES_PER_PASSAGE * sentence_length  # spans only: no document text is kept
            chunks.append(Chunk(f"{doc_id}:{number}", doc_id, text, start, end, None, None, "narrative"))
            for s in range(SENTENCES_PER_PASSAGE):
                begin = start + s * sentence_length
                sentences.append(Sentence(doc_id, begin, begin + sentence_length))
    chunk_sentences = [list(range(n * SENTENCES_PER_PASSAGE, (n + 1) * SENTENCES_PER_PASSAGE)) for n in range(count)]
    manifest = {"dense_index": dense_spec, "sentence_index": sentence_spec, "model": {"sha256": "synthetic"}}
    index = LoadedIndex(
        Path("synthetic"), manifest, documents, chunks, dense, sentences, sentence_dense,
        lexical, sentence_lexical, chunk_sentences,
    )  # fmt: skip
    return index, centres, words[: min(len(words), 20_000)]


def timed_answers(
    retriever: Any, questions: list[str], beside: tuple[Any, list[str]] | None = None
) -> dict[str, float]:
    """`answer` percentiles of `retriever` on `questions`; with `beside` (another retriever and
    as many questions), the two take turns question by question, so that a load that comes and
    goes on a shared machine weighs on both alike, and the other's percentiles come back too
    under `beside_*` keys."""
    from eval.bench.run import percentiles

    pairs = [(retriever, questions)] + ([beside] if beside else [])
    for who, asked in pairs:
        for question in asked[:10]:
            who.answer(question, 5)
    samples: list[list[float]] = [[] for _ in pairs]
    for turn in range(len(questions)):
        for (who, asked), taken in zip(pairs, samples, strict=True):
            begun = time.perf_counter()
            who.answer(asked[turn % len(asked)], 5)
            taken.append((time.perf_counter() - begun) * 1000)
    result = percentiles(samples[0])
    if beside:
        result |= {f"beside_{key}": value for key, value in percentiles(samples[1]).items()}
    return result


def measure_size(
    count: int, encoder: Embedder | None, say: Say, beside: tuple[Any, list[str]] | None = None
) -> dict[str, Any]:
    """One synthetic size; with `beside` (the article's retriever and questions), timed in
    turns with it."""
    import faiss

    from service.retriever import Retriever

    gc.collect()
    before = rss_mb()
    begun = time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building may use every core; searching does not
    index, centres, sample = synthetic_index(count, say)
    faiss.omp_set_num_threads(1)
    retriever = Retriever(index, SyntheticQueries(encoder, {}))
    build_s = time.perf_counter() - begun
    rng = np.random.default_rng(count + 1)
    vectors = clustered(QUESTIONS, 2, centres)
    questions = []
    for number in range(QUESTIONS):
        # Four words of a stored sentence, as a question shares some words with its answer.
        words = rng.choice(sample[rng.integers(len(sample))], 4, replace=False)
        questions.append(f"{' '.join(f'w{w}' for w in words)} q{number}")
    embedder = retriever.embedder
    assert isinstance(embedder, SyntheticQueries)
    embedder.vectors = dict(zip(questions, vectors, strict=True))
    say(f"scale-path: {count:,}: {QUESTIONS} questions")
    timing = timed_answers(retriever, questions, beside)
    gc.collect()
    memory = rss_mb() - before  # after the questions: what is built on first use counts too
    result = {
        "passages": count,
        "sentences": count * SENTENCES_PER_PASSAGE,
        "dense_index": index.manifest["dense_index"]["type"],
        "sentence_index": index.manifest["sentence_index"]["type"],
        "build_s": build_s,
        "rss_mb": memory,
        "rss_mb_per_million": memory * 1e6 / count,
        **timing,
    }
    result |= lexical_agreement(retriever, questions)
    del retriever, index
    gc.collect()
    return result


def run_scale_path(index_dir: Path, model_dir: Path, sizes: tuple[int, ...], say: Say) -> dict[str, Any]:
    import faiss

    from eval.bench.run import distinct_questions
    from ingest.embedding import MODEL_SHA256
    from service.retriever import open_retriever

    faiss.omp_set_num_threads(1)  # as the service searches: one thread a query
    say("scale-path: the article's index, real questions")
    article = open_retriever(index_dir, model_dir, MODEL_SHA256)
    baseline: dict[str, Any] = {"passages": len(article.index.chunks), "sentences": len(article.index.sentences)}
    baseline |= timed_answers(article, distinct_questions(QUESTIONS, "scale-path"))
    # Each size is timed in turns with the article (fresh question texts, so no encoder cache
    # hit), and its ratio is to the article's p50 in those same turns.
    rows = [
        measure_size(count, article.embedder, say, (article, distinct_questions(QUESTIONS, f"scale-path {count}")))
        for count in sizes
    ]
    for row in rows:
        row["p50 / article p50"] = row["p50_ms"] / row["beside_p50_ms"]
    return {"article": baseline, "synthetic": rows, "sentences_per_passage": SENTENCES_PER_PASSAGE}


def scale_path_markdown(report: dict[str, Any]) -> str:
    article = report["article"]
    lines = [
        "| corpus | passages | sentences | dense / sentence index | `answer` p50 ms | p95 ms | article p50 ms "
        "in turns | × article p50 | RSS MB per 1M passages | lexical recall@200 mean / min | same top 5 |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| article | {article['passages']:,} | {article['sentences']:,} | flat / flat | {article['p50_ms']:.2f} "
        f"| {article['p95_ms']:.2f} | – | 1.00 | – | exact | – |",
    ]
    for row in report["synthetic"]:
        lines.append(
            f"| synthetic | {row['passages']:,} | {row['sentences']:,} | {row['dense_index']} / "
            f"{row['sentence_index']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['beside_p50_ms']:.2f} "
            f"| {row['p50 / article p50']:.2f} | {row['rss_mb_per_million']:,.0f} "
            f"| {row['lexical_recall_mean']:.3f} / {row['lexical_recall_min']:.2f} | {row['same_top5']:.0%} |"
        )
    return "\n".join(lines)
