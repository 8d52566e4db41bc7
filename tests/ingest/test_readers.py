"""Each format's reader: exact offsets into the text it reports, structure from a real parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import ChunkerSettings, chunk_document_with_sentences
from ingest.documents import Document, load_document
from ingest.errors import CorpusError
from ingest.readers import SegmentKind, markdown_segments, pdf_segments, read_file
from ingest.sentences import sentence_spans
from ingest.structure import parse_blocks
from tests.conftest import write_justified_pdf

REPO = Path(__file__).resolve().parents[2]
FHS = REPO / "eval/corpora/fhs-pdf/fhs-3.0.pdf"

MARKDOWN = """---
title: The Front Matter Title
tags: [a, b]
---
<!--type=misc-->

# File system

Intro paragraph that is hard
wrapped across lines. It has version 3.11.2 and a URL https://example.com/a.b in it.

[ref]: https://example.com/reference "not content"

## File system flags

The following flags are available wherever a `flag` option takes a string.
To open a file, run:

```js
fs.open('x.txt', 'r');
```

* Returns: {boolean}
* Returns: {boolean}

| flag | meaning |
|------|---------|
| `r`  | read    |

### Deeper ###

Setext heading
--------------

Last words.
"""


def test_markdown_segments_are_exact_and_typed() -> None:
    segments, title, front = markdown_segments(MARKDOWN)
    assert title == "The Front Matter Title" and front["tags"] == ["a", "b"]
    texts = [MARKDOWN[s.start : s.end] for s in segments]
    # Front matter, the HTML comment and the link reference definition give no segment.
    assert not any("type=misc" in t or "[ref]" in t or "tags:" in t for t in texts)
    headings = [(s.level, s.name, MARKDOWN[s.start : s.end]) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        (1, "File system", "File system"),
        (2, "File system flags", "File system flags"),
        (3, "Deeper", "Deeper"),
        (2, "Setext heading", "Setext heading"),
    ]
    kinds = [s.kind for s in segments]
    assert kinds.count(SegmentKind.CODE) == 1 and kinds.count(SegmentKind.TABLE) == 1
    assert kinds.count(SegmentKind.LIST_ITEM) == 2
    assert next(t for s, t in zip(segments, texts, strict=True) if s.kind is SegmentKind.CODE).startswith("```js")


def test_markdown_blocks_carry_heading_paths_and_short_repeats_stay_content() -> None:
    segments, _, _ = markdown_segments(MARKDOWN)
    blocks = parse_blocks(MARKDOWN, segments)
    returns = [b for b in blocks if b.text == "* Returns: {boolean}"]
    assert len(returns) == 2 and all(b.indexed for b in returns)
    table = next(b for b in blocks if b.form == "table")
    assert table.section == "File system › File system flags"
    last = next(b for b in blocks if b.text == "Last words.")
    assert last.section == "File system › Setext heading"


def test_code_stays_with_its_introduction_and_title_comes_from_the_document(tmp_path: Path) -> None:
    (tmp_path / "fs.md").write_text(MARKDOWN, encoding="utf-8")
    document = load_document(tmp_path / "fs.md", tmp_path)
    assert document.title == "The Front Matter Title" and document.format == "markdown"
    _, chunks, sentences = chunk_document_with_sentences(document, ChunkerSettings(max_chars=120))
    for chunk in chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text
    holder = next(c for c in chunks if "fs.open" in c.text)
    assert "To open a file, run:" in holder.text
    assert all(document.text[s.start : s.end].strip() for s in sentences)
    assert not any("fs.open" in document.text[s.start : s.end] for s in sentences)  # code is no answer


def test_hard_wrapped_lines_do_not_end_sentences() -> None:
    text = "A common use case for `readline` is to consume an input file one\nline at a time. E.g. this: v3.11.2 works."
    spans = [text[a:b] for a, b in sentence_spans(text)]
    assert spans == [
        "A common use case for `readline` is to consume an input file one\nline at a time.",
        "E.g. this: v3.11.2 works.",
    ]


def test_html_main_content_is_the_document_text(tmp_path: Path) -> None:
    page = """<html><head><title>Deploying your docs</title><script>var tracking = 1;</script></head>
    <body><nav><ul><li><a href="/">Home</a></li><li><a href="/x">Menu entry</a></li></ul></nav>
    <main><h1>Deploying</h1><p>Pages are built into the site directory and copied to the server by the
    deploy command, which never touches your sources.</p><h2>Custom domains</h2>
    <p>Add a CNAME file to the docs directory so that the domain survives every redeploy of the site.</p></main>
    <footer>Copyright 2024 Example footer text</footer></body></html>"""
    (tmp_path / "deploy.html").write_text(page, encoding="utf-8")
    document = load_document(tmp_path / "deploy.html", tmp_path)
    assert document.format == "html" and document.title == "Deploying your docs"
    assert "CNAME file" in document.text
    assert "tracking" not in document.text and "Menu entry" not in document.text
    blocks = parse_blocks(document.text, document.segments)
    cname = next(b for b in blocks if "CNAME" in b.text)
    assert cname.section == "Deploying › Custom domains"
    assert document.text[cname.start : cname.end] == cname.text


def test_inline_code_broken_over_lines_does_not_swap_code_and_prose(tmp_path: Path) -> None:
    """trafilatura writes `<code>mkdocs\n--version</code>` inside a sentence as a fence opened after
    its words; the fence that closes it starts a line. Read as written, CommonMark would open a
    fence there, and every later code block and paragraph of the page would swap places."""
    page = """<html><head><title>Install</title></head><body><main><h1>Installing</h1>
    <p>You now have the <code>mkdocs</code> command. Run <code>mkdocs
