"""Settings are chosen leave-one-corpus-out: each fold never sees the corpus it is judged on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from eval import decide
from eval.decide import Row


def _rows(corpus: str, answerable_at: float, unanswerable_at: float, seed: int) -> list[Row]:
    random = np.random.default_rng(seed)
    rows = []
    for number in range(60):
        answerable = number < 45
        confidence = (answerable_at if answerable else unanswerable_at) + random.normal(0, 0.02)
        right = bool(random.random() < 0.6)
        features = [0.3 if right else 0.0, 0.1 if right else 0.0, 0.0, 0.8] if answerable else None
        rows.append(
            Row(corpus, f"{corpus}-{number}", answerable, None if answerable else "near", confidence,
                0.2, 0.05, {10: answerable_at - 0.1}, features, right if answerable else None)
        )  # fmt: skip
    return rows


def test_a_fold_is_chosen_without_its_corpus_and_judged_on_it() -> None:
    rows = [r for n, corpus in enumerate("abcd") for r in _rows(corpus, 0.6, 0.3, n)]
    result = decide.decide(rows, ["a", "b", "c"], ["d"])
    assert set(result["left_out"]) == {"a", "b", "c"} and set(result["held_out"]) == {"d"}
    for figures in [*result["left_out"].values(), *result["held_out"].values()]:
        assert figures["answerable_wrongly_flagged"] == 0.0
        assert (figures["unanswerable_flagged"] or 0) >= 0.9 and (figures["near_topic_flagged"] or 0) >= 0.9
        assert figures["highlight_precision"] == 1.0 and 0.4 < (figures["highlight_rate"] or 0) < 0.8


def test_no_setting_refuses_more_than_the_bar_on_a_training_corpus() -> None:
    """A corpus whose answerable questions score low pulls the choice down: the chosen setting
    refuses at most MAX_WRONGLY_FLAGGED of them, even if that lets unanswerable questions through
    elsewhere."""
    low = _rows("low", 0.32, 0.25, 1)
    rows = _rows("high", 0.6, 0.3, 2) + low
    spread, percentile = decide.choose_no_answer({"high": rows[:60], "low": low}, ["high", "low"])
    assert (
        decide.no_answer_figures(low, spread, percentile)["answerable_wrongly_flagged"] or 0
    ) <= decide.MAX_WRONGLY_FLAGGED


def test_the_spread_comes_from_the_unrelated_bank_before_the_heading_cap() -> None:
    """Chosen together, a heading cap that holds on the training corpora lets the spread rise,
    and a new corpus whose own questions sit high gets no cap and refuses its real questions.
    The spread comes first, from the bank alone; the cap can then only lower the threshold."""

    def rows(corpus: str, answerable_at: float, unanswerable_at: float, cap: float, seed: int) -> list[Row]:
        return [replace(r, headings={5: cap}) for r in _rows(corpus, answerable_at, unanswerable_at, seed)]

    # Bank at 0.2 ± 0.05 everywhere. "a" holds the spread below 4; "b" flags its unanswerable
    # questions only above 0.45, which a spread of 5 or more reaches if "a" is capped at 0.35.
    by_corpus = {"a": rows("a", 0.42, 0.30, 0.35, 1), "b": rows("b", 0.62, 0.47, 0.58, 2)}
    spread, percentile = decide.choose_no_answer(by_corpus, ["a", "b"])
    refused = decide.no_answer_figures(by_corpus["a"], spread, None)["answerable_wrongly_flagged"] or 0
    assert spread < 4 and refused <= decide.MAX_WRONGLY_FLAGGED
    # A new corpus answering at 0.47 with no cap that binds: the threshold stays under it.
    new = rows("new", 0.47, 0.25, 0.9, 3)
    assert decide.no_answer_figures(new, spread, percentile)["answerable_wrongly_flagged"] == 0
    # What choosing both together would have done (the former rule): a spread of 5 or more there.
    together = max(
        ((s, p) for s in decide.SPREADS for p in (None, 5)),
        key=lambda setting: (
            max(decide.no_answer_figures(by_corpus[c], *setting)["answerable_wrongly_flagged"] or 0 for c in "ab")
            <= decide.MAX_WRONGLY_FLAGGED,
            sum(decide.no_answer_figures(by_corpus[c], *setting)["unanswerable_flagged"] or 0 for c in "ab"),
        ),
    )
    assert together[0] >= 5 and (decide.no_answer_figures(new, *together)["answerable_wrongly_flagged"] or 0) > 0.5


def test_the_highlight_threshold_holds_the_bar_on_every_training_corpus_not_only_pooled() -> None:
    """One corpus whose highlights the model overrates: pooled, the others would carry it over
    the bar; the threshold chosen keeps that corpus's own precision at the bar too."""
    random = np.random.default_rng(7)

    def rows(corpus: str, right_share: float) -> list[Row]:
        made = []
        for number in range(200):
            signal = float(random.random())
            right = bool(random.random() < min(1.0, right_share * (0.4 + signal)))
            made.append(Row(corpus, f"{corpus}-{number}", True, None, 0.9, 0.2, 0.05, {},
                            [signal, 0.0, 0.0, 0.0], right))  # fmt: skip
        return made

    by_corpus = {"good": rows("good", 1.2), "also": rows("also", 1.2), "hard": rows("hard", 0.75)}
    chosen = decide.choose_highlight(by_corpus, list(by_corpus))
    for name, corpus_rows in by_corpus.items():
        figures = decide.highlight_figures(corpus_rows, chosen)
        assert (figures["highlight_precision"] or 0) >= decide.HIGHLIGHT_PRECISION, name
    # Pooled, a lower threshold would do, and leave the hard corpus below the bar.
    pooled = [r for corpus_rows in by_corpus.values() for r in corpus_rows]
    features, labels = decide._highlight_data(pooled)
    probabilities = 1 / (1 + np.exp(-(features @ np.asarray(chosen["weights"]) + chosen["bias"])))
    pooled_threshold = next(
        t for t in np.arange(0.30, 0.95, 0.01) if labels[probabilities >= t].mean() >= decide.HIGHLIGHT_PRECISION
    )
    assert pooled_threshold < chosen["threshold"]
    hard = decide.highlight_figures(by_corpus["hard"], {**chosen, "threshold": pooled_threshold})
    assert (hard["highlight_precision"] or 0) < decide.HIGHLIGHT_PRECISION
