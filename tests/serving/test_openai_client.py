"""`charlm serve` called as its users call it: the official openai package, and curl -N."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from charlm.generation.generate import GenerateConfig, generate_text
from charlm.generation.load import load_model
from tests.helpers.serving import Server

openai = pytest.importorskip("openai", reason="the test extra brings openai: make install")
MODEL = "verse"  # the run directory's name


@pytest.fixture(scope="module")
def client(server: Server):
    return openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=60)


def test_models_are_listed_by_name(client) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "charlm"


def test_a_completion_is_what_charlm_sample_gives_for_the_seed(client, served_run: Path) -> None:
    out = client.completions.create(model=MODEL, prompt="First", max_tokens=40, seed=7)
    lm = load_model(served_run)
    ids = lm.tokenizer.encode("First")
    expected = generate_text(lm.model, lm.tokenizer, ids, GenerateConfig(40, seed=7))[0]
    assert out.choices[0].text == expected
    assert out.choices[0].finish_reason == "length"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (5, 40)
    again = client.completions.create(model=MODEL, prompt="First", max_tokens=40, seed=7)
    assert again.choices[0].text == expected  # same seed, same text


def test_streamed_chunks_add_up_to_the_same_text(client) -> None:
    whole = client.completions.create(model=MODEL, prompt="Speak", max_tokens=60, seed=3)
    chunks = list(
        client.completions.create(model=MODEL, prompt="Speak", max_tokens=60, seed=3, stream=True)
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_n_choices_are_numbered_and_drawn_apart(client) -> None:
    out = client.completions.create(
        model=MODEL, prompt=["All", "Speak"], n=3, max_tokens=30, seed=1
    )
    assert [c.index for c in out.choices] == list(range(6))
    assert len({c.text for c in out.choices[:3]}) == 3
    assert out.usage.completion_tokens == 6 * 30


def test_stop_ends_a_choice_before_the_stop_string(client) -> None:
    free = client.completions.create(model=MODEL, prompt="All", max_tokens=80, seed=5)
    text = free.choices[0].text
    stop = text[20:22]  # a string the text holds, first met at or before 20
    out = client.completions.create(model=MODEL, prompt="All", max_tokens=80, seed=5, stop=[stop])
    assert out.choices[0].text == text[: text.index(stop)]
    assert out.choices[0].finish_reason == "stop"


def test_logprobs_list_the_tokens_and_their_alternatives(client) -> None:
    out = client.completions.create(
        model=MODEL, prompt="First", max_tokens=12, seed=2, logprobs=3, echo=True
    )
    c = out.choices[0]
    lp = c.logprobs
    assert "".join(lp.tokens) == c.text and c.text.startswith("First")
    assert lp.token_logprobs[0] is None  # nothing predicted the prompt's first character
    assert lp.text_offset == list(range(len(c.text)))
    rows = zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:], strict=True)
    for token, value, top in rows:
        assert len(top) == 3 and value <= 0
        assert sum(math.exp(v) for v in top.values()) <= 1 + 1e-9
        assert value <= max(top.values()) + 1e-9
        if token in top:
            assert top[token] == pytest.approx(value)


def test_errors_come_as_the_client_s_own_classes(client, server: Server) -> None:
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model=MODEL, prompt="x", temperature=-1)
    with pytest.raises(openai.BadRequestError, match="max-tokens"):
        client.completions.create(model=MODEL, prompt="x", max_tokens=10**9)
    with pytest.raises(openai.NotFoundError, match="nosuch"):
        client.completions.create(model="nosuch", prompt="x")
    # Every stream held by one request: the next one is told to come back.
    held = client.completions.create(
        model=MODEL, prompt="All", n=32, max_tokens=4096, stream=True, seed=1
    )
    try:
        next(iter(held))
        with pytest.raises(openai.RateLimitError) as caught:
            client.completions.create(model=MODEL, prompt="All", max_tokens=4)
        assert caught.value.response.headers["retry-after"] == "1"
    finally:
        held.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_server_sent_events(server: Server) -> None:
    body = json.dumps({"model": MODEL, "prompt": "All", "max_tokens": 30, "stream": True})
    out = subprocess.run(
        ["curl", "-sN", f"{server.api}/completions", "-H", "Content-Type: application/json",
         "-d", body],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    events = [e for e in out.stdout.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert sum(len(c["choices"][0]["text"]) for c in chunks) == 30
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
