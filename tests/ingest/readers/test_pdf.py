"""The PDF reader: pages and citations, running heads, contents, headings on several lines, hyphens."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import ChunkerSettings, chunk_document_with_sentences
from ingest.documents import Document, load_document
from ingest.readers import SegmentKind, pdf_segments
from ingest.structure import parse_blocks
from tests.conftest import write_justified_pdf

REPO = Path(__file__).resolve().parents[3]
FHS = REPO / "eval/corpora/fhs-pdf/fhs-3.0.pdf"


@pytest.fixture(scope="module")
def fhs() -> Document:
    return load_document(FHS, FHS.parent)


def test_pdf_pages_are_recorded_and_citations_land_on_their_page(fhs: Document) -> None:
    import pypdfium2 as pdfium

    from ingest.readers.pdf_pages import _pdf_page_text

    document = pdfium.PdfDocument(str(FHS))
    pages = [_pdf_page_text(document[number])[0] for number in range(len(document))]
    assert fhs.format == "pdf" and len(fhs.pages) == len(pages) == 50
    for number, start in enumerate(fhs.pages):
        assert fhs.text[start : start + len(pages[number])] == pages[number]
    _, chunks, _ = chunk_document_with_sentences(fhs, ChunkerSettings())
    for chunk in chunks:
        assert fhs.text[chunk.start : chunk.end] == chunk.text
        first, last = fhs.page_span(chunk.start, chunk.end) or (0, 0)
        assert chunk.text.split("\n")[0] in pages[first - 1]
        assert chunk.text.split("\n")[-1] in pages[last - 1]
    lock = next(c for c in chunks if "Lock files should be stored within the /var/lock directory" in c.text)
    page = (fhs.page_span(lock.start, lock.end) or (0, 0))[0]
    assert "Lock files should be stored within the /var/lock directory" in pages[page - 1]


def test_pdf_words_are_spaced_and_line_end_hyphens_kept(tmp_path: Path) -> None:
    """PDFium spaces the words of a justified line by their positions (LaTeX often writes no space
    character between them), and a word hyphenated at a line's end keeps its hyphen and line
    break, as printed; what is embedded and searched reads the word whole, but a compound the
    document writes with its hyphen elsewhere, or whose second word is capitalised, keeps it."""
    write_justified_pdf(tmp_path / "justified.pdf")
    document = load_document(tmp_path / "justified.pdf", tmp_path)
    assert "The build daemons install" in document.text
    assert "unsuitable for dis-\ntribution today, by a Non-\nMaintainer upload to stable-\nbackports" in document.text
    [hyphen] = document.soft_hyphens
    assert document.text[hyphen - 3 : hyphen + 1] == "dis-"
    start = document.text.index("a package")
    assert document.reading(start, len(document.text)) == (
        "a package unsuitable for distribution today, by a Non-\nMaintainer upload to stable-\n"
        "backports, as stable-backports allows."
    )
    assert document.reading(hyphen - 3, hyphen) == "dis"  # a span that ends at the hyphen


def test_pdf_structure_sections_and_running_heads(fhs: Document) -> None:
    blocks = parse_blocks(fhs.text, fhs.segments)
    sections = {b.section for b in blocks if b.section}
    assert any(s.startswith("Chapter 3. The Root Filesystem › 3.1. Purpose") for s in sections)
    assert not any(s.rstrip().endswith((".", "9")) and "...." in s for s in sections)  # no contents lines
    chrome = [b for b in blocks if b.kind.value == "chrome"]
    assert chrome and all(not b.indexed for b in chrome)


def test_running_heads_that_carry_the_page_number_are_chrome() -> None:
    """Texinfo's running heads change with the chapter and end in the page's number: they are
    page chrome, while a chapter's numbered heading opening a page stays a heading."""
    body = "This paragraph explains the functions of the library in enough words to be a full line.\n"
    pages = ["GNU libidn2\nCopyright 2022 Simon Josefsson\n"]
    pages.append("1 Introduction\n" + body + "1\n")
    pages.append("2 Library Functions\n" + body + "2\n")
    pages += [f"Chapter 2: Library Functions {n}\n{body}" for n in range(3, 7)]
    pages += ["3 Converting from libidn\n" + body + "7\n", "Chapter 3: Converting from libidn 8\n" + body]
    pages[-1] += "It is short.\nSince: 2.0.0\n"
    starts, position = [], 0
    for page in pages:
        starts.append(position)
        position += len(page) + 2
    text = "\n\n".join(pages)
    segments = pdf_segments(text, tuple(starts))
    chrome = {text[s.start : s.end] for s in segments if s.kind is SegmentKind.CHROME}
    headings = [text[s.start : s.end] for s in segments if s.kind is SegmentKind.HEADING]
    assert {f"Chapter 2: Library Functions {n}" for n in range(3, 7)} <= chrome
    assert "Chapter 3: Converting from libidn 8" in chrome
    assert headings == ["1 Introduction", "2 Library Functions", "3 Converting from libidn"]
    # A short line of a PDF is not a heading of its own (the plain-text rule is for .txt files).
    since = next(b for b in parse_blocks(text, segments) if b.text.startswith("Since: 2.0.0"))
    assert since.section == "3 Converting from libidn" and since.indexed


