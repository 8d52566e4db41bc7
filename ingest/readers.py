"""One reader per format: a file in, the document's text and its typed segments out.

Each reader decides what the document's text is (the source itself for .txt and .md, the
extracted main content for .html, the pages' text for .pdf) and reports segments as offsets
into that text, tracked while parsing. Chunking, embedding and citations never ask which
format they are looking at.
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import itertools
import logging
import re
import threading
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ingest.errors import CorpusError


class SegmentKind(StrEnum):
    TEXT = "text"  # plain text: the layout rules decide what it is (heading, attribution, body)
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    CODE = "code"
    TABLE = "table"
    CHROME = "chrome"  # running headers, page numbers: kept in the text, never indexed


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    kind: SegmentKind
    level: int = 0  # heading level, 1 for a document title
    name: str | None = None  # a heading's plain text (markup removed)


@dataclass(frozen=True)
class Parsed:
    text: str
    fmt: str
    segments: list[Segment] | None  # None: plain text, split and classified by the layout rules
    title: str | None = None
    pages: tuple[int, ...] = ()  # offset where each page starts (PDF)
    metadata: dict[str, Any] = field(default_factory=dict)
    # Offsets of hyphens the typesetter added to break a word at a line's end (PDF): the text
    # keeps them as printed; what is embedded and searched reads the word whole.
    soft_hyphens: tuple[int, ...] = ()


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    return document_text(text, path)


def document_text(text: str, path: Path) -> str:
    """Decoded text as every reader stores it: no NUL bytes (a binary file), no byte order
    mark, and NFC, so that offsets mean the same thing to every reader of the stored text."""
    if "\x00" in text:
        raise CorpusError(f"{path}: binary content (NUL bytes), not a text document")
    return unicodedata.normalize("NFC", text.removeprefix("\ufeff"))


def read_text(raw: bytes, path: Path) -> Parsed:
    return Parsed(decode_utf8(raw, path), "text", None)


# --- Markdown ------------------------------------------------------------------------------

_BLOCK_KINDS = {
    "paragraph_open": SegmentKind.PARAGRAPH,
    "fence": SegmentKind.CODE,
    "code_block": SegmentKind.CODE,
    "table_open": SegmentKind.TABLE,
    "blockquote_open": SegmentKind.PARAGRAPH,
}


def _markdown_parser(front_matter: bool = True) -> Any:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.front_matter import front_matter_plugin

    parser = MarkdownIt("commonmark").enable("table")
    return parser.use(front_matter_plugin) if front_matter else parser


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer(r"\n", text))
    starts.append(len(text))
    return starts


def _plain_inline(token: Any) -> str:
    parts = [child.content for child in (token.children or []) if child.type in ("text", "code_inline")]
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _heading_span(text: str, start: int, end: int, markup: str) -> tuple[int, int]:
    """The heading's words within its source lines: without '#' markers or a setext underline."""
    if markup.startswith("#"):
        line = text[start:end]
        lead = re.match(r" {0,3}#{1,6}[ \t]*", line)
        body_start = start + (lead.end() if lead else 0)
        trail = re.search(r"(?:[ \t]+#+)?[ \t]*\n?$", text[body_start:end])
        body_end = body_start + (trail.start() if trail else end - body_start)
        return body_start, max(body_start, body_end)
    underline = text.rfind("\n", start, end - 1)  # the last source line is the ===/--- underline
    return start, underline if underline > start else end


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """text[start:end] without the whitespace at either end, as offsets."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def markdown_segments(
    text: str, parse_text: str | None = None, front_matter: bool = True
) -> tuple[list[Segment], str | None, dict[str, Any]]:
    """Block segments of a CommonMark/GFM text from markdown-it's source line maps. Front
    matter, HTML blocks (comments included) and link reference definitions produce no
    segment, so they are never indexed; the text itself stays the source, offsets exact.
    `parse_text`, where given, is what markdown-it reads instead: a copy of `text` of the same
    length with some markup neutralised, so the segments still slice `text`. Without
    `front_matter` (a page's Markdown, which has none), a text that opens with '---' (a rule,
    from an <hr>) is not read as front matter up to the next rule."""
    if parse_text is not None and len(parse_text) != len(text):
        raise ValueError("parse_text must be as long as text")
    tokens = _markdown_parser(front_matter).parse(text if parse_text is None else parse_text)
    lines = _line_starts(text)
    segments: list[Segment] = []
    front: dict[str, Any] = {}
    first_h1: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "front_matter":
            front = _front_matter(token.content)
        elif token.type == "list_item_open" and token.level == 1 and token.map:
            start, end = trim_span(text, lines[token.map[0]], lines[token.map[1]])
            if end > start:
                segments.append(Segment(start, end, SegmentKind.LIST_ITEM))
        elif token.map and token.level == 0:
            start, end = lines[token.map[0]], lines[token.map[1]]
            if token.type == "heading_open":
                name = _plain_inline(tokens[i + 1])
                start, end = trim_span(text, *_heading_span(text, start, end, token.markup))
                level = int(token.tag[1])
                if level == 1 and first_h1 is None:
                    first_h1 = name
                if end > start and name:
                    segments.append(Segment(start, end, SegmentKind.HEADING, level, name))
            elif token.type in _BLOCK_KINDS:
                kind = _BLOCK_KINDS[token.type]
                if token.type == "fence" and token.info.strip().startswith("{"):
                    kind = SegmentKind.PARAGRAPH  # a MyST directive ({note}, {tip}...): prose in a fence
                    start, end = _directive_body(text, lines, token.map, token.markup)
                start, end = trim_span(text, start, end)
                if end > start:
                    segments.append(Segment(start, end, kind))
        i += 1
    return segments, front.get("title") if isinstance(front.get("title"), str) else first_h1, front


def _directive_body(text: str, lines: list[int], line_map: list[int], markup: str) -> tuple[int, int]:
    """The lines inside a MyST directive's fence: without the ```{note} line that opens it and
    the fence that closes it, which are markup, not a sentence of the note."""
    first, after = line_map
    last = text[lines[after - 1] : lines[after]].strip()
    closed = after - 1 > first and last.startswith(markup) and set(last) <= set(markup[:1])
    return lines[first + 1], lines[after - 1] if closed else lines[after]


def _front_matter(content: str) -> dict[str, Any]:
    try:
        import yaml

        data = yaml.safe_load(content)
    except Exception:  # front matter that is not YAML is simply not metadata
        return {}
    return data if isinstance(data, dict) else {}


def read_markdown(raw: bytes, path: Path) -> Parsed:
    text = decode_utf8(raw, path)
    segments, title, front = markdown_segments(text)
    return Parsed(text, "markdown", segments, title, metadata=front)


# --- HTML ----------------------------------------------------------------------------------


# A page's own statement of its encoding, in its first bytes: <meta charset>, the http-equiv
# Content-Type <meta>, or the XML declaration of an XHTML page.
DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.I,
)
# Browsers read these labels as windows-1252 (the WHATWG Encoding Standard); Python's cp1252
# leaves five bytes undefined, which latin-1 then reads as the C1 controls browsers show.
WINDOWS_1252_LABELS = {
    "iso-8859-1",
    "iso8859-1",
    "latin1",
    "latin-1",
    "l1",
    "us-ascii",
    "ascii",
    "windows-1252",
    "cp1252",
}


def decode_html(raw: bytes, path: Path) -> str:
    """A page's text in the encoding it declares (DocBook's HTML is ISO-8859-1 unless told
    otherwise); UTF-8 when it declares none, as for every other text format."""
    declared = DECLARED_CHARSET.search(raw[:4096])
    label = (declared[1] or declared[2]).decode("ascii").lower() if declared else "utf-8"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        label = "utf-16"  # a byte order mark overrides any declaration
    elif raw.startswith(b"\xef\xbb\xbf") or label in ("utf-8", "utf8"):
        return decode_utf8(raw, path)
    if label in WINDOWS_1252_LABELS:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    else:
        try:
            text = raw.decode(codecs.lookup(label).name)
        except LookupError as exc:
            raise CorpusError(f"{path}: declares an unknown character encoding '{label}'") from exc
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path}: not valid {label} ({exc.reason} at byte {exc.start})") from exc
    return document_text(text, path)


XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")  # lxml refuses it in a decoded string (XHTML pages)


def _html_title(html: str, tree: Any | None) -> str | None:
    """The page's <title> (from its parsed `tree`), else the title trafilatura finds in its
    metadata."""
    import trafilatura

    element = tree.find(".//title") if tree is not None else None
    if element is not None and element.text_content().strip():
        return " ".join(element.text_content().split())
    metadata = trafilatura.extract_metadata(html)
    return metadata.title if metadata is not None and metadata.title else None


# Pages made by these tools are documentation: all content once navigation is out.
DOC_GENERATORS = re.compile(
    r"docbook|makeinfo|texi2any|texi2html|sphinx|doxygen|mkdocs|javadoc|asciidoc|gtk-doc|publican|pandoc", re.I
)
# What is never content, wherever it sits: scripts, navigation, page furniture, hidden parts.
_NOT_CONTENT = (
    ".//script | .//style | .//noscript | .//template | .//nav | .//header | .//footer | .//aside"
    " | .//form | .//button | .//*[@hidden] | .//*[@aria-hidden='true']"
    " | .//*[@role='navigation' or @role='banner' or @role='contentinfo' or @role='search' or @role='complementary']"
)
# Navigation and permalinks by the class names documentation generators give them.
_NOT_CONTENT_CLASSES = frozenset(
    {
        *("nav", "navbar", "navigation", "navheader", "navfooter", "related", "pager"),
        *("toc", "breadcrumb", "breadcrumbs", "sidebar", "sphinxsidebar", "headerlink", "copiable-link"),
        "list-of-tables",
    }
)


# What a Texinfo page (makeinfo, texi2any) carries besides its text: the node navigation over
# every node ("Next: ..., Previous: ..., Up: ... [Contents]", div.header or div.nav-panel), the
# table of contents, the node menus and mini-contents, and the index (its entries are links to
# the sections, its "Jump to:" rows letters); other generators use some of these class names for
# content (Doxygen's div.header holds the page title, its div.contents the whole page).
TEXINFO = re.compile(r"makeinfo|texi2any|texi2html", re.I)
_TEXINFO_FURNITURE = frozenset(
    {
        *("header", "nav-panel", "node", "menu", "mini-toc", "section-toc", "contents", "shortcontents"),
        *("contents-heading", "shortcontents-heading", "Contents_element", "Overview_element"),
    }
)


def _texinfo_furniture(classes: set[str]) -> bool:
    return bool(_TEXINFO_FURNITURE & classes) or any(c.startswith("index-") or "printindex" in c for c in classes)


def _generator(tree: Any) -> str:
    return " ".join(tree.xpath("//meta[translate(@name, 'GENERATOR', 'generator')='generator']/@content"))


def _content_root(tree: Any) -> Any | None:
    """The element holding a page's content when the page says which: its one <main> (or
    role="main"), else its one <article>; the <body> of a page a documentation generator made.
    None for any other page: finding its content is trafilatura's job."""
    for query in ("//main | //*[@role='main']", "//article"):
        found = tree.xpath(query)
        if len(found) == 1:
            return found[0]
        if found:
            return None
    body = tree.find("body")
    return body if body is not None and DOC_GENERATORS.search(_generator(tree)) else None


