"""Layout rules on small synthetic texts, then on the real article."""

from __future__ import annotations

from ingest.chunking import ChunkerSettings, chunk_document_with_sentences
from ingest.documents import Document
from ingest.readers import markdown_segments
from ingest.structure import Block, BlockKind, parse_blocks, speaker_name, split_spans

INTERVIEW = """An opening paragraph that sets the scene. It has two sentences.
The first question
Jane Roe, a historian at the Example Institute:
“The river changed course in 1820. Nobody expected it.
Farmers moved north within a decade.”
Term - a definition that the layout repeats.
Other - a second line of the same boxed glossary.
Farmers moved north within a decade of the flood
Second section heading
Richard Poe:
“Trade collapsed after the flood, as the old harbour silted up completely.
Term - a definition that the layout repeats.
Other - a second line of the same boxed glossary.
Trade collapsed after the flood, as the old harbour silted up
The harbour was rebuilt only in 1900, long after the merchants had gone.”
A closing narrative paragraph.
Roe:
“One more word from the historian.”
"""


def kinds(blocks: list[Block]) -> list[str]:
    return [b.kind.value for b in blocks]


def test_spans_are_exact_and_skip_blank_lines() -> None:
    text = "  Title line  \n\nFirst paragraph\nstill first.\n\n\nSecond.\n"
    spans = split_spans(text)
    assert [s.text for s in spans] == ["Title line", "First paragraph\nstill first.", "Second."]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_one_line_per_paragraph_when_no_blank_lines() -> None:
    spans = split_spans("a\nb\r\nc")
    assert [s.text for s in spans] == ["a", "b", "c"]


def test_interview_layout_is_classified() -> None:
    blocks = parse_blocks(INTERVIEW)
    assert kinds(blocks) == [
        "body",
        "heading",
        "attribution",
        "quote",
        "quote",
        "boilerplate",
        "boilerplate",
        "pull_quote",
        "heading",
        "attribution",
        "quote",
        "boilerplate",
        "boilerplate",
        "pull_quote",
        "quote",
        "body",
        "attribution",
        "quote",
    ]
    assert all(INTERVIEW[b.start : b.end] == b.text for b in blocks)


def test_sections_and_speakers_follow_the_text() -> None:
    blocks = parse_blocks(INTERVIEW)
    by_text: dict[str, Block] = {}
    for b in blocks:
        by_text.setdefault(b.text[:20], b)  # first occurrence
    assert by_text["An opening paragraph"].section is None
    assert by_text["“The river changed c"].speaker == "Jane Roe"
    assert by_text["Farmers moved north "].speaker == "Jane Roe"  # second paragraph of the quotation
    assert by_text["“The river changed c"].section == "The first question"
    # The quotation continues after the repeated glossary and the pull-quote.
    continued = by_text["The harbour was rebu"]
    assert (continued.kind, continued.speaker, continued.section) == (
        BlockKind.QUOTE,
        "Richard Poe",
        "Second section heading",
    )
    assert by_text["A closing narrative "].speaker is None
    # A short form of a name already seen resolves to the full name.
    assert by_text["“One more word from "].speaker == "Jane Roe"


def test_repeated_boilerplate_is_indexed_once() -> None:
    blocks = parse_blocks(INTERVIEW)
    glossary = [b for b in blocks if b.kind is BlockKind.BOILERPLATE]
    assert len(glossary) == 4
    assert [b.indexed for b in glossary] == [True, True, False, False]
    assert glossary[2].duplicate_of == blocks.index(glossary[0])
    assert glossary[0].speaker is None  # a glossary inside a quotation is not the speaker's words


def test_pull_quotes_and_headings_are_not_indexed() -> None:
    blocks = parse_blocks(INTERVIEW)
    assert not any(b.indexed for b in blocks if b.kind in (BlockKind.PULL_QUOTE, BlockKind.HEADING))


def test_exact_repeat_of_a_body_sentence_is_a_pull_quote_even_between_sections() -> None:
    text = (
        "Intro paragraph about the topic at hand.\n"
        "Sam Vole:\n"
        "“The budget will double by next spring, officials say.”\n"
        "The budget will double by next spring\n"
        "Another paragraph of narrative.\n"
    )
    blocks = parse_blocks(text)
    assert kinds(blocks) == ["body", "attribution", "quote", "pull_quote", "body"]


def test_short_line_starting_a_new_topic_is_a_heading() -> None:
    text = "First paragraph here.\nWhat happens next?\nSecond paragraph here.\n"
    blocks = parse_blocks(text)
    assert kinds(blocks) == ["body", "heading", "body"]
    assert blocks[2].section == "What happens next?"


