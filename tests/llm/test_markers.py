"""Markers in written answers: which sentence each belongs to, and streams never split one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.llm.markers import MARKER, MarkerSafe, claims, marker_numbers, plain_text
from service.llm.reader import declines


def test_markers_after_a_sentence_belong_to_it() -> None:
    found = claims("ISIS-K claimed it. [1] Over 140 died [2][3]. It was in March [1, 4].")
    assert [c.markers for c in found] == [(1,), (2, 3), (1, 4)]
    assert [c.plain for c in found] == ["ISIS-K claimed it.", "Over 140 died.", "It was in March."]


def test_a_sentence_without_markers_has_none() -> None:
    first, second = claims("Passages say this [1]. Nothing says that.")
    assert first.markers == (1,) and second.markers == ()


def test_claim_spans_lie_in_the_answer() -> None:
    answer = "One thing. [1]\n\nAnother [2]."
    for claim in claims(answer):
        assert answer[claim.start : claim.end].strip() == answer[claim.start : claim.end]
        assert set(marker_numbers(answer[claim.start : claim.end])) == set(claim.markers)


def test_marker_syntax() -> None:
    assert marker_numbers("a [1] b [ 2 ] c [3;4] d [1,2] e [x] f [12345]") == [1, 2, 3, 4]
    assert plain_text("It is so [1] , and more [2].") == "It is so, and more."


def test_declines() -> None:
    assert declines("NO ANSWER") and declines("  No answer.") and declines("no answer: the passages ...")
    assert not declines("The answer is no answer at all.") and not declines("Not known [1].")


@given(st.lists(st.sampled_from(["Some words", " [", "1", "]", "[2", ", 3]", ". ", "[", "x", "]"]), max_size=30))
def test_stream_events_never_end_inside_a_marker(pieces: list[str]) -> None:
    safe, sent = MarkerSafe(), []
    for piece in pieces:
        ready = safe.feed(piece)
        if ready:
            sent.append(ready)
    sent.append(safe.flush())
    text = "".join(sent)
    assert text == "".join(pieces)
    boundaries, position = set(), 0
    for event in sent[:-1]:
        position += len(event)
        boundaries.add(position)
    for marker in MARKER.finditer(text):  # no event ends inside a complete marker
        assert not any(marker.start() < b < marker.end() for b in boundaries)
