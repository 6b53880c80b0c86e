"""Property-based and fuzz tests (Hypothesis): reading, tokenizing, batching, sampling, cleaning.

Each property holds for every input Hypothesis can build, not only the hand-picked ones in
the module tests; the example counts keep the whole file to a few seconds.
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from charlm.config.schema import DataConfig
from charlm.data.batching import StripeBatcher
from charlm.data.tokenizers import CharTokenizer, build_tokenizer, tokenizer_from_dict
from charlm.errors import InputError
from charlm.generation.sampling import SamplingConfig, choose, distribution
from charlm.text.clean import CleanOptions, clean_text
from charlm.text.reading import decode, normalize_newlines

FAST = settings(max_examples=80, deadline=None)


# ---- reading text -------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_fail_with_an_input_error(data: bytes) -> None:
    """Fuzz: whatever the file holds, reading it gives text or one InputError, nothing else."""
    try:
        text = decode(data, "utf-8", "f.txt")
    except InputError as e:
        assert str(e).startswith("f.txt") and "\n" not in str(e)
        return
    assert "\r" not in text and "\x00" not in text


@FAST
@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))))
def test_utf8_text_reads_back_as_itself_with_newlines_normalised(text: str) -> None:
    assume(not text.startswith("\ufeff"))  # a leading BOM is dropped on purpose
    assert decode(text.encode("utf-8"), "utf-8", "f") == normalize_newlines(text)


# ---- tokenizers ---------------------------------------------------------------------------
def _via_checkpoint(tok):  # type: ignore[no-untyped-def]
    """The tokenizer as a checkpoint stores it (JSON metadata) and loads it back."""
    return tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))


@FAST
@given(st.text(min_size=1), st.data())
def test_char_tokenizer_round_trips_what_it_was_trained_on(text: str, data: st.DataObject) -> None:
    tok = _via_checkpoint(CharTokenizer.train(text))
    part = data.draw(st.text(alphabet=sorted(set(text))))  # any text over its alphabet
    for t in (text, part):
        assert tok.unknown(t) == []
        assert tok.decode(tok.encode(t)) == t


_WORDISH = "abcXYZ\u00e9\u00df\u65e5 ',.!?:\n"


def _word_tokens_survive_decoding(text: str) -> None:
    """Decoding may respace words, but never changes which tokens the text holds."""
    tok = _via_checkpoint(build_tokenizer(DataConfig(tokenizer="word"), text))
    ids = list(tok.encode(text))
    assert list(tok.encode(tok.decode(ids))) == ids


@FAST
@given(st.text(alphabet=_WORDISH, min_size=1, max_size=60))
def test_word_tokenizer_tokens_survive_decoding_arbitrary_text(text: str) -> None:
    _word_tokens_survive_decoding(text)


@FAST
@given(st.text(alphabet=_WORDISH + "-", min_size=1, max_size=60))
def test_word_tokenizer_tokens_survive_decoding_with_hyphens(text: str) -> None:
    _word_tokens_survive_decoding(text)


# ---- the batcher --------------------------------------------------------------------------
@FAST
@given(
    n=st.integers(2, 400),
    batch=st.integers(1, 9),
    bptt=st.integers(1, 30),
    world=st.integers(1, 3),
    start=st.integers(0, 20),
)
def test_ranks_and_a_resume_cover_every_target_once(
    n: int, batch: int, bptt: int, world: int, start: int
) -> None:
    """W ranks together visit each target of the single-process layout exactly once, and
    resuming at window k visits exactly the windows from k on."""
    assume(n - 1 >= batch * world)
    tokens = np.arange(n, dtype=np.int64)  # a token's value is its position
    whole = StripeBatcher(tokens, batch * world, bptt)
    ranks = [StripeBatcher(tokens, batch, bptt, r, world) for r in range(world)]
    start = min(start, len(whole))
    expected = sorted(int(t) for _, _, y in whole.windows(start) for t in y.reshape(-1).tolist())
    seen = [int(t) for b in ranks for _, _, y in b.windows(start) for t in y.reshape(-1).tolist()]
    assert sorted(seen) == expected and len(set(seen)) == len(seen)
    if start == 0:
        assert expected == list(range(1, batch * world * whole.stripe_len + 1))


# ---- sampling -----------------------------------------------------------------------------
@st.composite
def _scores_and_config(draw: st.DrawFn) -> tuple[np.ndarray, SamplingConfig]:
    vocab, rows = draw(st.integers(1, 40)), draw(st.integers(1, 4))
    finite = st.floats(-50, 50, allow_nan=False)
    scores = np.array(draw(st.lists(finite, min_size=vocab * rows, max_size=vocab * rows)))
    scores = scores.reshape(rows, vocab)
    impossible = np.array(draw(st.lists(st.booleans(), min_size=scores.size, max_size=scores.size)))
    impossible = impossible.reshape(rows, vocab)
    impossible[:, 0] = False  # every row keeps at least one possible token
    scores[impossible] = -np.inf  # a log-probability of zero
    cfg = SamplingConfig(
        temperature=draw(st.floats(0.05, 20)),
        bias=draw(st.floats(0, 5)),
        top_k=draw(st.none() | st.integers(1, vocab + 3)),
        top_p=draw(st.none() | st.floats(1e-6, 1.0)),
        greedy=draw(st.booleans()),
    )
    return scores, cfg


@settings(max_examples=150, deadline=None)
@given(_scores_and_config(), st.integers(0, 2**32 - 1))
def test_sampling_stays_in_the_vocabulary_top_k_and_support(
    case: tuple[np.ndarray, SamplingConfig], seed: int
) -> None:
    scores, cfg = case
    rows, vocab = scores.shape
    ids = choose(scores, cfg, np.random.default_rng(seed))
    assert ids.shape == (rows,) and ids.dtype.kind == "i"
    assert ((ids >= 0) & (ids < vocab)).all()
    picked = scores[np.arange(rows), ids]
    assert np.isfinite(picked).all()  # never a token of probability zero
    if cfg.top_k is not None:  # no more than k - 1 tokens scored strictly higher
        assert ((scores > picked[:, None]).sum(-1) < cfg.top_k).all()
    if cfg.greedy:
        assert (picked == scores.max(-1)).all()
    elif cfg.top_p is not None:  # inside the nucleus
        assert (distribution(scores, cfg)[np.arange(rows), ids] > 0).all()


# ---- corpus preparation -------------------------------------------------------------------
_PLAYISH = st.text(
    alphabet="ABCDE abcde.,:;'!?*[]_-\n\t\u00e9\u2019\u201c\u2014\u00a0", max_size=200
) | st.text(max_size=60)


def _options(ascii: bool) -> st.SearchStrategy[CleanOptions]:
    return st.builds(
        CleanOptions,
        format=st.sampled_from(["auto", "play", "plain"]),
        lowercase=st.booleans(),
        ascii=st.just(ascii),
        keep_directions=st.booleans(),
    )


@settings(max_examples=150, deadline=None)
@given(_PLAYISH, _options(ascii=False))
def test_prepare_is_idempotent(text: str, options: CleanOptions) -> None:
    """`charlm prepare` on its own output changes nothing (charlm.text.clean.clean_text is the
    whole of prepare's per-text work). Forcing play format on a text with no speech is
    refused, saying what was expected."""
    try:
        once = clean_text(text, options)
    except InputError as e:
        assert options.format == "play" and "no speeches found" in str(e)
        return
    assert clean_text(once, options) == once


@settings(max_examples=150, deadline=None)
@given(_PLAYISH, _options(ascii=True))
def test_prepare_with_ascii_is_idempotent(text: str, options: CleanOptions) -> None:
    try:
        once = clean_text(text, options)
    except InputError as e:
        assert options.format == "play" and "no speeches found" in str(e)
        return
    assert clean_text(once, options) == once