--version</code> to check that everything worked okay.</p>
    <pre><code>$ mkdocs --version
mkdocs, version 1.2.0
</code></pre>
    <p>If you would like manpages installed for MkDocs, the click-man tool can generate them for you. Run:</p>
    <pre><code>pip install click-man
click-man --target path/to/man/pages mkdocs
</code></pre>
    <p>See the click-man documentation for why pip does not install manpages.</p></main></body></html>"""
    (tmp_path / "install.html").write_text(page, encoding="utf-8")
    document = load_document(tmp_path / "install.html", tmp_path)
    assert "Run ```\nmkdocs\n--version\n```" in document.text  # the case this guards, as written
    assert document.segments is not None
    kinds = {document.text[s.start : s.end].split("\n")[0]: s.kind for s in document.segments}
    assert kinds["```"] == SegmentKind.CODE
    prose = [document.text[s.start : s.end] for s in document.segments if s.kind == SegmentKind.PARAGRAPH]
    assert any(p.startswith("You now have") and p.endswith("worked okay.") for p in prose)
    assert any(p.startswith("If you would like manpages") for p in prose)
    assert any(p.startswith("See the click-man documentation") for p in prose)
    code = [document.text[s.start : s.end] for s in document.segments if s.kind == SegmentKind.CODE]
    assert [c.split("\n")[1] for c in code] == ["$ mkdocs --version", "pip install click-man"]


DOCBOOK_PAGE = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Chapter 1. Tutorials</title>
<meta name="generator" content="DocBook XSL Stylesheets V1.79.2"/></head><body>
<div class="navheader"><table><tr><th>Chapter 1. Tutorials</th></tr>
<tr><td><a accesskey="p" href="index.html">Prev</a></td><td><a href="ch02.html">Next</a></td></tr></table></div>
<div class="chapter"><div class="titlepage"><div><div><h1 class="title"><a id="ch01"></a>Chapter 1. Tutorials</h1>
</div></div></div><div class="toc"><dl><dt><a href="#s1">1.1. Console basics</a></dt></dl></div>
<div class="section"><div class="titlepage"><div><div><h2 class="title"><a id="s1"></a>1.1. Console basics</h2>
</div></div></div><div class="section"><div class="titlepage"><div><div>
<h3 class="title"><a id="s11"></a>1.1.1. The shell prompt</h3></div></div></div>
<p>Upon starting the system, you are presented with the character based login screen. Suppose your
hostname is <code class="literal">foo</code>, the login prompt looks as follows.</p>
<pre class="screen">foo login:</pre>
<p>At the login prompt, you type your username and press the Enter-key, then type your password.</p>
<div class="note"><table border="0" summary="Note"><tr><td rowspan="2"><img alt="[Note]" src="note.png"/></td>
<th>Note</th></tr><tr><td><p>The username and password of the Debian system are case sensitive.</p></td></tr>
</table></div>
</div></div></div>
<div class="navfooter"><table><tr><td><a href="index.html">Prev</a></td><td>Home</td></tr></table></div>
</body></html>"""


