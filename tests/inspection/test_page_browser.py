"""The inspect page in a real headless browser: loads cleanly, recolours, shows predictions.

Needs Debian's chromium and Playwright's Python package (`make install-extras`); without
them the tests skip and say so. Playwright drives the system chromium, never its own download.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from charlm.inspection.page import render_page
from tests.helpers.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS
from tests.helpers.page_docs import synthetic_doc

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: run `make install-extras`"
)
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path: Path):
    path = tmp_path / "page.html"
    path.write_text(render_page(synthetic_doc()), encoding="utf-8")
    pg = browser.new_page(viewport={"width": 1100, "height": 700})
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("file:", "data:", "blob:"))
            else problems.append(f"network request to {r.url}")
        ),
    )
    pg.goto(path.as_uri())
    pg.wait_for_function("document.body.dataset.shown !== undefined")
    pg.problems = problems
    yield pg
    pg.close()


def backgrounds(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#text .t", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )


def test_page_loads_without_console_errors_or_network(page) -> None:
    assert page.problems == []
    assert page.title() == "synthetic <doc>"
    # The strongest |r| with quotes comes first and is shown on load.
    assert page.evaluate("document.body.dataset.shown") == "L0:h:2"
    text = page.inner_text("#text")
    assert "</script>" in text and "\u21b5" in text and "\u00b7" in text  # escaped, visible
    # Every newline token still breaks the line.
    assert page.locator("#text br").count() == synthetic_doc()["tokens"].count("\n")


def test_picking_a_unit_recolours_the_text(page) -> None:
    before = backgrounds(page)
    assert len(set(before)) > 3  # a real colour ramp, not one flat colour
    page.select_option(
        "#units", label=page.locator("#units option", has_text="L0:i:1").inner_text()
    )
    page.wait_for_function("document.body.dataset.shown === 'L0:i:1'")
    after = backgrounds(page)
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after, strict=True)) > len(after) // 2
    page.check('input[value="surprisal"]')
    page.wait_for_function("document.body.dataset.shown === 'surprisal'")
    assert backgrounds(page) != after
    assert page.problems == []


def test_hovering_a_character_shows_its_predictions(page) -> None:
    doc = synthetic_doc()
    i = doc["tokens"].index("t")
    page.hover(f"#text .t >> nth={i}")
    tip = page.locator("#tip")
    assert tip.is_visible()
    shown = tip.inner_text()
    assert f"p = {doc['prob'][i]:.4f}" in shown
    for tok, p in doc["top"][i]:
        shown_tok = {" ": "\u00b7", "\n": "\u21b5", "\t": "\u2192"}.get(tok, tok)
        assert f"{shown_tok}\t{p:.4f}" in shown  # one table row per prediction
    assert "top 5" in shown and "L0:h:2 = " in shown
    page.mouse.move(1090, 5)  # off the text: the tooltip goes away
    assert not tip.is_visible()


def test_word_tokens_render_whole_with_visible_whitespace(browser, tmp_path: Path) -> None:
    text = ["The", " cat", " sat", "\n", "on", " it", "."]
    doc = synthetic_doc("x" * len(text), feature=None)
    doc["tokens"] = text
    path = tmp_path / "words.html"
    path.write_text(render_page(doc), encoding="utf-8")
    pg = browser.new_page()
    pg.goto(path.as_uri())
    pg.wait_for_function("document.body.dataset.shown !== undefined")
    assert pg.locator("#text .t").all_inner_texts() == [
        "The",
        "\u00b7cat",
        "\u00b7sat",
        "\u21b5",
        "on",
        "\u00b7it",
        ".",
    ]
    assert pg.locator("#text br").count() == 1
    pg.close()
