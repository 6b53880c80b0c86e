"""Prime and sample a model exported by `charlm export`, with numpy and onnxruntime alone.

    charlm export checkpoints/demo -o model.onnx
    python examples/onnx_sample.py model.onnx --prime "ROMEO:" --length 200 --temperature 0.8
    python examples/onnx_sample.py model.onnx --prime "ROMEO:" --length 200 --greedy

The graph is one step: ``ids`` (B,) int64 and the state in; ``scores`` (B, V), the next-token
log-probabilities, and the new state (``<name>_out``) out. The file's metadata says the rest:
``charlm.vocab`` (each id's text), ``charlm.states`` (the state's names and shapes, batch in
dimension 1), ``charlm.start`` (what an unprimed sample starts from). This example reads
character models (a word or sentencepiece model needs its tokenizer to read a prime).
It prints the prime, then the continuation, as `charlm prime` does; --greedy gives the same
text as `charlm prime MODEL TEXT --greedy`.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def load(path: str) -> tuple[ort.InferenceSession, dict]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one stream is a chain of tiny steps
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    return session, {k.removeprefix("charlm."): json.loads(v) for k, v in meta.items()}


def zero_state(meta: dict) -> dict[str, np.ndarray]:
    return {s["name"]: np.zeros(s["shape"], dtype=np.float32) for s in meta["states"]}


def step(session: ort.InferenceSession, state: dict, token: int) -> tuple[np.ndarray, dict]:
    """Feed one token; the next-token log-probabilities (V,) and the new state."""
    outputs = session.run(None, {"ids": np.array([token], dtype=np.int64), **state})
    return outputs[0][0], {name: out for name, out in zip(state, outputs[1:], strict=True)}


def encode(text: str, vocab: list[str]) -> list[int]:
    index = {t: i for i, t in enumerate(vocab)}
    missing = sorted({c for c in text if c not in index})
    if missing:
        sys.exit(f"onnx_sample: the prime has characters the model never saw: {missing}")
    return [index[c] for c in text]


def choose(scores: np.ndarray, greedy: bool, temperature: float, rng: np.random.Generator) -> int:
    if greedy:
        return int(np.argmax(scores))
    z = scores.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="the .onnx file `charlm export` wrote")
    p.add_argument("--prime", default="", help="the text to continue")
    p.add_argument("--length", type=int, default=200, help="characters to generate")
    p.add_argument("--greedy", action="store_true", help="always the most likely character")
    p.add_argument("--temperature", type=float, default=1.0, help="above 0; lower is safer")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    if args.temperature <= 0:
        p.error("--temperature must be above 0")
    session, meta = load(args.model)
    if meta["kind"] != "char":
        sys.exit(f"onnx_sample: this example reads character models, not {meta['kind']} ones")
    vocab = meta["vocab"]
    state = zero_state(meta)
    for token in encode(args.prime, vocab) or meta["start"]:
        scores, state = step(session, state, token)
    rng = np.random.default_rng(args.seed)
    out = [args.prime]
    for t in range(args.length):
        token = choose(scores, args.greedy, args.temperature, rng)
        out.append(vocab[token])
        if t + 1 < args.length:
            scores, state = step(session, state, token)
    sys.stdout.write("".join(out))
    if sys.stdout.isatty():
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
