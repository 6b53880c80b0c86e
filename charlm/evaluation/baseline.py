"""The n-gram baseline of a run: fitted on the run's own training split, cached beside it.

``charlm evaluate RUN FILE --baseline ngram:N`` scores FILE under both the run's RNN and a
Kneser-Ney model of order N over the same tokens; ``ngram:best`` picks N by validation
bits per character. A fit is cached in RUN/ngram/ as .npz (arrays and a JSON string, no
pickle), keyed by the corpus hash, the split, the tokenizer and the order.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from charlm.config.schema import RunConfig
from charlm.data.corpus import Prepared, prepare, read_corpus
from charlm.data.tokenizers import Tokenizer
from charlm.errors import ConfigError, InputError
from charlm.evaluation.ngram import NgramModel, count_ngrams
from charlm.evaluation.scoring import TextScore, text_to_score
from charlm.rundir.atomic import write_atomic
from charlm.rundir.recovery import remove_orphans

MAX_ORDER = 20  # the highest order ngram:N accepts, and what ngram:best searches up to
CACHE_DIR = "ngram"
FORMAT = 1  # bump when the cached arrays change meaning


@dataclass(frozen=True)
class BaselineSpec:
    """``ngram:N`` (order N) or ``ngram:best`` (order None: searched on validation)."""

    order: int | None

    @classmethod
    def parse(cls, text: str) -> BaselineSpec:
        kind, _, arg = text.partition(":")
        # No 'ngram:x:'-like text in the messages: Rich would print it as an emoji.
        if kind != "ngram" or not arg:
            raise ConfigError(
                f"unknown --baseline {text!r}: use ngram:N (N = 1..{MAX_ORDER}) or ngram:best"
            )
        if arg == "best":
            return cls(None)
        if not arg.isdigit() or not 1 <= int(arg) <= MAX_ORDER:
            raise ConfigError(
                f"unknown n-gram order {arg!r} in --baseline: use 1..{MAX_ORDER} or best"
            )
        return cls(int(arg))


@dataclass
class Baseline:
    model: NgramModel
    cached: bool  # read from the run's cache rather than fitted now
    val_bpc: dict[int, float] = field(default_factory=dict)  # ngram:best: order -> val bpc
    warnings: list[str] = field(default_factory=list)

    @property
    def order(self) -> int:
        return self.model.order


@dataclass
class RunData:
    """What a baseline is fitted from: a run's config, tokenizer and the corpus it read."""

    run_dir: Path
    config: RunConfig
    tokenizer: Tokenizer
    corpus: str  # path of the training corpus
    corpus_sha256: str  # as recorded when the run started


def fit_baseline(run: RunData, spec: BaselineSpec) -> Baseline:
    """The cached model when there is one; otherwise fit (and search), cache and return it."""
    check_corpus(run)
    corpus = read_corpus(run.corpus, run.config.data.encoding)
    warnings = []
    if corpus.sha256 != run.corpus_sha256:
        warnings.append(
            f"{run.corpus} is not the text the run trained on (its SHA-256 differs: another file, "
            "or the same one changed): the n-gram fits it as it is"
        )
    key = _cache_key(run, corpus.sha256)
    searched = (_load_search(run, key) or {}) if spec.order is None else {}
    order = spec.order or (min(searched, key=searched.__getitem__) if searched else None)
    model = _load_model(run, key, order) if order else None
    if model is not None:
        return Baseline(model, True, searched, warnings)
    # A fit killed before is tidied now, not left to fill the disk: the cache is ours.
    warnings += [note for note in [remove_orphans(run.run_dir / CACHE_DIR)] if note]
    # The run's own tokenizer and val/test fractions give exactly the run's training split.
    prep = prepare(run.config, corpus, run.tokenizer)
    warnings += prep.warnings
    if len(prep.splits.train) < 2 or len(prep.splits.val) < 1:
        raise InputError(
            f"{run.corpus} gives {len(prep.splits.train)} training token(s): too few to fit "
            "an n-gram; give the run's own corpus with --corpus PATH"
        )
    if spec.order is None:
        searched, model = _search(prep, run.tokenizer.vocab_size)
        doc = {"format": FORMAT, "val_bpc": {str(k): v for k, v in searched.items()}}
        write_atomic(_cache_path(run, key, "best", ".json"), json.dumps(doc).encode())
    else:
        vocab = run.tokenizer.vocab_size
        counts = count_ngrams(prep.splits.train, vocab, spec.order, every_model=False)
        model = counts.model(spec.order)
    _save_model(run, key, model)
    return Baseline(model, False, searched, warnings)


