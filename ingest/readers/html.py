"""HTML: the page's main content as Markdown (trafilatura, or markdownify where it loses the
structure of a generated manual), then read as Markdown."""

from __future__ import annotations

import codecs
import logging
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from ingest.errors import CorpusError
from ingest.readers.markdown import markdown_segments
from ingest.readers.parsed import Parsed, decode_utf8, document_text

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


def _converter_class() -> Any:
    from markdownify import MarkdownConverter

    class Converter(MarkdownConverter):
        def convert_dt(self, el: Any, text: str, parent_tags: set[str]) -> str:
            """An entry's terms (an option's spellings: -k, --keep-index) on the one line that
            a definition list's term is, not paragraphs apart from their definition."""
            term = " ".join((text or "").split())
            if "_inline" in parent_tags or not term:
                return str(super().convert_dt(el, text, parent_tags))  # type: ignore[misc]  # not in its stubs
            before, after = el.find_previous_sibling(), el.find_next_sibling()
            lead = ", " if before is not None and before.name == "dt" else "\n\n"
            return lead + term + ("" if after is not None and after.name == "dt" else "\n")

    return Converter


def _structured_markdown(root: Any) -> str:
    """The content element (furniture already out) as Markdown by markdownify: every heading,
    code block (<pre>), table and definition list of the page kept as Markdown structure (a
    one-cell table unwrapped)."""
    import lxml.html

    _unwrap_boxes(root)
    converter = _converter_class()(
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
