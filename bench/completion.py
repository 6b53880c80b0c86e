"""Word completion by beam search, and one-stream sampling through onnxruntime.

- completion: held-out words of tiny-shakespeare's validation split, each given the text before
  it (the 400 characters up to its preceding space): the share of words that `charlm complete`
  (beam 16, a word ending at a space or a line end) lists first, in its top 3, in its top 5;
  ranked by log p (charlm's default) and by log p per token (``--length-norm 1``); against the
  run's own n-gram baseline (`evaluate --baseline ngram:best`: Kneser-Ney, the order chosen on
  validation) completing by the same beam search over its distribution.
- onnx: characters per second sampling one stream at temperature 1, through the graph
  `charlm export` writes (onnxruntime, one thread, numpy's Gumbel draw) against charlm's own
  NumPy step (``charlm.generation.generate``, one thread); the same model.

The model: the run in $CHARLM_BENCH_COMPLETE_RUN, else one trained here (``--threads 1``, 10
minutes; 20 seconds with --quick). The smoke run uses random weights.
`python -m bench.completion [--quick]` prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.modes import mode
from charlm.config.schema import ModelConfig, RunConfig
from charlm.data.corpus import prepare, read_corpus
from charlm.data.tokenizers import CharTokenizer
from charlm.evaluation.baseline import BaselineSpec, RunData, fit_baseline
from charlm.evaluation.ngram import NgramModel, count_ngrams
from charlm.generation.beam import BeamConfig, ModelScorer, TextOf, beam_search
from charlm.generation.generate import GenerateConfig, generate
from charlm.generation.load import load_model
from charlm.generation.onnx_export import export_onnx
from charlm.generation.stepping import blas_threads
from charlm.models.lm import RNNLM

CORPUS = Path("/work/shared/corpora/tinyshakespeare/input.txt")
SIZES = {  # (training seconds, held-out words, sampled characters)
    "full": (600, 1000, 5000),
    "quick": (20, 150, 1000),
    "smoke": (0, 4, 50),
}
CONTEXT = 400  # characters before a word that the model reads
BEAM = BeamConfig(beam=16, results=5, length=20, stop=(" ", "\n"))
WORD = re.compile(r"(?<=[ \n])[A-Za-z][^\s]*")  # a word after a space or a line end


class NgramScorer:
    """The n-gram as a beam search's scorer: each row's last order-1 tokens are its state."""

    def __init__(self, model: NgramModel) -> None:
        self.model, self.rows = model, [()]

    def _log(self, ctx: tuple[int, ...]) -> np.ndarray:
        keep = self.model.order - 1
        return np.log(self.model.distribution(np.array(ctx[-keep:] if keep else ())))

    def start(self, context: Sequence[int]) -> np.ndarray:
        self.rows = [tuple(int(i) for i in context)]
        return self._log(self.rows[0])

    def advance(self, parents: np.ndarray, ids: np.ndarray) -> np.ndarray:
        self.rows = [(*self.rows[p], int(i)) for p, i in zip(parents, ids, strict=True)]
        return np.stack([self._log(r) for r in self.rows])


def held_out(text: str, count: int) -> list[tuple[str, str]]:
    """``count`` (context, word) pairs spread evenly over ``text``."""
    found = [m for m in WORD.finditer(text) if m.start() >= CONTEXT]
    picks = np.linspace(0, len(found) - 1, num=min(count, len(found))).astype(int)
    return [(text[found[i].start() - CONTEXT : found[i].start()], found[i].group()) for i in picks]


def shares(scorer_of: Any, tok: Any, pairs: list[tuple[str, str]], cfg: BeamConfig) -> dict:
    """The share of words found first, in the top 3, in the top 5."""
    ranks = []
    for context, word in pairs:
        ids = [int(i) for i in tok.encode(context)]
        found = [h.text for h in beam_search(scorer_of(), TextOf(tok, ids), ids, cfg)]
        ranks.append(found.index(word) + 1 if word in found else 99)
    r = np.array(ranks)
    return {f"top{k}": round(float(np.mean(r <= k)), 3) for k in (1, 3, 5)}


def onnx_rate(path: Path, start: int, length: int) -> float:
    """examples/onnx_sample.py's loop, timed: one step and one Gumbel draw per character."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    state = {s["name"]: np.zeros(s["shape"], np.float32) for s in json.loads(meta["charlm.states"])}
    names, rng, token = list(state), np.random.default_rng(0), start
    t0 = time.perf_counter()
    for _ in range(length):
        out = session.run(None, {"ids": np.array([token], np.int64), **state})
        state = dict(zip(names, out[1:], strict=True))
        token = int(np.argmax(out[0][0] + rng.gumbel(size=out[0].shape[1])))
    return length / (time.perf_counter() - t0)