def _without_furniture(root: Any) -> Any:
    """The content element with navigation, scripts and page furniture taken out (in place)."""
    for element in root.xpath(_NOT_CONTENT):
        if element.getparent() is not None:
            element.drop_tree()
    texinfo = bool(TEXINFO.search(_generator(root)))
    for element in root.xpath(".//*[@class]"):
        classes = set(element.get("class", "").split())
        if (
            _NOT_CONTENT_CLASSES & classes or (texinfo and _texinfo_furniture(classes))
        ) and element.getparent() is not None:
            element.drop_tree()
    if texinfo:  # the index's "Jump to:" letters
        for element in root.xpath(".//table[.//a[contains(@class, 'summary-letter')]][not(.//table)]"):
            if element.getparent() is not None:
                element.drop_tree()
    return root


def _unwrap_boxes(root: Any) -> None:
    """A table of one cell and no caption is a box drawn around its content (Texinfo's
    cartouche around an example), not a table: its content takes its place, so that a <pre> in
    it stays a code block (a Markdown table cell holds one line: the code would be run
    together)."""
    for table in reversed(root.xpath(".//table")):  # innermost first: a box in a box is unwrapped twice
        cells = table.xpath(".//td | .//th")
        if len(cells) != 1 or table.getparent() is None or table.xpath(".//table | .//caption"):
            continue
        cell = cells[0]
        box = cell.makeelement("div", {})
        box.text = cell.text
        box.extend(list(cell))
        box.tail = table.tail
        table.getparent().replace(table, box)


