"""Word level side by side: charlm against PyTorch's word_language_model, same text, same time.

Both train on the same WikiText-style corpus (train.txt, valid.txt, test.txt) at the same
moment, one thread each, for the same wall time, each at its defaults; both are then scored
on test.txt. The comparison runs only where word_language_model's code is present: pass its
directory (holding main.py, data.py, model.py from pytorch/examples) with --wlm or
$CHARLM_WLM_DIR. Protocol and results: docs/records/word-level.md.

    python -m bench --only words                 # $CHARLM_WLM_DIR, 15 minutes
    python -m bench.words --wlm DIR --minutes 5  # any budget, corpus or seed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.wikistyle import write_corpus

SHAKESPEARE = (
    Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare" / "input.txt"
)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_WLM_TEST = re.compile(r"End of training \| test loss\s+([\d.]+) \| test ppl\s+([\d.]+)")
_WLM_EPOCH = re.compile(r"end of epoch\s+(\d+)")


def reference_dir(given: str | None) -> Path | None:
    """word_language_model's directory, from --wlm or $CHARLM_WLM_DIR, if its code is there."""
    path = given or os.environ.get("CHARLM_WLM_DIR")
    if not path:
        return None
    d = Path(path)
    return d if all((d / f).is_file() for f in ("main.py", "data.py", "model.py")) else None


def corpus_dir(given: str | None, work: Path) -> Path:
    """A directory with train.txt, valid.txt and test.txt: given, or made from tiny-shakespeare."""
    if given:
        return Path(given)
    return write_corpus(SHAKESPEARE, work / "corpus")["train"].parent


def start_charlm(corpus: Path, minutes: float, work: Path, seed: int) -> subprocess.Popen[str]:
    """charlm at its word defaults on train.txt + valid.txt; valid.txt is its validation split.

    Epochs unbounded, as for word_language_model: the wall time stops both (on a small corpus
    the default 20 epochs would otherwise end charlm's run early)."""
    train, valid = (corpus / "train.txt").read_text(), (corpus / "valid.txt").read_text()
    joined = work / "train_valid.txt"
    joined.write_text(train + valid, encoding="utf-8")
    cmd = [sys.executable, "-m", "charlm", "train", str(joined), "--tokenizer", "word",
           "--word-split", "whitespace", "--val-frac", repr(len(valid) / len(train + valid)),
           "--max-time", f"{minutes * 60:.0f}s", "--epochs", "100000", "--threads", "1",
           "--seed", str(seed),
           "--sample-length", "0", "--out", str(work / "charlm"), "--force"]  # fmt: skip
    log = (work / "charlm.log").open("w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)


def start_wlm(wlm: Path, corpus: Path, work: Path, seed: int) -> subprocess.Popen[str]:
    """word_language_model at its defaults; epochs unbounded, as the wall time stops it."""
    cmd = [sys.executable, str(wlm / "main.py"), "--data", str(corpus), "--epochs", "100000",
           "--seed", str(seed), "--save", str(work / "wlm.pt")]  # fmt: skip
    log = (work / "wlm.log").open("w")
    env = os.environ | ONE_THREAD | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd, cwd=wlm, stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
        preexec_fn=_interruptible,
    )  # fmt: skip


