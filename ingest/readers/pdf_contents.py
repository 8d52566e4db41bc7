"""A PDF's table of contents and the headings it names: contents lines, the headings' numbering
order, chapter openers, headings set on several lines."""

from __future__ import annotations

import bisect
import re

from ingest.readers.pdf_pages import TOC_LINE, TRAILING_NUMBER, _is_numbered_heading

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