def _structured_markdown(root: Any) -> str:
    """The content element (furniture already out) as Markdown by markdownify: every heading,
    code block (<pre>) and table of the page kept as Markdown structure (a one-cell table
    unwrapped)."""
    import lxml.html
    from markdownify import MarkdownConverter

    _unwrap_boxes(root)
    converter = MarkdownConverter(
        heading_style="ATX",
        bullets="-",
        strip=["a", "img"],
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
    )
    markdown = converter.convert(lxml.html.tostring(root, encoding="unicode"))
    return re.sub(r"\n{3,}", "\n\n", markdown).strip() + "\n"


def _trafilatura_markdown(html: str) -> str:
    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    extracted = trafilatura.extract(
        html,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_comments=False,
        favor_recall=True,
    )
    return extracted or ""


# trafilatura kept a page's navigation when this share of the links in its furniture (<nav>,
# a navbar, the header...) are lines of its text: then nothing on the page told it what the
# content is (MkDocs's 404 page became its menu, "Home / Getting Started / User Guide / ...").
NAVIGATION_KEPT = 0.6
NAVIGATION_LINKS = 3


def _kept_navigation(markdown: str, tree: Any) -> bool:
    """Whether trafilatura's text of a page that does not mark its content holds the page's
    navigation: most links of the page's furniture are lines of it."""
    furniture = tree.xpath(_NOT_CONTENT) + [
        e for e in tree.xpath(".//*[@class]") if _NOT_CONTENT_CLASSES & set(e.get("class", "").split())
    ]
    links = {" ".join(a.text_content().split()) for element in furniture for a in element.iter("a")} - {""}
    if len(links) < NAVIGATION_LINKS:
        return False
    lines = {" ".join(line.strip().lstrip("#*->|` ").split()) for line in markdown.splitlines()}
    return sum(link in lines for link in links) >= NAVIGATION_KEPT * len(links)