def score_ngram(model: NgramModel, tokenizer: Tokenizer, text: str, name: str = "") -> TextScore:
    """``text`` scored as the RNN scores it: the same tokens, characters and normalisation."""
    score, ids = text_to_score(tokenizer, text, name)
    lp = model.log_probs(ids)
    score.nats, score.tokens = float(-lp.sum()), len(lp)
    return score


def check_corpus(run: RunData) -> None:
    """Fail before any work when the run's corpus cannot be read again."""
    if run.corpus in ("", "-"):
        raise InputError(
            "this run read its corpus from stdin: give the same text with --corpus PATH "
            "to fit the n-gram baseline"
        )
    if not Path(run.corpus).is_file():
        raise InputError(
            f"the run's corpus {run.corpus} is not there: give it with --corpus PATH "
            "to fit the n-gram baseline"
        )


def _search(prep: Prepared, vocab: int) -> tuple[dict[int, float], NgramModel]:
    """Validation bits per character of orders 1..MAX_ORDER from one count of the train
    split, and the best of those models."""
    counts = count_ngrams(prep.splits.train, vocab, MAX_ORDER)
    searched = {}
    for n in range(1, counts.max_order + 1):
        nats = -float(counts.model(n).log_probs(prep.splits.val).sum())
        searched[n] = nats / (max(prep.val_chars, 1) * math.log(2))
    best = min(searched, key=searched.__getitem__)
    return searched, counts.model(best)


def _load_search(run: RunData, key: str) -> dict[int, float] | None:
    path = _cache_path(run, key, "best", ".json")
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            return None
        return {int(k): float(v) for k, v in doc["val_bpc"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # absent or unreadable: search again and overwrite it


def _save_model(run: RunData, key: str, model: NgramModel) -> None:
    save_model(_cache_path(run, key, str(model.order), ".npz"), model)


def _load_model(run: RunData, key: str, order: int) -> NgramModel | None:
    return load_model(_cache_path(run, key, str(order), ".npz"), order)


def save_model(path: Path, model: NgramModel) -> None:
    """The model's arrays and a JSON header as one .npz, written atomically."""
    meta = {"format": FORMAT, "vocab": model.vocab, "order": model.order}
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **model.to_arrays())
    # The buffer's own memory, not a copy: at order 20 on 4 MB of text it is some 550 MB.
    write_atomic(path, buf.getbuffer())


def load_model(path: Path, order: int) -> NgramModel | None:
    """The model saved at ``path``, or None when it is absent, damaged or of another order."""
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            if meta.get("format") != FORMAT or meta.get("order") != order:
                return None
            arrays = {k: f[k] for k in f.files if k != "meta"}
        return NgramModel.from_arrays(int(meta["vocab"]), order, arrays)
    except (OSError, ValueError, KeyError):
        return None  # absent or damaged: the caller fits again and overwrites it


def _cache_path(run: RunData, key: str, what: str, suffix: str) -> Path:
    return run.run_dir / CACHE_DIR / f"{key}-{what}{suffix}"


def _cache_key(run: RunData, digest: str) -> str:
    """Everything that changes the training split's tokens: corpus, split, tokenizer."""
    dc = run.config.data
    parts: dict[str, Any] = {
        "corpus": digest,
        "val_frac": dc.val_frac,
        "test_frac": dc.test_frac,
        "tokenizer": run.tokenizer.to_dict(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
