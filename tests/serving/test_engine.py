"""The engine: streams that join and leave one batched step give exactly what `charlm sample`
gives alone; a cancelled job frees its streams; a full engine says 429; closing ends streams."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from charlm.config.schema import ModelConfig
from charlm.data.tokenizers import CharTokenizer
from charlm.errors import RequestError
from charlm.generation.generate import GenerateConfig, generate_text
from charlm.generation.sampling import SamplingConfig
from charlm.models import registry
from charlm.models.lm import RNNLM
from charlm.serving.engine import Engine, Job
from charlm.serving.outbox import ABORT, Outbox
from charlm.serving.rows import RowBatch

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,\n"


def micro(kind: str) -> tuple[RNNLM, CharTokenizer]:
    tok = CharTokenizer(list(ALPHABET))
    torch.manual_seed(0)
    cfg = ModelConfig(model=kind, vocab_size=tok.vocab_size, embed_size=8, hidden_size=16)
    return RNNLM(cfg).eval(), tok


async def collect(job: Job) -> tuple[list[str], list[str | None]]:
    texts, reasons = [""] * job.n, [None] * job.n
    while True:
        update = await job.outbox.take()
        for k, piece in enumerate(update.pieces):
            texts[k] += piece.text
            reasons[k] = piece.finish_reason or reasons[k]
        if update.done:
            return texts, reasons


def job(tok: CharTokenizer, prompt: str, n: int, length: int, seed: int, **kw: object) -> Job:
    box = Outbox(n, asyncio.get_running_loop())
    return Job([int(i) for i in tok.encode(prompt)], n, length, SamplingConfig(**kw), seed, box)


@pytest.mark.parametrize("kind", registry.names())
def test_streams_joining_between_steps_give_sample_s_text(kind: str) -> None:
    model, tok = micro(kind)
    settings = [({}, 1), ({"top_p": 0.8}, 2), ({"top_k": 3, "temperature": 0.7}, 3), ({}, 2)]

    async def main() -> None:
        engine = Engine(model, tok, max_streams=16)
        engine.start()
        jobs = []
        for i, (kw, n) in enumerate(settings):
            jobs.append(job(tok, "the cat"[: i + 2], n, 30 + 7 * i, seed=i, **kw))
            engine.submit([jobs[-1]])
            await asyncio.sleep(0.002)  # the next one joins a few steps later
        for j in jobs:
            texts, reasons = await collect(j)
            cfg = GenerateConfig(j.max_tokens, j.n, seed=j.seed, sampling=j.sampling)
            assert texts == generate_text(model, tok, j.context, cfg)
            assert reasons == ["length"] * j.n
        engine.close()

    asyncio.run(main())


def test_rows_keep_their_own_state_when_others_leave() -> None:
    model, _ = micro("lstm")
    batch, alone = RowBatch(model), RowBatch(model)
    hidden = model.init_hidden(1, torch.device("cpu"))
    batch.add(hidden, 3)
    alone.add(hidden, 1)
    ids = np.array([1, 2, 3])
    batch.step(ids)
    alone.step(ids[2:])
    batch.keep(np.array([2]))  # rows 0 and 1 leave
    assert np.allclose(batch.step(np.array([4])), alone.step(np.array([4])), atol=1e-6)


def test_a_cancelled_job_frees_its_streams_and_a_full_engine_says_429() -> None:
    model, tok = micro("lstm")

    async def main() -> None:
        engine = Engine(model, tok, max_streams=4)
        engine.start()
        long = job(tok, "the", 4, 10**9, seed=0)
        engine.submit([long])
        with pytest.raises(RequestError) as caught:
            engine.submit([job(tok, "the", 1, 5, seed=0)])
        assert (caught.value.status, caught.value.retry_after) == (429, 1)
        await long.outbox.take()  # it runs
        long.cancelled = True
        for _ in range(10_000):
            if engine.open_streams == 0:
                break
            await asyncio.sleep(0.01)
        assert engine.open_streams == 0
        short = job(tok, "the", 4, 5, seed=0)
        engine.submit([short])
        assert (await collect(short))[1] == ["length"] * 4
        engine.close()

    asyncio.run(main())


def test_closing_ends_every_open_stream_with_abort() -> None:
    model, tok = micro("gru")

    async def main() -> None:
        engine = Engine(model, tok, max_streams=8)
        engine.start()
        jobs = [job(tok, "a", 2, 10**9, seed=s) for s in range(3)]
        engine.submit(jobs)
        await jobs[0].outbox.take()
        engine.close()
        for j in jobs:
            assert (await collect(j))[1] == [ABORT, ABORT]
        with pytest.raises(RequestError) as caught:
            engine.submit([job(tok, "a", 1, 5, seed=0)])
        assert caught.value.status == 503

    asyncio.run(main())