def numpy_rate(model: RNNLM, tok: Any, length: int) -> float:
    cfg = GenerateConfig(length=length, seed=0)
    t0 = time.perf_counter()
    for _ in generate(model, tok, [0], cfg):
        pass
    return length / (time.perf_counter() - t0)


def _trained(seconds: int, work: Path) -> Path:
    given = os.environ.get("CHARLM_BENCH_COMPLETE_RUN")
    if given:
        return Path(given)
    out = str(work / "run")
    cmd = [sys.executable, "-m", "charlm", "train", str(CORPUS), "--hidden-size", "512",
           "--max-time", f"{seconds}s", "--threads", "1", "--out", out, "-q"]  # fmt: skip
    subprocess.run(cmd, check=True)
    return work / "run"


def _smoke_model() -> tuple[RNNLM, CharTokenizer, str, NgramModel]:
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 20
    tok = CharTokenizer.train(text)
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=tok.vocab_size, embed_size=8, hidden_size=16)).eval()
    return model, tok, text, count_ngrams(tok.encode(text), tok.vocab_size, 3).model(3)


def _real_model(seconds: int, work: Path) -> tuple[RNNLM, Any, str, NgramModel, int]:
    lm = load_model(_trained(seconds, work))
    corpus = lm.state.get("corpus") or str(CORPUS)
    run = RunData(
        lm.path.parent, lm.config, lm.tokenizer, corpus, lm.state.get("corpus_sha256", "")
    )
    ngram = fit_baseline(run, BaselineSpec(None)).model
    prep = prepare(lm.config, read_corpus(corpus, lm.config.data.encoding), lm.tokenizer)
    return (
        lm.model,
        lm.tokenizer,
        lm.tokenizer.decode(prep.splits.val),
        ngram,
        lm.state.get("step", 0),
    )


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    seconds, words, chars = SIZES[mode(quick, smoke)]
    if not smoke and not CORPUS.is_file():
        return {"skipped": f"{CORPUS} is not there"}
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp, blas_threads(1):
        work, steps = Path(tmp), 0
        if smoke:
            model, tok, text, ngram = _smoke_model()
        else:
            model, tok, text, ngram, steps = _real_model(seconds, work)
        pairs = held_out(text, words)
        result: dict[str, Any] = {
            "held_out_words": len(pairs),
            "model": f"{model.cfg.num_layers}x{model.cfg.hidden_size} {model.cfg.model}",
            "training_steps": steps,
            "ngram_order": ngram.order,
            "completion": _rows(model, tok, ngram, pairs),
        }
        path = work / "model.onnx"
        export_onnx(model, tok, RunConfig(model=model.cfg), path)
        start = int(tok.encode("\n")[0])
        result["onnx_chars_per_s"] = round(onnx_rate(path, start, chars))
        result["numpy_chars_per_s"] = round(numpy_rate(model, tok, chars))
    return result


def _rows(model: RNNLM, tok: Any, ngram: NgramModel, pairs: list) -> list[dict[str, Any]]:
    by_rnn, by_ngram = (lambda: ModelScorer(model)), (lambda: NgramScorer(ngram))
    per_token = BeamConfig(BEAM.beam, BEAM.results, BEAM.length, BEAM.stop, length_norm=1.0)
    return [
        {"predictor": "charlm complete (log p)"} | shares(by_rnn, tok, pairs, BEAM),
        {"predictor": "charlm complete (log p / tokens)"} | shares(by_rnn, tok, pairs, per_token),
        {"predictor": f"n-gram, order {ngram.order}"} | shares(by_ngram, tok, pairs, BEAM),
    ]


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
