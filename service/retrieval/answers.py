"""Answer selection: the sentence (or two) of a passage that answers the question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ingest.chunking import Sentence
from ingest.index_store import LoadedIndex
from service.retrieval.candidates import Signals

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


@dataclass(frozen=True)
class Choice:
    """The chosen answer span and what the highlight's confidence is computed from."""

    sentence: Sentence
    cosine: float  # the chosen sentence's cosine with the question
    margin: float  # its combined score above the passage's next best sentence (or 0)


class AnswerSelector(Protocol):
    """Chooses the span of a ranked passage that answers the question, or None."""

    def choose(self, chunk_number: int, signals: Signals) -> Choice | None: ...

    def best_sentence(self, chunk_number: int, signals: Signals) -> Sentence | None: ...


class BestSentence:
    """The extractive answer: the passage's best sentence by cosine and its share of BM25."""

    def __init__(self, index: LoadedIndex, answer_lexical_weight: float) -> None:
        self.index = index
        self.answer_lexical_weight = answer_lexical_weight

    def best_sentence(self, chunk_number: int, signals: Signals) -> Sentence | None:
        choice = self.choose(chunk_number, signals)
        return None if choice is None else choice.sentence

    def choose(self, chunk_number: int, signals: Signals) -> Choice | None:
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
        combined = dense + self.answer_lexical_weight * lexical
        order = np.argsort(-combined, kind="stable")
        best = int(order[0])
        margin = float(combined[best] - (combined[order[1]] if len(ids) > 1 else 0.0))
        sentence = self.index.sentences[ids[best]]
        text = self.index.documents[sentence.doc_id].text
        start, end = sentence.start, sentence.end
        # At most two sentences: the one that continues it, else the one it leans back on.
        if best + 1 < len(ids) and continues(text, sentence, self.index.sentences[ids[best + 1]]):
            end = self.index.sentences[ids[best + 1]].end
        elif best > 0 and leans_back(text, self.index.sentences[ids[best - 1]], sentence):
            start = self.index.sentences[ids[best - 1]].start
        span = sentence if (start, end) == (sentence.start, sentence.end) else Sentence(sentence.doc_id, start, end)
        return Choice(span, float(dense[best]), margin)