def _interruptible() -> None:
    """Started from a background job, a child inherits an ignored SIGINT and Python then never
    raises KeyboardInterrupt: restore the default, so Ctrl-C at the time limit reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_after(proc: subprocess.Popen[str], seconds: float, grace: float = 900.0) -> None:
    """Ctrl-C at the time limit: word_language_model then tests its best-validation model
    (given ``grace`` seconds for that, then killed)."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def charlm_result(work: Path, corpus: Path) -> dict[str, Any]:
    # 10 stripes, each carrying its state through the file: word_language_model's test batch.
    cmd = [sys.executable, "-m", "charlm", "evaluate", str(work / "charlm"),
           str(corpus / "test.txt"), "--batch-size", "10", "--json", "--threads", "1",
           "--quiet"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    total = json.loads(proc.stdout)["total"]
    rows = [json.loads(x) for x in (work / "charlm" / "metrics.jsonl").read_text().splitlines()]
    return {
        "test_bits_per_char": round(total["bits_per_char"], 4),
        "test_ppl_per_word": round(total["perplexity"], 2),
        "steps": rows[-1]["step"],
        "tokens_seen": rows[-1]["tokens_seen"],
        "scored_tokens": total["scored_tokens"],
        "scored_chars": total["scored_chars"],
    }


def wlm_result(work: Path, scored_tokens: int, scored_chars: int) -> dict[str, Any]:
    """Its test perplexity, and bits per character from it: its mean loss per word (with
    <eos>) times the words charlm scored in test.txt, over the characters they spell."""
    log = (work / "wlm.log").read_text()
    m = _WLM_TEST.search(log)
    if m is None:
        return {"error": "no test result (did it finish an epoch?): " + log.strip()[-300:]}
    ppl = float(m.group(2))
    nats = math.log(ppl) * scored_tokens
    return {
        "test_bits_per_char": round(nats / (scored_chars * math.log(2)), 4),
        "test_ppl_per_word": ppl,
        "epochs_finished": len(_WLM_EPOCH.findall(log)),
    }


def compare(wlm: Path, corpus: Path, minutes: float, seed: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        ours, theirs = start_charlm(corpus, minutes, work, seed), start_wlm(wlm, corpus, work, seed)
        stop_after(theirs, minutes * 60)
        ours.wait()
        wall = time.monotonic() - t0
        charlm = charlm_result(work, corpus)
        peer = wlm_result(work, charlm.get("scored_tokens", 0), charlm.get("scored_chars", 1))
    return {
        "corpus": str(corpus),
        "minutes": minutes,
        "wall_seconds": round(wall, 1),
        "load_after": round(os.getloadavg()[0], 2),
        "charlm": charlm,
        "word_language_model": peer,
    }


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    if smoke:
        return smoke_run()
    wlm = reference_dir(None)
    if wlm is None:
        why = "set CHARLM_WLM_DIR to word_language_model's directory (from pytorch/examples)"
        return {"skipped": why}
    if not SHAKESPEARE.exists() and not os.environ.get("CHARLM_WORDS_CORPUS"):
        return {"skipped": f"{SHAKESPEARE} is absent and $CHARLM_WORDS_CORPUS is not set"}
    minutes = float(os.environ.get("CHARLM_WORDS_MINUTES", 3 if quick else 15))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_dir(os.environ.get("CHARLM_WORDS_CORPUS"), Path(tmp))
        return compare(wlm, corpus, minutes)


# A stand-in for word_language_model's code: its last lines, as main.py prints them.
STAND_IN = {
    "main.py": "print('| end of epoch   1 | time: 1.00s | valid loss  5.00 | valid ppl   148.41')\n"
    "print('| End of training | test loss  4.61 | test ppl   100.00')\n",
    "data.py": "",
    "model.py": "",
}
SMOKE_CHARS, SMOKE_MINUTES = 50_000, 1 / 60


def smoke_run() -> dict[str, Any]:
    """The comparison end to end for one second on tiny-shakespeare's first 50,000 characters,
    against a stand-in for word_language_model that prints a made-up result: the plumbing,
    not the figures, so it runs wherever the corpus is."""
    if not SHAKESPEARE.exists():
        return {"skipped": f"{SHAKESPEARE} is absent: the smoke run reads its start"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source, wlm = work / "source.txt", work / "wlm"
        source.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:SMOKE_CHARS], encoding="utf-8")
        wlm.mkdir()
        for name, code in STAND_IN.items():
            (wlm / name).write_text(code, encoding="utf-8")
        corpus = write_corpus(source, work / "corpus")["train"].parent
        return compare(wlm, corpus, SMOKE_MINUTES) | {"peer": "a stand-in (smoke run)"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.words", description=__doc__.splitlines()[0])
    p.add_argument("--wlm", help="word_language_model's directory [$CHARLM_WLM_DIR]")
    p.add_argument("--corpus", help="directory of train/valid/test.txt [from tiny-shakespeare]")
    p.add_argument("--minutes", type=float, default=15.0, help="wall time for each [15]")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    wlm = reference_dir(args.wlm)
    if wlm is None:
        print("bench.words: error: give --wlm DIR holding word_language_model's main.py, "
              "data.py and model.py (from pytorch/examples)", file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_dir(args.corpus, Path(tmp))
        result = compare(wlm, corpus, args.minutes, args.seed)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
