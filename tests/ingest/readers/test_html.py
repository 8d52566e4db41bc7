"""The HTML reader: a page's main content as its text, generated manuals whole, encodings, redirects."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.documents import load_document
from ingest.errors import CorpusError
from ingest.readers import SegmentKind
from ingest.structure import parse_blocks

REPO = Path(__file__).resolve().parents[3]


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


# The DocBook page with an option list (a variablelist) in place of its note.
OPTIONS_PAGE = DOCBOOK_PAGE.replace(
    DOCBOOK_PAGE[DOCBOOK_PAGE.index('<div class="note">') : DOCBOOK_PAGE.index("</table></div>\n</div></div>") + 14],
    """<div class="variablelist"><dl class="variablelist">
<dt><span class="term">-k</span></dt><dt><span class="term">--keep-index</span></dt>
<dd><p>This option is only valid for <code class="literal">push</code> commands.</p>
<p>All changes already added to the index are left intact.</p>
<pre class="screen">$ git stash push -k</pre></dd>
<dt><span class="term">-q</span></dt><dt><span class="term">--quiet</span></dt>
<dd><p>Quiet, suppress feedback messages.</p></dd></dl></div>""",
)


def test_an_option_list_keeps_each_option_with_what_it_does(tmp_path: Path) -> None:
    """A manual's list of options (<dl>): an entry's spellings on its term's line, the term and
    the first paragraph of its definition one block, so that the sentence saying what an
    option does names it; the definition's later paragraphs stay prose, its examples code."""
    (tmp_path / "ch01.html").write_text(OPTIONS_PAGE, encoding="utf-8")
    document = load_document(tmp_path / "ch01.html", tmp_path)
    blocks = parse_blocks(document.text, document.segments)
    entry = next(b for b in blocks if "--keep-index" in b.text)
    assert entry.form == SegmentKind.LIST_ITEM
    assert entry.section == "Chapter 1. Tutorials › 1.1. Console basics › 1.1.1. The shell prompt"
    assert entry.text == "-k, --keep-index\n:   This option is only valid for `push` commands."
    later = next(b for b in blocks if "left intact" in b.text)
    assert later.form == SegmentKind.PARAGRAPH
    assert [b.text.strip("`\n ") for b in blocks if b.form == SegmentKind.CODE] == ["foo login:", "$ git stash push -k"]
    assert any(b.text == "-q, --quiet\n:   Quiet, suppress feedback messages." for b in blocks)
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
