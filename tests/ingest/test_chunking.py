"""Chunks are exact document slices that never cross a section or speaker boundary."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import ChunkerSettings, chunk_document, pack_pieces
from ingest.documents import Document
from ingest.sentences import sentence_pieces, sentence_spans
from ingest.structure import parse_blocks

WORD = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzé’"), min_size=1, max_size=12)
SENTENCE = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(WORD, min_size=1, max_size=40),
    st.sampled_from([".", "?", "!", "", ".”", ","]),
)
PARAGRAPH = st.builds(" ".join, st.lists(SENTENCE, min_size=1, max_size=8))
LINE = st.one_of(
    PARAGRAPH,
    st.builds(lambda p: "“" + p + "”", PARAGRAPH),
    st.builds(lambda p: "“" + p, PARAGRAPH),
    st.sampled_from(["Jane Roe, an analyst:", "Richard Poe:", "A short heading", "Repeated box - line"]),
)
DOCUMENT_TEXT = st.builds(
    lambda lines, sep, pad: pad + sep.join(lines) + pad,
    st.lists(LINE, min_size=1, max_size=25),
    st.sampled_from(["\n", "\n\n", "\r\n", "\n \n"]),
    st.sampled_from(["", "\n", "  "]),
)
SETTINGS = st.builds(
    ChunkerSettings, st.integers(min_value=40, max_value=1200), st.integers(min_value=0, max_value=300)
)


def as_document(text: str) -> Document:
    return Document(doc_id="doc", title="T", source="doc.txt", text=text)


@settings(max_examples=150, deadline=None)
@given(DOCUMENT_TEXT, SETTINGS)
def test_every_chunk_is_an_exact_slice_within_one_run(text: str, chunker: ChunkerSettings) -> None:
    document = as_document(text)
    blocks, chunks = chunk_document(document, chunker)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert len(chunk.text) <= chunker.max_chars
        covering = [b for b in blocks if b.start < chunk.end and chunk.start < b.end]
        # Never across a section, a speaker, or a block that is not indexed.
        assert len({(b.section, b.speaker) for b in covering}) == 1
        assert all(b.indexed for b in covering)


@settings(max_examples=100, deadline=None)
@given(DOCUMENT_TEXT, SETTINGS)
def test_chunks_cover_all_indexed_text(text: str, chunker: ChunkerSettings) -> None:
    document = as_document(text)
    blocks, chunks = chunk_document(document, chunker)
    covered = [False] * len(text)
    for chunk in chunks:
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    for block in blocks:
        if block.indexed:
            assert all(covered[i] or text[i].isspace() for i in range(block.start, block.end))


@settings(max_examples=200, deadline=None)
@given(PARAGRAPH, st.integers(min_value=5, max_value=400))
def test_sentence_pieces_tile_text_within_limit(text: str, limit: int) -> None:
    pieces = sentence_pieces(text, limit)
    assert all(end - start <= limit for start, end in pieces)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(pieces))
    joined = "".join(text[s:e] for s, e in pieces)
    assert joined.replace(" ", "") == text.replace(" ", "")


def test_sentences_keep_their_closing_quote() -> None:
    text = "He said “it is over.” Then he left. Did he? Yes!"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["He said “it is over.”", "Then he left.", "Did he?", "Yes!"]


def test_a_repeated_paragraph_is_segmented_once_and_gets_its_own_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.sentences as sentences

    calls: list[str] = []
    real = sentences._segmenter()

    class Counting:
        def segment(self, text: str) -> list[str]:
            calls.append(text)
            return list(real.segment(text))

    sentences._piece_lengths.cache_clear()
    monkeypatch.setattr(sentences, "_segmenter", Counting)
    paragraph = "Run `docker ps -a` first. Then stop it, e.g. with Mr. Smith's script."
    text = f"{paragraph}\n\nSomething else here. And more.\n\n{paragraph}"
    spans = sentence_spans(text)
    repeated = ["Run `docker ps -a` first.", "Then stop it, e.g. with Mr. Smith's script."]
    assert [text[a:b] for a, b in spans] == [*repeated, "Something else here.", "And more.", *repeated]
    assert spans[-1][1] == len(text) and spans[-2][0] == text.rindex("Run")
    assert len(calls) == 2  # the repeat came from the cache
    sentences._piece_lengths.cache_clear()


def test_pack_pieces_overlaps_whole_pieces() -> None:
    pieces = [(0, 100), (101, 200), (201, 300), (301, 400)]
    windows = pack_pieces(pieces, ChunkerSettings(max_chars=250, overlap_chars=120))
    assert windows == [(0, 200), (101, 300), (201, 400)]


def test_article_chunks(article: Document) -> None:
    chunker = ChunkerSettings()
    blocks, chunks = chunk_document(article, chunker)
    assert all(article.text[c.start : c.end] == c.text for c in chunks)
    assert max(len(c.text) for c in chunks) <= 1000
    glossary_chunks = [c for c in chunks if "Dhimmi - " in c.text]
    assert len(glossary_chunks) == 1 and glossary_chunks[0].kind == "boilerplate"
    pulls = [b for b in blocks if b.kind.value == "pull_quote"]
    # A pull-quote line never stands as (or starts) a passage of its own.
    assert not any(c.start == p.start for c in chunks for p in pulls)
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids))


def test_chunk_ids_are_stable(article: Document) -> None:
    first = [c.chunk_id for c in chunk_document(article, ChunkerSettings())[1]]
    second = [c.chunk_id for c in chunk_document(article, ChunkerSettings())[1]]
    assert first == second


def test_blocks_offsets_exact_on_article(article: Document) -> None:
    assert all(article.text[b.start : b.end] == b.text for b in parse_blocks(article.text))