def test_a_generated_manual_keeps_its_headings_and_examples(tmp_path: Path) -> None:
    """A DocBook page (XHTML, headings nested in <div>s with empty anchors, <pre class=screen>
    examples, navigation tables) keeps every heading as a section and its examples as code."""
    (tmp_path / "ch01.html").write_text(DOCBOOK_PAGE, encoding="utf-8")
    document = load_document(tmp_path / "ch01.html", tmp_path)
    assert document.title == "Chapter 1. Tutorials"
    assert "Prev" not in document.text and "Next" not in document.text  # navigation out
    blocks = parse_blocks(document.text, document.segments)
    prompt = next(b for b in blocks if "login prompt, you type" in b.text)
    assert prompt.section == "Chapter 1. Tutorials › 1.1. Console basics › 1.1.1. The shell prompt"
    assert [b.text.strip("`\n") for b in blocks if b.form == SegmentKind.CODE] == ["foo login:"]
    assert any("case sensitive" in b.text for b in blocks)
    for block in blocks:
        assert document.text[block.start : block.end] == block.text


TEXINFO_PAGE = """<!DOCTYPE html><html><head><title>R Data Import/Export</title>
<meta name="Generator" content="texi2any"></head><body>
<h1 class="settitle">R Data Import/Export</h1>
<div class="Contents_element" id="SEC_Contents"><h2 class="contents-heading">Table of Contents</h2>
<div class="contents"><ul class="no-bullet"><li><a href="#Imports">1 Imports</a></li>
<li><a href="#Encodings">1.1 Encodings</a></li></ul></div></div>
<div class="chapter" id="Imports"><div class="header"><p>Next: <a href="#Encodings" rel="next">Encodings</a>,
Up: <a href="#Top" rel="up">Top</a> &nbsp; [<a href="#SEC_Contents" rel="contents">Contents</a>]</p></div>
<h2 class="chapter">1 Imports</h2>
<p>The easiest form of data to import into R is a simple text file.</p>
<table class="cartouche" border="1"><tr><td><pre class="example">## read the whole file
x &lt;- readLines("data.txt")
</pre></td></tr></table>
<ul class="section-toc"><li><a href="#Encodings">Encodings</a></li></ul>
<div class="section" id="Encodings"><div class="header"><p>Previous: <a href="#Imports" rel="prev">Imports</a></p></div>
<h3 class="section">1.1 Encodings</h3>
<p>Unless the file is in the native encoding, say which encoding it is in.</p>
<blockquote><pre class="example">## declare it
con &lt;- file("data.txt", encoding = "UCS-2LE")
</pre></blockquote>
<p>A file in UTF-8 is read with its byte-order mark removed.</p>
</div></div>
<div class="unnumbered" id="Concept-index"><h2 class="unnumbered">Concept index</h2>
<table><tr><th>Jump to: &nbsp; </th><td><a class="summary-letter" href="#index-E"><b>E</b></a></td></tr></table>
<table class="index-cp" border="0"><tr><td></td><td><a href="#index-encodings">encodings</a>:</td>
<td><a href="#Encodings">Encodings</a></td></tr></table></div>
</body></html>
"""


def test_a_texinfo_manual_is_its_text_without_node_navigation_contents_or_index(tmp_path: Path) -> None:
    """A Texinfo manual (texi2any, one page): over every node a 'Next: ..., Up: ... [Contents]'
    line, the table of contents, node menus and the index are navigation, not text; its examples
    (boxed in a one-cell table, or quoted) stay code, and their '## comment' lines no headings."""
    (tmp_path / "R-data.html").write_text(TEXINFO_PAGE, encoding="utf-8")
    document = load_document(tmp_path / "R-data.html", tmp_path)
    text = document.text
    assert "Next:" not in text and "Previous:" not in text and "Table of Contents" not in text
    assert "Jump to" not in text and "encodings:" not in text
    blocks = parse_blocks(text, document.segments)
    code = [b.text for b in blocks if b.form == SegmentKind.CODE]
    assert any('readLines("data.txt")' in c and "## read the whole file" in c for c in code)
    assert any("UCS-2LE" in b.text and "## declare it" in b.text for b in blocks)  # one quoted block
    after = next(b for b in blocks if b.text.startswith("A file in UTF-8"))
    assert after.section == "R Data Import/Export › 1 Imports › 1.1 Encodings"
    assert {b.section for b in blocks} <= {
        None,
        "R Data Import/Export",
        "R Data Import/Export › 1 Imports",
        "R Data Import/Export › 1 Imports › 1.1 Encodings",
        "R Data Import/Export › Concept index",
    }
    for block in blocks:
        assert text[block.start : block.end] == block.text


