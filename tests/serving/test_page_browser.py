"""The writing page in headless Chromium against a running `charlm serve`: type, see the text
coloured by surprisal, change the temperature, see the continuation stream in.

Needs Debian's chromium and Playwright's Python package (`make install-extras`); without
them the test skips and says so. Playwright drives the system chromium, never its own download.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS
from tests.helpers.serving import Server

PROMPT = "First Citizen:\nSpeak, speak.\n\nAll:\n"
LENGTH = 3000  # long enough to arrive in several chunks

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: run `make install-extras`"
)
pytestmark = BROWSER_MARKS


def test_the_page_scores_and_continues_what_is_typed(server: Server, tmp_path: Path) -> None:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        problems: list[str] = []
        sent: list[dict] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        def request(r) -> None:
            if not r.url.startswith(server.url):
                problems.append(f"a request off the server: {r.url}")
            elif r.url.endswith("/v1/completions"):
                sent.append(json.loads(r.post_data))

        page.on("request", request)
        page.goto(server.url + "/")
        page.wait_for_function("document.body.dataset.models === '1'")
        assert page.input_value("#model") == "verse"

        page.fill("#prompt", PROMPT)
        page.wait_for_function(f"document.body.dataset.scored === '{len(PROMPT)}'")
        colours = page.eval_on_selector_all(
            "#scored .t", "els => els.map(e => getComputedStyle(e).backgroundColor)"
        )
        assert len(colours) == len(PROMPT) and len(set(colours[1:])) > 3  # a ramp, not one hue
        assert "bits/char" in page.inner_text("#bpc")

        page.fill("#temperature", "0.3")
        assert page.inner_text("#temperature-value") == "0.30"
        page.fill("#length", str(LENGTH))
        page.evaluate(  # every length the continuation shows on its way
            """() => { window.seen = [];
              new MutationObserver(() => window.seen.push(
                document.getElementById('continuation').textContent.length)
              ).observe(document.getElementById('continuation'), {childList: true}); }"""
        )
        page.click("#go")
        page.wait_for_function("document.body.dataset.state === 'done'")
        assert len(page.inner_text("#continuation")) == LENGTH
        seen = page.evaluate("window.seen")
        assert len({n for n in seen if 0 < n < LENGTH}) > 1  # it streamed in, piece by piece
        assert sent[-1]["temperature"] == 0.3 and sent[-1]["stream"] is True
        assert sent[-1]["prompt"] == PROMPT and sent[-1]["model"] == "verse"
        page.screenshot(path=str(tmp_path / "page.png"))

        page.click("#keep")  # the continuation joins the text, which is scored again
        page.wait_for_function(f"document.body.dataset.scored === '{len(PROMPT) + LENGTH}'")
        assert page.input_value("#prompt").startswith(PROMPT)
        assert problems == []
        browser.close()