def test_name_line_without_a_following_quotation_is_not_an_attribution() -> None:
    blocks = parse_blocks("Some intro.\nJohn Smith:\nHe then left the building.\n")
    assert BlockKind.ATTRIBUTION not in [b.kind for b in blocks]


def test_unclosed_quotation_does_not_swallow_the_rest() -> None:
    text = "Ann Lee:\n“An opening without a close.\nA new heading\nNarrative paragraph.\n"
    blocks = parse_blocks(text)
    assert kinds(blocks) == ["attribution", "quote", "heading", "body"]
    assert blocks[3].speaker is None


def test_speaker_name_forms() -> None:
    assert speaker_name("Jane Roe, a historian at the Example Institute:") == "Jane Roe"
    assert speaker_name("Israeli military expert Jane Roe:") == "Jane Roe"
    assert speaker_name("Aymenn Al-Tamimi:") == "Aymenn Al-Tamimi"
    assert speaker_name("Omar bin Laden") == "Omar bin Laden"
    assert speaker_name("the spokesman said:") is None


# --- the real article -------------------------------------------------------------------


def block_at(blocks: list[Block], start_of_text: str) -> Block:
    matches = [b for b in blocks if b.text.startswith(start_of_text)]
    assert matches, start_of_text
    return matches[0]


def test_article_sections(article: Document) -> None:
    blocks = parse_blocks(article.text)
    headings = [b.text for b in blocks if b.kind is BlockKind.HEADING]
    assert headings == [
        "Long-anticipated terrorist attack",
        "Understanding ISIS-K",
        "Is there any doubt as to who is behind the terrorist attack?",
        "The likelihood of new terrorist attacks",
        "Russia and the Islamic State: from coexistence to war",
    ]


def test_article_pull_quotes_and_glossary(article: Document) -> None:
    blocks = parse_blocks(article.text)
    pulls = [b.text for b in blocks if b.kind is BlockKind.PULL_QUOTE]
    assert len(pulls) == 4
    assert pulls[0].startswith("There is no doubt that the Islamic State")
    glossary = [b for b in blocks if b.text.startswith("Dhimmi - ")]
    assert len(glossary) == 5
    assert sum(b.indexed for b in glossary) == 1


def test_article_speakers(article: Document) -> None:
    blocks = parse_blocks(article.text)
    expected = {
        "“I believe that the Islamic State": "Aymenn Al-Tamimi",
        "I wouldn't attach much significance": "Aymenn Al-Tamimi",
        "“Firstly, in January, ISIS announced": "Paweł Wójcik",
        "“The Islamic State now exists more": "David Sharp",
        "“After the US army withdrew": "Sergey Migdal",
        # Continues after the glossary and a pull-quote interrupt the quotation.
        "The second enemy of ISIS in the region": "Sergey Migdal",
        "It's important to note that many Tajiks": "Sergey Migdal",
        "The story recounted by the heavily beaten": "Sergey Migdal",
        "“Nothing can be guaranteed": "David Sharp",  # a bare-name attribution line
        "It is also important to note that bad examples": "David Sharp",
        "The responsibility for the tragic": None,
        "Despite all of the available evidence": None,
        "Russian military intervention in the Syrian": None,
    }
    for start, speaker in expected.items():
        assert block_at(blocks, start).speaker == speaker, start


def test_corpus_chrome_is_furniture_but_a_one_word_label_is_content() -> None:
    """A block repeated across the corpus is page furniture, indexed once; a single word
    repeated so ("Note" over an admonition) labels the text it heads and stays in its passage."""
    text = "Intro paragraph.\n\nNote\n\nThe note's own text.\n\nBack to top of page\n\nMore text here.\n"
    segments, _, _ = markdown_segments(text)
    blocks = parse_blocks(text, segments, frozenset({"note", "back to top of page"}))
    kinds = {b.text: b.kind for b in blocks}
    assert kinds["Note"] is BlockKind.BODY
    assert kinds["Back to top of page"] is BlockKind.BOILERPLATE


def test_a_one_word_label_does_not_split_its_passage() -> None:
    text = "Install it with pip first.\n\nNote\n\nOn Windows, prefix the command with python -m.\n"
    segments, _, _ = markdown_segments(text)
    document = Document(doc_id="d", title="D", source="d.md", text=text, format="markdown", segments=segments)
    _, chunks, _ = chunk_document_with_sentences(document, ChunkerSettings(), frozenset({"note"}))
    assert [c.text for c in chunks] == [text.strip()]