def _heading_key(title: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", title).split()).casefold()


def _keeps_structure(markdown: str, root: Any) -> bool:
    """Whether trafilatura's Markdown kept at least half of the content's headings (as Markdown
    headings with their words: a '## comment' line of code it left unfenced is none) and of its
    <pre> blocks (as fenced code)."""
    titles = Counter(
        _heading_key(h.text_content()) for h in root.xpath(".//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6")
    )
    written = Counter(_heading_key(line) for line in re.findall(r"^ {0,3}#{1,6}[ \t]+(.*)$", markdown, re.M))
    kept_headings = sum((titles & written).values())
    blocks = len(root.xpath(".//pre"))
    kept_blocks = len(re.findall(r"^ {0,3}(?:```|~~~)", markdown, re.M)) // 2
    return 2 * kept_headings >= titles.total() and 2 * kept_blocks >= blocks


# trafilatura writes inline code that the page broke over lines as a fence opened after the
# sentence's words ("Run ```\nmkdocs\n--version\n```\n to check"). The closing marker then
# starts a line, so CommonMark opens a fence there and every fence after it in the page swaps
# code and prose. A marker that follows words on its line cannot open a fence; one after a
# quote's markers alone does ('> ```' opens or closes a quoted fence, as markdownify writes a
# <pre> in a <blockquote>), and '->' before it is words.
_FENCE_AFTER_WORDS = re.compile(
    r"(?m)^(?!(?: {0,3}>)*[ \t]*```)[^\n]*?\S[ \t]*(```)[ \t]*\n(?:(?! {0,3}```).*\n){0,20}? {0,3}(```)"
)


def unfenced_inline_code(text: str) -> str:
    """A copy of `text` (same length) for parsing only: the markers of a fence opened after a
    sentence's words, and of the line that closes it, are plain characters, so the code stays
    in its sentence's paragraph and the page's later fences pair as written."""
    chars = list(text)
    for match in _FENCE_AFTER_WORDS.finditer(text):
        for group in (1, 2):
            chars[match.start(group) : match.end(group)] = "'" * (match.end(group) - match.start(group))
    return "".join(chars)


# A page that sends the browser elsewhere at once (<meta http-equiv="refresh" content="0;
# url=...">) and says no more than this many characters ("Redirecting...") has nothing to cite.
REDIRECT_TEXT = 200


def _redirect_target(tree: Any) -> str | None:
    for content in tree.xpath("//meta[translate(@http-equiv, 'REFSH', 'refsh')='refresh']/@content"):
        # "0; url=new.html", "0;URL='new.html'", "0; http://example.org/new" (the url= is optional)
        match = re.match(r"\s*0*(?:\.0*)?\s*[;,]\s*(?:url\s*=\s*)?['\"]?([^'\"\s]+)", content, re.I)
        if match:
            return match.group(1)
    return None


def read_html(raw: bytes, path: Path) -> Parsed:
    """The page's main content as Markdown: that text is the document's text, and its structure
    is read like any Markdown. trafilatura finds the content among the page's furniture. On a
    page that marks its content (<main>, role="main", one <article>) or that a documentation
    generator made (DocBook, Texinfo, Sphinx...), where trafilatura loses more than half of the
    headings or <pre> blocks (it drops headings nested in <div>s and writes <pre class=screen>
    as prose, which loses a manual's sections and examples), the content element is converted
    whole instead, navigation out, by markdownify."""
    import lxml.html

    html = decode_html(raw, path)
    markdown = _trafilatura_markdown(html)
    try:
        tree = lxml.html.document_fromstring(XML_DECLARATION.sub("", html, count=1))
    except Exception:  # lxml refuses documents it cannot parse at all: trafilatura's text stands
        tree = None
    title = _html_title(html, tree)
    if tree is not None and (target := _redirect_target(tree)) and len(markdown.strip()) < REDIRECT_TEXT:
        raise CorpusError(f"{path}: a redirect to {target}, with no content of its own")
    root = _content_root(tree) if tree is not None else None
    if root is not None and not _keeps_structure(markdown, _without_furniture(root)):
        markdown = _structured_markdown(root)
    elif root is None and tree is not None and _kept_navigation(markdown, tree):
        body = tree.find("body")
        if body is not None:
            markdown = _structured_markdown(_without_furniture(body))
    text = unicodedata.normalize("NFC", markdown)
    segments, first_heading, _ = markdown_segments(text, unfenced_inline_code(text), front_matter=False)
    return Parsed(text, "html", segments, title or first_heading)


# --- PDF -----------------------------------------------------------------------------------

NUMBERED_HEADING = re.compile(r"^(?:Chapter|Appendix|Part|Section)\s+[\dA-Z]+[.:]?\s+\S|^\d+(?:\.\d+)*\.?\s+[A-Z/]")
TOC_LINE = re.compile(r"(?:\.\s?){3,}\s*\d+$")
PAGE_NUMBER = re.compile(r"^(?:page\s+)?[\divxlc]+(?:\s*(?:/|of)\s*\d+)?$", re.I)


GLUED_WORDS = re.compile(r"[a-z]{30,}")  # words run together: a justified line whose spaces the PDF does not encode


def _is_numbered_heading(line: str) -> bool:
    """'3.4. /boot : Static files', 'Chapter 2. The Filesystem'; not a table-of-contents line,
    nor a line that ends a clause (a footnote, a list item) or runs its words together."""
    return (
        bool(NUMBERED_HEADING.match(line))
        and len(line) <= 100
        and line[-1] not in ".,;:"
        and not TOC_LINE.search(line)
        and not GLUED_WORDS.search(line)
    )


# PDFium is not thread-safe: one document at a time in a process.
_PDFIUM = threading.Lock()


def _pdf_page_text(page: Any) -> tuple[str, list[int]]:
    """A page's text as PDFium reads it (spaces where the layout puts them, which a justified
    LaTeX line often does not encode as characters), lines ending in '\\n', and where the
    typesetter's hyphens are. PDFium joins a word hyphenated at a line's end, with U+FFFE where
    the hyphen and line break were: they are restored, so the text has the page's lines as
    printed, and their places kept."""
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
    finally:
        textpage.close()
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", ""))
    parts = text.split("\ufffe")
    soft: list[int] = []
    position = 0
    for part in parts[:-1]:
        position += len(part)
        soft.append(position)
        position += 2
    return "-\n".join(parts), soft


def _pdf_pages(raw: bytes, path: Path) -> tuple[list[tuple[str, list[int]]], str | None]:
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(raw)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise CorpusError(f"{path}: encrypted PDF (it needs a password to open)") from exc
            raise CorpusError(f"{path}: unreadable PDF ({exc})") from exc
        try:
            pages = [_pdf_page_text(document[number]) for number in range(len(document))]
            title = document.get_metadata_dict().get("Title")
        except pdfium.PdfiumError as exc:
            raise CorpusError(f"{path}: unreadable PDF ({exc})") from exc
        finally:
            document.close()
    return pages, title.strip() if isinstance(title, str) and title.strip() else None


def _pdf_lines(page: str, offset: int) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for line in page.split("\n"):
        start, end = trim_span(page, position, position + len(line))
        if end > start:
            spans.append((offset + start, offset + end))
        position += len(line) + 1
    return spans


LEADING_NUMBER = re.compile(r"^(\d{1,4})\s+\S")
TRAILING_NUMBER = re.compile(r"\S\s+(\d{1,4})$")


# How many lines at the top and at the foot of a page may be its running head or foot.
EDGE_LINES = 2


def _edge_lines(lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The lines that may be a page's running head or foot: its first and last EDGE_LINES."""
    return lines if len(lines) <= 2 * EDGE_LINES else [*lines[:EDGE_LINES], *lines[-EDGE_LINES:]]


def _heads_with_page_numbers(text: str, page_lines: list[list[tuple[int, int]]]) -> set[tuple[int, int]]:
    """Head or foot lines that carry the page's printed number at one end ("Chapter 2: Library
    Functions 7", "34 Chapter 5. Managing Packages"): their words change with the chapter, but
    the number keeps step with the page. They are the edge lines whose number minus the page's
    index is the same on many pages."""
    by_offset: dict[int, list[tuple[int, int]]] = {}
    for index, lines in enumerate(page_lines):
        foot = set(lines[max(1, len(lines) - EDGE_LINES) :])
        for a, b in _edge_lines(lines):
            line = text[a:b]
            numbers = set()
            # "2 Library Functions" opening a page is a numbered heading, not a page number; a
            # page does not end with its own heading ("34 Chapter 5. Managing Packages" is a foot)
            if (leading := LEADING_NUMBER.search(line)) and ((a, b) in foot or not _is_numbered_heading(line)):
                numbers.add(int(leading[1]))
            if trailing := TRAILING_NUMBER.search(line):  # "1 Scope 3": the section's number, then the page's
                numbers.add(int(trailing[1]))
            for number in numbers:
                by_offset.setdefault(number - index, []).append((a, b))
    most = max(by_offset.values(), key=len, default=[])
    return set(most) if len(most) >= max(3, len(page_lines) // 5) else set()


NUMBERED_TITLE = re.compile(r"^\d+(?:\.\d+)*\.?\s+\S")
# A contents entry's numbered title, the space after the number included or not: a contents
# sets the numbers in a column that a long one fills ('11.10How can I ...').
LISTED_TITLE = re.compile(r"\d+(?:\.\d+)*\.?(?:\s+\S|[^\W\d])")


def _contents_title(line: str) -> str:
    """A contents line without its dot leaders and page number ('1.1 Getting the sources')."""
    return TOC_LINE.sub("", line).rstrip() if TOC_LINE.search(line) else re.sub(r"\s+\d{1,4}$", "", line)


def _title_key(title: str) -> str:
    """A heading's title as the contents and the body both write it, though they break its lines
    in different places: spaces collapsed, no hyphens ('pack-' / 'age?', 'Debian-' / 'based',
    'detected/-' / 'working' against one line), one space after the number ('11.10How' in a
    contents where the number fills its column) and no final dot (the contents' dot leaders
    take it: '1.8 R commands, case sensitivity, etc. . . . 5')."""
    key = re.sub(r"-\s?", "", " ".join(title.split()))
    return re.sub(r"^(\d+(?:\.\d+)*\.?)\s?", r"\1 ", key).rstrip(" .").casefold()


TOC_RUN = 3  # consecutive lines ending in page numbers that make a table of contents


def _contents_lines(
    text: str, page_lines: list[list[tuple[int, int]]], furniture: set[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Lines of a table of contents, with dot leaders ("1.1 Getting the sources . . . 1") or
    without ("5.2 Recording changes in the package 30"): runs of at least TOC_RUN consecutive
    entries, some of them numbered titles once their page number is off, that end in page
    numbers that never fall and stay within the document; the page `furniture` between them
    (running heads, page numbers; not a dot-leader line taken for a head with its page
    number) neither ends a run nor belongs to it. Read as headings, the
    last entry of the contents would head every section of the document; read as text, it is
    indexed. An entry set on two or three lines ('1.6 How does the Debian project fit in or
    compare with the Free' / "Software Foundation's GNU project? . . . 3") has its page number
    on its last line only: a line that opens with a section number and has no page number,
    followed within two lines by a dot-leader line, is its first line (a body line with a
    footnote mark ends in a number too, but not in dot leaders)."""
    found: set[tuple[int, int]] = set()
    run: list[tuple[int, int]] = []
    numbers: list[int] = []  # one page number an entry
    pending: list[tuple[int, int]] = []  # the first lines of an entry that runs onto the next

    def close() -> None:
        if len(numbers) >= TOC_RUN and any(_is_numbered_heading(_contents_title(text[a:b])) for a, b in run):
            found.update(run)
        run.clear()
        numbers.clear()
        pending.clear()

    for lines in page_lines:
        for a, b in lines:
            line = text[a:b]
            if (a, b) in furniture and not TOC_LINE.search(line):  # a page's head or number
                continue
            number = _contents_page(line)
            if number is None:
                if len(pending) < 2 and (pending or LISTED_TITLE.match(line)):
                    pending.append((a, b))
                else:
                    close()
                continue
            if pending and not TOC_LINE.search(line):  # only dot leaders end an entry's lines
                close()
            if number > len(page_lines) + 50 or (numbers and number < numbers[-1]):
                held = list(pending)
                close()
                if number > len(page_lines) + 50:
                    continue
                pending.extend(held)  # the entry that opens the next run (the numbers fell)
            run.extend(pending)
            pending.clear()
            run.append((a, b))
            numbers.append(number)
    close()
    return found


def _contents_page(line: str) -> int | None:
    """The page number that ends a contents line, if it ends in one."""
    match = TRAILING_NUMBER.search(line) or TOC_LINE.search(line)
    return int(re.sub(r"\D", "", match.group(0)[-4:]) or 0) if match else None


def _heading_number(line: str) -> tuple[int, ...] | None:
    """The place of a numbered heading in the document's numbering: "Chapter 3." (3,), "3.7.1
    /etc/opt" (3, 7, 1), "Appendix B" after every chapter; None for a Part, which restarts it."""
    if match := re.match(r"(?:Chapter|Section)\s+(\d+)", line):
        return (int(match[1]),)
    if match := re.match(r"Appendix\s+([A-Z])\b", line):
        return (10_000 + ord(match[1]),)
    if match := re.match(r"\d+(?:\.\d+)*", line):
        return tuple(int(n) for n in match[0].split("."))
    return None


def _increasing(numbers: list[tuple[int, ...]]) -> set[int]:
    """Positions of a longest strictly increasing run (not necessarily contiguous) of `numbers`."""
    tails: list[tuple[int, ...]] = []  # the least last number of an increasing run of each length
    tail_at: list[int] = []
    previous = [-1] * len(numbers)
    for position, number in enumerate(numbers):
        length = bisect.bisect_left(tails, number)
        if length == len(tails):
            tails.append(number)
            tail_at.append(position)
        else:
            tails[length] = number
            tail_at[length] = position
        previous[position] = tail_at[length - 1] if length else -1
    kept: set[int] = set()
    position = tail_at[-1] if tail_at else -1
    while position >= 0:
        kept.add(position)
        position = previous[position]
    return kept


def _true_headings(
    text: str, candidates: list[tuple[int, int]], numbers: dict[tuple[int, int], tuple[int, ...]] | None = None
) -> set[tuple[int, int]]:
    """The numbered-heading lines that are headings: a document's headings number upwards
    (2.3, 2.3.1, 2.4, 3.1), so the longest run of candidates whose numbers increase, between
    Part headings; a footnote ("3 ITS is shorthand for...") or a numbered list item ("2. Put
    the list address in the Maintainer field") breaks the order and is text. Where that run
    keeps fewer than half of a stretch's candidates, its numbering is not one sequence, and
    every candidate stays a heading. `numbers` gives the number of a candidate whose text does
    not start with it (a chapter opener spells it out)."""
    numbers = numbers or {}
    kept: set[tuple[int, int]] = set()
    stretch: list[tuple[tuple[int, int], tuple[int, ...]]] = []

    def close() -> None:
        run = _increasing([number for _, number in stretch])
        keep_all = 2 * len(run) < len(stretch)
        kept.update(line for i, (line, _) in enumerate(stretch) if keep_all or i in run)
        stretch.clear()

    for a, b in candidates:
        number = _heading_number(text[a:b]) if (a, b) not in numbers else numbers[(a, b)]
        if number is None:
            close()
            kept.add((a, b))
        else:
            stretch.append(((a, b), number))
    close()
    return kept


_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        [
            *("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"),
            *("TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN"),
            *("EIGHTEEN", "NINETEEN"),
        ]
    )
}
_TENS = {"TWENTY": 20, "THIRTY": 30, "FORTY": 40, "FIFTY": 50}


def _number_word(word: str) -> int | None:
    """'FIVE' 5, 'TWENTYONE' or 'TWENTY-ONE' 21, '7' 7: how a chapter opener spells its number."""
    word = word.strip().upper().replace("-", "").replace(" ", "")
    if word.isdigit():
        return int(word)
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    for tens, value in _TENS.items():
        if word.startswith(tens) and (word == tens or word[len(tens) :] in _NUMBER_WORDS):
            return value + _NUMBER_WORDS.get(word[len(tens) :], 0)
    return None


def _chapter_openers(
    text: str,
    page_lines: list[list[tuple[int, int]]],
    chrome: set[tuple[int, int]],
    titles: set[str],
    soft_hyphens: frozenset[int] = frozenset(),
) -> dict[tuple[int, int], tuple[int, str, int]]:
    """Chapter openers at the top of a page: as a Sphinx (LaTeX) manual sets them on three lines,
    'CHAPTER' / 'FIVE' / 'CONTROL FILES AND THEIR FIELDS', or as LaTeX's book and report classes
    (dblatex's DocBook too) do, 'Chapter 2' / 'Getting and installing Debian' / 'GNU/Linux', a
    title on one line or two that the contents list ('2 Getting and installing Debian GNU/Linux
    5'). Each opener's first line, mapped to where its title ends, its heading name ('Chapter 5.
    CONTROL FILES AND THEIR FIELDS') and its number."""
    openers: dict[tuple[int, int], tuple[int, str, int]] = {}
    for lines in page_lines:
        content = [line for line in lines if line not in chrome]
        for i, line in enumerate(content[:3]):
            words = text[slice(*line)].split()
            if not words or words[0].upper() not in ("CHAPTER", "APPENDIX") or len(words) > 2:
                continue
            word = words[0].capitalize()
            if len(words) == 1 and words[0].isupper() and i + 2 < len(content):  # Sphinx's three lines
                number = _number_word(text[slice(*content[i + 1])])
                title = text[slice(*content[i + 2])].strip()
                if number is None or not title or title.upper() != title or not re.search(r"[A-Z]", title):
                    continue
                openers[line] = (content[i + 2][1], f"{word} {number}. " + " ".join(title.split()), number)
                break
            number = _number_word(words[1]) if len(words) == 2 else None
            if number is None:
                continue
            for last in content[i + 1 : i + 3]:
                title = _name_of_lines(text, content[i + 1][0], last[1], soft_hyphens)
                if _title_key(f"{number} {title}") in titles:
                    openers[line] = (last[1], f"{word} {number}. {title}", number)
                    break
            break
    return openers


def _contents_titles(text: str, contents: set[tuple[int, int]]) -> set[str]:
    """The numbered titles a table of contents lists, as `_title_key`s; an entry set on more
    than one line is its lines up to the one with the page number."""
    titles = set()
    opening: list[str] = []  # the lines of an entry before the one with its page number
    for a, b in sorted(contents):
        if _contents_page(text[a:b]) is None:
            opening.append(text[a:b])
            continue
        title = _contents_title(" ".join([*opening, text[a:b]]))
        opening.clear()
        if LISTED_TITLE.match(title):
            titles.add(_title_key(title))
    return titles


def _listed_headings(
    text: str, page_lines: list[list[tuple[int, int]]], chrome: set[tuple[int, int]], titles: set[str]
) -> dict[tuple[int, int], tuple[int, int]]:
    """Lines that the table of contents lists as a heading though they do not look like one (a
    title that opens in lower case, '6.3.2 attach() and detach()', or ends with 'etc.'), and
    headings set on two or three lines ('2.7 Index vectors; ... subsets of a data' / 'set'):
    each first line, mapped to the heading's last line."""
    listed: dict[tuple[int, int], tuple[int, int]] = {}
    for lines in page_lines:
        for i, line in enumerate(lines):
            if line in chrome or not NUMBERED_TITLE.match(text[slice(*line)]):
                continue
            for last in lines[i : i + 3]:  # a title set on up to three lines
                if last != line and last in chrome:
                    break
                if _title_key(text[line[0] : last[1]]) in titles:
                    listed[line] = last
                    break
    return listed


def _name_of_lines(text: str, start: int, end: int, soft_hyphens: frozenset[int]) -> str:
    """Lines read as one name: a line break is a space, but none follows a word's hyphen
    ('Debian-' / 'based' is 'Debian-based'), and the typesetter's hyphen goes ('another pack-' /
    'age?' is 'another package?')."""
    pieces, at = [], start
    for broken in re.finditer(r"(?<=[^\W_]|/)-[ \t]*\n\s*", text[start:end]):
        hyphen = start + broken.start()
        pieces.append(text[at:hyphen] if hyphen in soft_hyphens else text[at : hyphen + 1])
        at = start + broken.end()
    pieces.append(text[at:end])
    return re.sub(r"\s+", " ", "".join(pieces))


def pdf_segments(text: str, pages: tuple[int, ...], soft_hyphens: frozenset[int] = frozenset()) -> list[Segment]:
    """Lines grouped into paragraphs: a paragraph ends at a line that ends a sentence and is
    clearly shorter than the page's full lines, or before a numbered heading. Lines that open
    or close many pages alike (running heads and feet), head or foot lines that carry the page
    number, and bare page numbers are chrome. A heading that ends in a hyphen goes on over the
    next line ('5.9 Moving, ..., and reintro-' / 'ducing packages'); its name reads the word
    whole where the hyphen is the typesetter's (`soft_hyphens`). A line that the table of
    contents lists as a numbered heading is one, on up to three lines, and so is a chapter
    opener ('CHAPTER' / 'FIVE' / its title, or 'Chapter 5' over a listed title). A chrome line
    ends the paragraph before it, so that segments come in the document's order and no
    paragraph holds a contents line or a page number."""
    bounds = [*pages, len(text)]
    page_lines = [_pdf_lines(text[bounds[p] : bounds[p + 1]], bounds[p]) for p in range(len(pages))]
    heads = Counter(text[a:b] for lines in page_lines for a, b in set(_edge_lines(lines)))
    running = {head for head, count in heads.items() if count >= max(3, len(pages) // 5)}
    numbered = _heads_with_page_numbers(text, page_lines)
    edges = {line for lines in page_lines for line in _edge_lines(lines)}
    furniture = {
        (a, b)
        for lines in page_lines
        for a, b in lines
        if (a, b) in edges and (text[a:b] in running or PAGE_NUMBER.match(text[a:b]) or (a, b) in numbered)
    }
    contents = _contents_lines(text, page_lines, furniture)
    chrome = furniture | contents
    titles = _contents_titles(text, contents)
    openers = _chapter_openers(text, page_lines, chrome, titles, soft_hyphens)
    listed = _listed_headings(text, page_lines, chrome, titles)
    headings = _true_headings(
        text,
        [
            line
            for lines in page_lines
            for line in lines
            if line in openers or line in listed or (line not in chrome and _is_numbered_heading(text[slice(*line)]))
        ],
        {line: (number,) for line, (_, _, number) in openers.items()},
    )
    segments: list[Segment] = []
    for lines in page_lines:
        full = max((b - a for a, b in lines), default=0)
        paragraph: tuple[int, int] | None = None
        opened_to = -1  # the end of a heading set on more than one line: its lines are the heading
        for number, (a, b) in enumerate(lines):
            line = text[a:b]
            if b <= opened_to:
                continue
            if (a, b) in chrome:  # it ends the paragraph it interrupts, which never spans it
                if paragraph:
                    segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                    paragraph = None
                segments.append(Segment(a, b, SegmentKind.CHROME))
                continue
            if (a, b) in openers:
                if paragraph:
                    segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                    paragraph = None
                opened_to, name, _ = openers[(a, b)]
                segments.append(Segment(a, opened_to, SegmentKind.HEADING, 1, name))
                continue
            if (a, b) in headings:
                if paragraph:
                    segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                    paragraph = None
                level = 1 if line.startswith(("Chapter", "Appendix", "Part")) else line.split()[0].count(".") + 1
                following = lines[number + 1] if number + 1 < len(lines) else None
                if listed.get((a, b), (a, b)) != (a, b):
                    opened_to = b = listed[(a, b)][1]
                elif line.endswith("-") and following and following not in chrome and following not in headings:
                    opened_to = b = following[1]
                segments.append(Segment(a, b, SegmentKind.HEADING, level, _name_of_lines(text, a, b, soft_hyphens)))
                continue
            paragraph = (paragraph[0], b) if paragraph else (a, b)
            if line[-1] in ".:!?" and b - a < 0.8 * full:
                segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                paragraph = None
        if paragraph:
            segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
    return segments


def _typeset_hyphens(text: str, candidates: list[int]) -> tuple[int, ...]:
    """Of the line-end hyphens PDFium takes for the typesetter's, those that are: PDFium marks
    every hyphen that ends a line, 'stable-' / 'backports' and 'Non-' / 'Maintainer' too. A
    hyphen belongs to the words when the document writes them hyphenated elsewhere more often
    than as one word, or, never written either way, when the next word is capitalised. (One
    pass over the text counts its words and hyphenated pairs.)"""
    if not candidates:
        return ()
    lowered = text.lower()
    words = Counter(re.findall(r"\w+", lowered))
    hyphenated: Counter[str] = Counter()
    for compound in re.findall(r"\w+(?:-\w+)+", lowered):
        parts = compound.split("-")
        hyphenated.update(f"{a}-{b}" for a, b in itertools.pairwise(parts))
    kept = []
    for hyphen in candidates:
        before = re.search(r"\w+$", text[max(0, hyphen - 60) : hyphen])
        after = re.match(r"\s*(\w+)", text[hyphen + 1 : hyphen + 60])
        if before and after:
            first, second = before.group(), after.group(1)
            joined, pair = words[(first + second).lower()], hyphenated[f"{first}-{second}".lower()]
            if pair > joined or (pair == joined == 0 and second[0].isupper()):
                continue
        kept.append(hyphen)
    return tuple(kept)


def read_pdf(raw: bytes, path: Path) -> Parsed:
    pages, title = _pdf_pages(raw, path)
    starts: list[int] = []
    parts: list[str] = []
    soft: list[int] = []
    position = 0
    for page, hyphens in pages:
        starts.append(position)
        parts.append(page)
        soft.extend(position + h for h in hyphens)
        position += len(page) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise CorpusError(f"{path}: no extractable text (a scanned or image-only PDF?)")
    typeset = _typeset_hyphens(text, soft)
    segments = pdf_segments(text, tuple(starts), frozenset(typeset))
    return Parsed(text, "pdf", segments, title, tuple(starts), soft_hyphens=typeset)


Reader = Callable[[bytes, Path], Parsed]
READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}


# Files parsed in this process, by path and sha256 of their bytes: `citeqa ingest` reads the
# corpus once to report a bad one before the model loads, then the pipeline reads it again
# (docker-doc: 2 s of markdown-it each time, a sixth of a re-ingest). A reader is a function
# of (bytes, path) alone, so the same bytes at the same path parse the same.
PARSED_CACHE_SIZE = 4096
_parsed: OrderedDict[tuple[str, bytes], Parsed] = OrderedDict()


def read_file(path: Path) -> Parsed:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"{path}: unsupported file type '{path.suffix}'")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from exc
    if not raw.strip():
        raise CorpusError(f"{path}: document is empty")
    key = (str(path), hashlib.sha256(raw).digest())
    parsed = _parsed.get(key)
    if parsed is None:
        parsed = reader(raw, path)
        if not parsed.text.strip():
            raise CorpusError(f"{path}: no text to index")
        _parsed[key] = parsed
        if len(_parsed) > PARSED_CACHE_SIZE:
            _parsed.popitem(last=False)
    else:
        _parsed.move_to_end(key)
    # Fresh containers for each caller: a Parsed is frozen, its list and dict are not.
    segments = None if parsed.segments is None else list(parsed.segments)
    return replace(parsed, segments=segments, metadata=dict(parsed.metadata))