def test_comment_lines_of_unfenced_code_are_not_kept_headings_and_quoted_fences_pair() -> None:
    """trafilatura can leave an example unfenced, its '## comment' lines then look like headings:
    only a heading of the page, by its words, counts as one it kept. A quote's '>' before a
    fence is no sentence's words: the quoted fence opens and closes as written."""
    import lxml.html

    from ingest.readers.html import _keeps_structure, unfenced_inline_code

    root = lxml.html.fromstring(
        "<div><h2>1 Imports</h2><h3>1.1 Encodings</h3><h3>1.2 Export</h3><pre>x</pre><pre>y</pre></div>"
    )
    comments = "## read the file\n\n## list the tables\n\n## load it\n\n```\nx\n```\n\n```\ny\n```\n"
    assert not _keeps_structure(comments, root)
    kept = "## 1 Imports\n\n### 1.1 Encodings\n\n```\nx\n```\n\n```\ny\n```\n"
    assert _keeps_structure(kept, root)
    quoted = "> ```\n> PKG_LIBS = @LIBS@\n> ```\n\nwhere it is simply\n\n```\nmake\n```\n"
    assert unfenced_inline_code(quoted) == quoted
    broken = "Run ```\nmkdocs\n--version\n```\n to check.\n"
    assert unfenced_inline_code(broken) != broken
    arrow = "Then open Settings -> ```\nEditor\nFont\n```\n and pick a size.\n"  # '->' is words
    assert unfenced_inline_code(arrow) != arrow


def test_a_split_texinfo_node_between_rules_and_boxes_in_boxes() -> None:
    """A node of a split Texinfo manual: its navigation panels gone, the rules beside them open
    and close its Markdown ('---'), which is no front matter (a page has none); a box in a box
    is unwrapped twice, and a one-cell table with a caption is a table, caption kept."""
    from ingest.readers import read_html

    page = b"""<html><head><meta name="generator" content="texi2any 6.8"></head><body>
<div class="header"><p>Next: <a href="b.html">Widgets</a>, Up: <a href="index.html">Top</a></p></div><hr>
<h2 class="chapter">1 Intro</h2><p>Foo is a program that frobs widgets.</p>
<table class="cartouche"><tr><td><table class="cartouche"><tr><td><pre class="example">x &lt;- 1
y &lt;- 2</pre></td></tr></table></td></tr></table>
<table><caption>Table 1.1: Maximum sizes</caption><tr><td><pre>64 bits</pre></td></tr></table>
<hr><div class="header"><p>Next: <a href="b.html">Widgets</a></p></div></body></html>"""
    parsed = read_html(page, Path("Intro.html"))
    kinds = [(s.kind, parsed.text[s.start : s.end]) for s in parsed.segments or []]
    assert (SegmentKind.HEADING, "1 Intro") in kinds and "Next:" not in parsed.text
    assert (SegmentKind.CODE, "```\nx <- 1\ny <- 2\n```") in kinds
    assert "Table 1.1: Maximum sizes" in parsed.text
    old_style = b"""<html><head><title>Intro - GNU Foo</title><meta name="generator" content="makeinfo 4.13">
</head><body><div class="node"><a name="Intro"></a><p><hr>
Next:&nbsp;<a rel="next" accesskey="n" href="Usage.html#Usage">Usage</a>,
Up:&nbsp;<a rel="up" accesskey="u" href="index.html#Top">Top</a></div>
<h2 class="chapter">1 Intro</h2>
<p>Foo is a program that frobs widgets. It reads a widget file and writes the frobbed widgets
to standard output, one per line.
<pre class="example">     foo --frob widgets.txt
</pre>
<p>Options are described in the next chapter; the defaults suit most widget files.
<ul class="menu"><li><a accesskey="1" href="Invoking.html#Invoking">Invoking</a></ul></body></html>"""
    assert "Next:" not in read_html(old_style, Path("Intro.html")).text  # trafilatura's text kept it


def test_a_page_is_read_in_the_encoding_it_declares(tmp_path: Path) -> None:
    """DocBook writes ISO-8859-1 unless told otherwise: such a page is read, not refused as
    invalid UTF-8; an encoding nobody knows is a one-line error naming the file."""
    latin = DOCBOOK_PAGE.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').replace(
        "case sensitive.", "case sensitive (© 2024 Société Générale)."
    )
    (tmp_path / "ch01.html").write_bytes(latin.encode("latin-1"))
    document = load_document(tmp_path / "ch01.html", tmp_path)
    assert "© 2024 Société Générale" in document.text
    meta = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><title>T</title>'
    (tmp_path / "meta.html").write_bytes(
        f"{meta}</head><body><main><p>Caf\u00e9 cr\u00e8me.</p></main></body></html>".encode("latin-1")
    )
    assert "Café crème." in load_document(tmp_path / "meta.html", tmp_path).text
    (tmp_path / "odd.html").write_bytes(b'<html><head><meta charset="x-nothing"></head><body><p>x</p></body></html>')
    with pytest.raises(CorpusError, match=r"odd\.html: declares an unknown character encoding 'x-nothing'"):
        load_document(tmp_path / "odd.html", tmp_path)
    (tmp_path / "plain.html").write_bytes("<html><body><p>caf\u00e9</p></body></html>".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"plain\.html: not valid UTF-8"):
        load_document(tmp_path / "plain.html", tmp_path)


