"""``POST /v1/score``: a text's bits per character and perplexity, as `charlm evaluate
--batch-size 1` reports them, and each token's surprisal, as `charlm inspect surprisal`.

The state is carried through the whole text from zero; the first token is context only
(its bits are null). Run on the engine's thread, between two steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from charlm.evaluation.scoring import text_to_score
from charlm.generation.stepping import run_prime
from charlm.serving.catalog import ServedModel


@torch.inference_mode()
def score(served: ServedModel, text: str) -> dict[str, Any]:
    model, tokenizer = served.lm.model, served.lm.tokenizer
    result, ids = text_to_score(tokenizer, text, "text")
    bits = np.full(len(ids), np.nan)

    def collect(start: int, log_probs: torch.Tensor) -> None:
        # Row t of the chunk is the distribution of token start + t + 1.
        targets = torch.as_tensor(ids[start + 1 : start + 1 + len(log_probs)], dtype=torch.long)
        picked = log_probs[: len(targets)].gather(1, targets[:, None])[:, 0]
        bits[start + 1 : start + 1 + len(targets)] = -picked.double().numpy() / np.log(2)

    run_prime(model, ids, on_chunk=collect)
    result.nats, result.tokens = float(np.nansum(bits) * np.log(2)), len(ids) - 1
    doc = result.to_dict()
    del doc["name"]
    pieces = [tokenizer.decode([int(i)]) for i in ids]
    doc["surprisal"] = [
        {"token": p, "bits": None if np.isnan(b) else float(b)}
        for p, b in zip(pieces, bits.tolist(), strict=True)
    ]
    return {"object": "score", "model": served.name, **doc}