def _pdf_text(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    starts, position = [], 0
    for page in pages:
        starts.append(position)
        position += len(page) + 2
    return "\n\n".join(pages), tuple(starts)


def test_feet_contents_and_footnotes_of_a_sphinx_manual_are_not_headings() -> None:
    """A Sphinx (LaTeX) manual: the title runs at the head of every page, the page number and
    chapter or section at its foot ("34 Chapter 5. Managing Packages", "5.6. Uploading 33"),
    the contents have no dot leaders, and footnotes and numbered list items start with a
    number. Read as headings, each would be the section of the passages after it."""
    body = "The upload queue accepts packages signed by a key in the keyring of the project today.\n"
    pages = [
        "Developer's Reference, Release 1.0\nContents\n1 Scope of This Document 3\n2 Applying 5\n"
        "2.1 Getting started 5\n3 Managing Packages 7\n3.1 New packages 7\n3.2 Uploading a package 8\n",
        "Developer's Reference, Release 1.0\n1 Scope of This Document\n" + body * 3 + "1 Scope of This Document 3\n",
        "Developer's Reference, Release 1.0\n" + body * 3 + "4 Chapter 1. Scope of This Document\n",
        "Developer's Reference, Release 1.0\n2 Applying\n2.1 Getting started\n" + body * 2 + "2.1. Getting started 5\n",
        "Developer's Reference, Release 1.0\n"
        + body
        + "2. Put the team's list address in the Maintainer field\n"
        + body
        + "6 Chapter 2. Applying\n",
        "Developer's Reference, Release 1.0\n3 Managing Packages\n3.1 New packages\n"
        + body * 2
        + "1 ITS is shorthand for Intend to Salvage\n3.1. New packages 7\n",
        "Developer's Reference, Release 1.0\n3.2 Uploading a package\n" + body * 3 + "8 Chapter 3. Managing Packages\n",
    ]
    text, starts = _pdf_text(pages)
    segments = pdf_segments(text, starts)
    headings = [text[s.start : s.end] for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        "1 Scope of This Document",
        "2 Applying",
        "2.1 Getting started",
        "3 Managing Packages",
        "3.1 New packages",
        "3.2 Uploading a package",
    ]
    chrome = {text[s.start : s.end] for s in segments if s.kind is SegmentKind.CHROME}
    assert {"4 Chapter 1. Scope of This Document", "8 Chapter 3. Managing Packages", "3.1. New packages 7"} <= chrome
    assert {"1 Scope of This Document 3", "2.1 Getting started 5", "3.2 Uploading a package 8"} <= chrome  # contents
    blocks = [b for b in parse_blocks(text, segments) if b.indexed]
    footnote = next(b for b in blocks if "ITS is shorthand" in b.text)
    item = next(b for b in blocks if "team's list address" in b.text)
    assert footnote.section == "3 Managing Packages › 3.1 New packages"
    assert item.section == "2 Applying › 2.1 Getting started"
    assert all(text[b.start : b.end] == b.text for b in blocks)


def test_a_sphinx_chapter_opener_is_the_chapter_heading() -> None:
    """Sphinx (LaTeX) opens a chapter on a new page with 'CHAPTER' / 'TWENTYONE' / its title in
    capitals: one heading of level 1, numbered for the order of the sections under it."""
    body = "Maintainer scripts are called by dpkg in a fixed order during every installation.\n"
    pages = [
        "Policy Manual, Release 4.6\nCHAPTER\nTWENTY\nCHANGES PROCESS\n20.1 Introduction\n" + body * 3,
        "Policy Manual, Release 4.6\n" + body + "1 A footnote that opens with its mark\n",
        "Policy Manual, Release 4.6\nCHAPTER\nTWENTYONE\nMAINTAINER SCRIPT FLOWCHARTS\n" + body,
        "Policy Manual, Release 4.6\n21.1 Installing\n" + body * 2 + "The word CHAPTER\nalone is prose.\n",
    ]
    text, starts = _pdf_text(pages)
    segments = pdf_segments(text, starts)
    headings = [(s.level, s.name) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        (1, "Chapter 20. CHANGES PROCESS"),
        (2, "20.1 Introduction"),
        (1, "Chapter 21. MAINTAINER SCRIPT FLOWCHARTS"),
        (2, "21.1 Installing"),
    ]
    opener = next(s for s in segments if s.name == "Chapter 21. MAINTAINER SCRIPT FLOWCHARTS")
    assert text[opener.start : opener.end] == "CHAPTER\nTWENTYONE\nMAINTAINER SCRIPT FLOWCHARTS"
    blocks = [b for b in parse_blocks(text, segments) if b.indexed]
    assert next(b for b in blocks if "footnote" in b.text).section == "Chapter 20. CHANGES PROCESS › 20.1 Introduction"
    assert next(b for b in blocks if "alone is prose" in b.text).section == (
        "Chapter 21. MAINTAINER SCRIPT FLOWCHARTS › 21.1 Installing"
    )


def test_a_heading_hyphenated_over_two_lines_is_one_heading() -> None:
    """A long heading LaTeX breaks after a hyphen goes on over the next line: the heading is both
    lines (the next is not the first words of the body), named with the word whole where the
    hyphen is the typesetter's and with its hyphen where it is the words' own."""
    body = "Some archive manipulation operations are not automated in the upload process.\n"
    pages = [
        "5.9 Moving, removing, renaming, and reintro-\nducing packages\n"
        + body * 3
        + "5.15 How long must a package be maintained in stable-\nbackports?\n"
        + body,
    ]
    text, starts = _pdf_text(pages)
    typeset = text.index("reintro-") + len("reintro")
    segments = pdf_segments(text, starts, frozenset({typeset}))
    headings = [(text[s.start : s.end], s.name) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        (
            "5.9 Moving, removing, renaming, and reintro-\nducing packages",
            "5.9 Moving, removing, renaming, and reintroducing packages",
        ),
        (
            "5.15 How long must a package be maintained in stable-\nbackports?",
            "5.15 How long must a package be maintained in stable-backports?",
        ),
    ]
    first = next(b for b in parse_blocks(text, segments) if b.indexed)
    assert first.text.startswith("Some archive") and first.section == headings[0][1]


def test_the_table_of_contents_names_the_headings_and_is_not_indexed() -> None:
    """A Texinfo manual (R's, in Debian's r-doc-pdf): the contents have dot leaders and no line of them looks
    like a heading by itself, so they were indexed as text; and sections titled after a function
    ('attach() and detach()'), ending 'etc.' or set on two lines were not headings at all. The
    contents list them: a body line (or two) that is a listed numbered title is that heading."""

    def body(n: int) -> str:
        return f"The sources of release {n} are on CRAN and its mirrors, with the recommended packages.\n"

    pages = [
        "Table of Contents\n1 Obtaining R . . . . . . . . . . . . 2\n1.1 Getting the sources. . . . . . . . 2\n"
        "1.2 R commands, case sensitivity, etc. . . . . . 2\n1.3 attach() and detach() . . . . . . . . 3\n"
        "1.4 Index vectors; selecting and modifying subsets of a data set . . . 3\n",
        "1 Obtaining R\n1.1 Getting the sources\n"
        + body(1)
        + body(2)
        + "1.2 R commands, case sensitivity, etc.\n"
        + body(3),
        "1.3 attach() and detach()\n"
        + body(4)
        + "1.4 Index vectors; selecting and modifying subsets of a data\nset\n"
        + body(5),
    ]
    text, starts = _pdf_text(pages)
    segments = pdf_segments(text, starts)
    headings = [(s.name, text[s.start : s.end]) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        ("1 Obtaining R", "1 Obtaining R"),
        ("1.1 Getting the sources", "1.1 Getting the sources"),
        ("1.2 R commands, case sensitivity, etc.", "1.2 R commands, case sensitivity, etc."),
        ("1.3 attach() and detach()", "1.3 attach() and detach()"),
        (
            "1.4 Index vectors; selecting and modifying subsets of a data set",
            "1.4 Index vectors; selecting and modifying subsets of a data\nset",
        ),
    ]
    chrome = [text[s.start : s.end] for s in segments if s.kind is SegmentKind.CHROME]
    assert len(chrome) == 5 and all(line.endswith((" 2", " 3")) for line in chrome)
    sections = {b.section for b in parse_blocks(text, segments) if b.indexed and b.text.startswith("The sources of")}
    assert "1 Obtaining R › 1.3 attach() and detach()" in sections


def test_contents_entries_and_headings_set_on_several_lines() -> None:
    """A DocBook manual set by dblatex (Debian's FAQ): a long contents entry runs onto a second
    line that alone carries the dot leaders and page number, and a two-digit section number
    fills its column ('11.10How'); chapters open with 'Chapter 1' over their title; a body
    heading runs over three lines, broken after the typesetter's hyphen ('pack-' / 'age?') and
    after a word's own ('Debian-' / 'based'). The contents are all chrome, the headings whole;
    a body line ending in a footnote mark is no contents, and a paragraph never spans the page
    number inside it (nor comes after it: segments are in the document's order, which decides
    what a passage may join)."""
    body = "The Debian packaging tools can be used to manage packages and their local overrides.\n"
    pages = [
        "Contents\n1 Definitions and overview 1\n"
        "1.1 What is meant by saying that a package Depends, Recommends, Suggests, Conflicts,\n"
        "Replaces, Breaks or Provides another package? . . . . . . . . . 1\n"
        "1.2 I know that Knoppix is Debian-based. So after installing it on the hard disk, can I\n"
        "use apt on it? . . . . . . . . . . . . . . . . . . . . . . . . 2\n"
        "1.10How can I have my locally-built package included in the list of available packages\n"
        "that the package management system knows about? . . . . . . . . . . 2\n",
        "Chapter 1\nDefinitions and overview\n"
        "1.1 What is meant by saying that a package Depends, Recommends,\n"
        "Suggests, Conflicts, Replaces, Breaks or Provides another pack-\nage?\n"
        + body
        * 2
        + "Packages that are not in the archive may be listed as well, with their own versions. 2\n"
        "1.2 I know that Knoppix is Debian-\nbased. So after installing it on the hard disk, can I use\n"
        "apt on it?\n" + body,
        "The rest of the answer follows on this page and says where the tools\n2\nare kept.\n"
        "1.10 How can I have my locally-built package included in the list\n"
        "of available packages that the package management system\nknows about?\n" + body,
    ]
    text, starts = _pdf_text(pages)
    typeset = text.index("pack-\nage") + len("pack")
    segments = pdf_segments(text, starts, frozenset({typeset}))
    headings = [(s.level, s.name) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        (1, "Chapter 1. Definitions and overview"),
        (
            2,
            "1.1 What is meant by saying that a package Depends, Recommends, Suggests, Conflicts, "
            "Replaces, Breaks or Provides another package?",
        ),
        (2, "1.2 I know that Knoppix is Debian-based. So after installing it on the hard disk, can I use apt on it?"),
        (
            2,
            "1.10 How can I have my locally-built package included in the list of available packages "
            "that the package management system knows about?",
        ),
    ]
    contents = text[: starts[1]].rstrip("\n")
    chrome = {text[s.start : s.end] for s in segments if s.kind is SegmentKind.CHROME}
    assert set(contents.split("\n")[1:]) <= chrome and "2" in chrome
    blocks = [b for b in parse_blocks(text, segments) if b.indexed]
    assert not any("Definitions and overview 1" in b.text or ". . ." in b.text for b in blocks)
    assert any("Packages that are not in the archive" in b.text for b in blocks)  # a footnote mark
    assert all(not (s.start < chrome_start < s.end) for s in segments for chrome_start in [text.index("\n2\n") + 1])
    assert [s.start for s in segments] == sorted(s.start for s in segments)  # in the document's order
    assert (next(b for b in blocks if b.text.startswith("are kept")).section or "").startswith("Chapter 1. Definitions")


def test_a_contents_counts_entries_not_lines_and_names_read_across_hyphens() -> None:
    """Three body lines, two of them ending in a number around one that opens with a digit, are
    no contents (a contents is three entries, an entry's wrapped lines are not entries); the
    first entry of a contents may be set on two lines; a heading or chapter title broken after
    the typesetter's hyphen reads the word whole ('detected/-' / 'working'), after a word's own
    hyphen keeps it ('e-' / 'mail')."""
    body = "The client library keeps a pool of connections open to every server it uses today.\n"
    pages = [
        "Contents\n1 Getting and installing Debian-based systems, from the first image to a working\n"
        "desktop . . . . . . . . . 2\n1.1 Is my hardware detected/working under Debian? . . . . 2\n"
        "1.2 What is an e-mail alias? . . . . . . . . . 3\n",
        "Chapter 1\nGetting and installing Debian-based systems, from the first image to a work-\ning desktop\n"
        "1.1 Is my hardware detected/-\nworking under Debian?\n"
        + body
        + "Failed requests are retried, as the policy in section 2\n"
        "3 Retries are made by default, and the client waits between them for a while\n"
        "that doubles each time: 1, 2, 4 ... 8\n",
        "1.2 What is an e-\nmail alias?\n" + body * 2,
    ]
    text, starts = _pdf_text(pages)
    soft = frozenset({text.index("work-\ning") + 4, text.index("detected/-") + len("detected/")})
    segments = pdf_segments(text, starts, soft)
    headings = [(s.level, s.name) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        (1, "Chapter 1. Getting and installing Debian-based systems, from the first image to a working desktop"),
        (2, "1.1 Is my hardware detected/working under Debian?"),
        (2, "1.2 What is an e-mail alias?"),
    ]
    indexed = " ".join(b.text for b in parse_blocks(text, segments) if b.indexed)
    assert "the client waits between them" in indexed and "as the policy in section 2" in indexed
    assert "desktop . . ." not in indexed and "Debian-based systems, from the first image" not in indexed