def test_a_page_that_does_not_mark_its_content_goes_to_trafilatura(tmp_path: Path) -> None:
    filler = " ".join(["The harbour opens at dawn and the ferries leave every hour for the islands."] * 4)
    page = f"""<html><head><title>Harbour news</title></head><body>
    <div class="menu"><ul><li><a href="/">Home</a></li><li><a href="/a">Archive</a></li>
    <li><a href="/c">Contact us</a></li></ul></div>
    <div class="post"><h2>Ferries</h2><p>{filler}</p><p>{filler}</p></div>
    <div class="bottom">Copyright 2024 Harbour news, all rights reserved.</div></body></html>"""
    (tmp_path / "news.html").write_text(page, encoding="utf-8")
    document = load_document(tmp_path / "news.html", tmp_path)
    assert "ferries leave every hour" in document.text
    assert "Contact us" not in document.text and "Archive" not in document.text


def test_a_page_whose_navigation_trafilatura_kept_is_read_without_its_furniture() -> None:
    """MkDocs's 404 page marks no content (no <main>, no generator): trafilatura's text of it was
    its menu, line by line ("Home / Getting Started / User Guide / ..."). Most links of the
    page's navbar being lines of that text, the page is read as its body without furniture."""
    page = REPO / "eval/corpora/mkdocs-html/404.html"
    document = load_document(page, page.parent)
    assert document.text == "# 404\n\n**Page not found**\n"
    headings = [document.text[s.start : s.end] for s in document.segments or [] if s.kind is SegmentKind.HEADING]
    assert headings == ["404"]


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


def test_unknown_format_is_refused_by_the_reader(tmp_path: Path) -> None:
    (tmp_path / "x.odt").write_bytes(b"PK")

    with pytest.raises(CorpusError, match="unsupported file type"):
        read_file(tmp_path / "x.odt")


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


def test_a_file_is_parsed_again_only_when_its_bytes_or_path_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.readers as readers

    parsed_paths: list[str] = []
    real = readers.READERS[".md"]

    def counting(raw: bytes, path: Path) -> readers.Parsed:
        parsed_paths.append(path.name)
        return real(raw, path)

    monkeypatch.setitem(readers.READERS, ".md", counting)
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    first.write_text("# Title\n\nOne paragraph.\n", encoding="utf-8")
    second.write_text("# Title\n\nOne paragraph.\n", encoding="utf-8")
    once = read_file(first)
    again = read_file(first)
    assert again == once and again.segments is not once.segments  # equal, in containers of its own
    read_file(second)  # same bytes, another path: its own parse
    first.write_text("# Title\n\nAnother paragraph.\n", encoding="utf-8")
    assert "Another" in read_file(first).text
    assert parsed_paths == ["a.md", "b.md", "a.md"]


def test_a_myst_directive_is_its_body_without_the_fence_lines() -> None:
    text = (
        "Intro.\n\n```{note}\nUse quotes in the shell.\nReally.\n```\n\n```{versionadded} 8.0\n```\n\n"
        "````{tab} Linux\n```console\n$ ls\n```\n````\n\n```{warning}\nAn unclosed one.\n"
    )
    segments, _, _ = markdown_segments(text)
    assert [(s.kind, text[s.start : s.end]) for s in segments] == [
        (SegmentKind.PARAGRAPH, "Intro."),
        (SegmentKind.PARAGRAPH, "Use quotes in the shell.\nReally."),
        (SegmentKind.PARAGRAPH, "```console\n$ ls\n```"),
        (SegmentKind.PARAGRAPH, "An unclosed one."),
    ]


@pytest.mark.parametrize(
    ("content", "target"),
    [
        ("0; url=../new/page.html", "../new/page.html"),
        ("0;URL='new.html'", "new.html"),
        ("0; http://example.org/new", "http://example.org/new"),
        ("0, url=a.html", "a.html"),
        ("0; url=a\nb.html", "a"),  # the one-line message names no more than the first word
        ("5; url=later.html", None),  # a page shown for a while first is a page
        ("0", None),
        ("", None),
    ],
)
def test_the_target_of_a_refresh_at_once(content: str, target: str | None) -> None:
    import lxml.html

    from ingest.readers.html import _redirect_target

    page = f'<html><head><meta http-equiv="Refresh" content="{content}"></head><body>x</body></html>'
    assert _redirect_target(lxml.html.document_fromstring(page)) == target
