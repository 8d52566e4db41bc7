"""Citation markers in a written answer: `[1]`, `[2][3]` or `[1, 3]` after what they support.

`claims` cuts an answer into sentences, each with the markers that belong to it: those inside
the sentence and those right after its end (`... in 2019. [2]` cites for the sentence before
it). `MarkerSafe` holds back the end of a streamed text that may be the start of a marker, so
that no marker is ever split across two events.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ingest.sentences import sentence_spans

MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# What may still become a marker at the end of a streamed text: "[", "[1", "[1, 2" ...
_OPEN_MARKER = re.compile(r"\[[\d\s,;]{0,24}$")
_LEADING_MARKERS = re.compile(r"(?:\s*\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\])+")


@dataclass(frozen=True)
class Claim:
    """One sentence of a written answer: its span in the answer, its words without markers, and
    the marker numbers it carries, in order of first appearance."""

    start: int
    end: int
    plain: str
    markers: tuple[int, ...]


def marker_numbers(text: str) -> list[int]:
    numbers: list[int] = []
    for match in MARKER.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part)
            if number not in numbers:
                numbers.append(number)
    return numbers


def plain_text(text: str) -> str:
    """The words of a sentence without its markers, spaces tidied."""
    without = MARKER.sub("", text)
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]+", " ", without)).strip()


def claims(answer: str) -> list[Claim]:
    spans = [list(span) for span in sentence_spans(answer)]
    # Markers opening a sentence belong to the one before: "It is X. [1] Then Y. [2]".
    for previous, span in itertools.pairwise(spans):
        leading = _LEADING_MARKERS.match(answer, span[0])
        if leading and leading.end() > span[0]:
            previous[1] = leading.end()
            span[0] = leading.end()
    result = []
    for start, end in spans:
        while start < end and answer[start].isspace():
            start += 1
        text = answer[start:end]
        plain = plain_text(text)
        if plain or marker_numbers(text):
            result.append(Claim(start, end, plain, tuple(marker_numbers(text))))
    # Markers alone after the last sentence ("... end. [3]") were merged above, unless the whole
    # answer is markers: then there is nothing to check.
    return [c for c in result if c.plain]


class MarkerSafe:
    """Re-chunks streamed text so that no event ends inside a marker."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """What can be sent now of everything received so far."""
        self._held += text
        match = _OPEN_MARKER.search(self._held)
        if match is None:
            ready, self._held = self._held, ""
        else:
            ready, self._held = self._held[: match.start()], self._held[match.start() :]
        return ready

    def flush(self) -> str:
        rest, self._held = self._held, ""
        return rest
