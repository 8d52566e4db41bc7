"""The web page in a real browser: Debian's chromium driven by playwright, against the real server."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.index_store import load_index
from service.app import create_app
from service.retriever import Retriever
from service.settings import Settings
from tests.conftest import REPO, FakeEmbedder, Server, serve_in_thread
from tests.test_deploy_files import make_recipe

pytestmark = [pytest.mark.integration, pytest.mark.server]

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags chromium tries to reach the internet at every start.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make test` does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield instance
        instance.close()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    folder = os.environ.get("CITEQA_SCREENSHOT_DIR")
    return Path(folder) / name if folder else tmp_path / name


def test_ask_shows_cited_passages_with_highlight(browser: Any, server: Server, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    # A question whose answer the highlight model is sure of (0.91 against a threshold of 0.71).
    page.fill("#question", "Which group claimed responsibility for the Crocus City Hall attack?")
    page.press("#question", "Enter")
    page.wait_for_selector(".passage mark", timeout=30_000)
    first = page.locator(".passage").first
    assert "ISIS-K" in first.locator("mark").inner_text()
    assert "characters" in first.locator(".where").inner_text()
    assert page.locator(".passage").count() == 5
    shot = screenshot_path(tmp_path, "screenshot.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=False)
    assert shot.read_bytes()[:4] == b"\x89PNG"

    # The source link opens the document scrolled to the passage, the span highlighted.
    first.locator(".source-link").click()
    page.wait_for_selector("#cited mark.answer", timeout=30_000)
    assert "ISIS-K" in page.locator("#cited mark.answer").inner_text()
    href = page.url
    start = int(href.split("start=")[1].split("&")[0])
    end = int(href.split("end=")[1].split("&")[0])
    document_text = page.evaluate("() => document.getElementById('document').textContent")
    assert page.locator("#cited").inner_text() == document_text[start:end]
    in_view = (
        "() => { const r = document.getElementById('cited').getBoundingClientRect();"
        " return r.top < innerHeight && r.bottom > 0; }"
    )
    assert page.evaluate(in_view)
    assert errors == []


def test_off_topic_question_shows_no_answer_state(browser: Any, server: Server) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#question", "How do I bake sourdough bread?")
    page.keyboard.press("Enter")
    page.wait_for_selector(".no-answer", timeout=30_000)
    assert "No answer in the corpus" in page.locator(".no-answer").inner_text()


def test_markup_in_text_is_shown_not_run(browser: Any, server: Server) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#question", "<img src=x onerror=\"document.title='pwned'\"> Taliban")
    page.keyboard.press("Enter")
    page.wait_for_selector(".passage", timeout=30_000)
    assert page.title() != "pwned" and page.locator("img").count() == 0


def test_page_is_usable_on_a_phone(browser: Any, server: Server) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(server.url + "/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375
    page.keyboard.type("Who is David Sharp?")  # the box has focus on load: keyboard only
    page.keyboard.press("Enter")
    page.wait_for_selector(".passage", timeout=30_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375


@pytest.fixture(scope="module")
def mixed_url(mixed_index: Path) -> Iterator[str]:
    """The three-format corpus (article, FHS PDF, Markdown note), served on 127.0.0.1 in process."""

    def loader(settings: Settings) -> Retriever:
        return Retriever(load_index(settings.index_dir), FakeEmbedder())

    yield from serve_in_thread(create_app(Settings(index_dir=mixed_index), loader=loader))


def ask_and_wait(page: Any, every_citation: str) -> list[str]:
    """Submit the question; the citation lines once every one of them contains the text."""
    page.press("#question", "Enter")
    page.wait_for_function(
        "(text) => { const lines = [...document.querySelectorAll('.passage .where')];"
        " return lines.length > 0 && lines.every((line) => line.textContent.includes(text)); }",
        arg=every_citation,
        timeout=30_000,
    )
    lines: list[str] = page.locator(".passage .where").all_inner_texts()
    return lines


def test_document_filter_lists_documents_and_restricts_results(browser: Any, mixed_url: str) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(mixed_url + "/")
    page.wait_for_function("() => document.querySelectorAll('#doc-filter option').length === 4", timeout=30_000)
    labels = page.locator("#doc-filter option").all_inner_texts()
    assert labels == [
        "All documents",
        "fhs-3.0",
        "Harbour records",
        "Why ISIS-K attacked Moscow's Crocus City Hall: experts explain",
    ]
    assert page.locator("#doc-filter").input_value() == ""

    page.fill("#question", "Where are manual pages stored?")
    unfiltered = ask_and_wait(page, "characters")
    assert len(unfiltered) == 5 and not any(line.startswith("Harbour records") for line in unfiltered)

    # The note's one passage is nowhere near the top for this question, yet the filter finds it.
    page.select_option("#doc-filter", "harbour")
    assert len(ask_and_wait(page, "Harbour records")) == 1

    # A PDF passage names its page, and so does the source view of it.
    page.select_option("#doc-filter", "fhs-3.0")
    lines = ask_and_wait(page, "· page")
    assert len(lines) == 5 and all(line.startswith("fhs-3.0") for line in lines)
    cited_page = lines[0].split("· page ")[1].split(" ")[0]
    page.locator(".passage").first.locator(".source-link").click()
    page.wait_for_selector("#cited mark.answer", timeout=30_000)
    assert f"page {cited_page} · characters" in page.locator("#status").inner_text()
    assert errors == []


def test_pdf_passages_and_source_fit_a_phone(browser: Any, mixed_url: str) -> None:
    # The PDF's text holds long unbroken paths ("<mandir>/<locale>/man<section>/<arch>").
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(mixed_url + "/")
    page.wait_for_function("() => document.querySelectorAll('#doc-filter option').length === 4", timeout=30_000)
    page.select_option("#doc-filter", "fhs-3.0")
    page.fill("#question", "Where are manual pages stored?")
    ask_and_wait(page, "· page")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    page.locator(".passage").first.locator(".source-link").click()
    page.wait_for_selector("#cited", timeout=30_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375


def test_chromium_and_playwright_are_the_ones_ci_installs() -> None:
    # CI runs `make test`, and `make test` installs the chromium launched here (or stops saying
    # what to install): nothing else installs it, so a path or package name cannot drift apart.
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    prerequisites = re.search(r"^test:(.*)$", makefile, re.M)
    assert prerequisites and "chromium" in prerequisites.group(1).split()
    assert re.search(rf"^CHROMIUM := {re.escape(CHROMIUM)}$", makefile, re.M)
    install = " ".join(make_recipe("chromium"))
    assert "apt-get install" in install and re.search(r"--no-install-recommends chromium\b", install)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M) and "apt-get" not in ci
    assert any(dependency.startswith("playwright") for dependency in dev_dependencies())
    assert shutil.which("chromium") == CHROMIUM


def dev_dependencies() -> list[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"]["dev"])
