"""The echo-state network (Jaeger 2001): a fixed random reservoir; only the read-out learns.

One reservoir layer is written out in ``EQUATIONS``. W has
``ceil(SPARSITY * H)`` non-zeros in every row (so no unit is cut off from the others), drawn
from a normal distribution, then scaled so that its spectral radius (largest |eigenvalue|) is
``--spectral-radius``: below 1 the reservoir forgets its start (the echo-state property) and
its states are a fading memory of the text.

The units are plain tanh, not leaky: the reservoir is then exactly PyTorch's fused ``nn.RNN``
with its weights frozen, so training, the NumPy fast path of sample and prime, and
``inspect gradients/units/surprisal`` all run it as they run the Elman network. A leak rate
would need a loop and a stepper of its own.

The read-out is trained by the usual loop (cross-entropy, AdamW, clipping, checkpoints, exact
resume, data-parallel ranks) rather than by ridge regression on collected states: the loop is
what every other model gets, it fits the read-out for the cross-entropy that the nats/char
figures measure (ridge fits squared error to one-hot targets), and without gradients through
the reservoir a step costs little more than a forward pass.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from charlm.config.schema import ModelConfig, TrainConfig
from charlm.errors import ConfigError
from charlm.models.cells.rnn import NUMPY_LAYERS
from charlm.models.cells.rnn import build as build_tanh_layers
from charlm.models.registry import CellSpec

EQUATIONS = r"""
One reservoir layer, with $x_t$ the token at step $t$; $E$ (V, D) the embedding, $W_{in}$
(H, D), $b$ (H) and the sparse $W$ (H, H) fixed and random, $W$ scaled to spectral radius
$\rho$ (`--spectral-radius`):

$$u_t = E[x_t] \qquad h_t = \tanh(W_{in} u_t + b + W h_{t-1})$$
$$p(x_{t+1} \mid x_{1..t}) = \mathrm{softmax}(W_{out} h_t + b_{out})$$

Only the read-out $W_{out}, b_{out}$ is trained. A stacked network feeds each reservoir's
states to the next as its $u_t$.
"""

SPARSITY = 0.1  # share of non-zeros in each row of W
INPUT_SCALE = 1.0  # std of W_in u_t for one unit, the embedding having unit variance
BIAS_SCALE = 0.2  # std of the fixed bias b


def sparse_matrix(size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) matrix with ``ceil(SPARSITY * size)`` normal non-zeros in every row."""
    per_row = max(1, math.ceil(SPARSITY * size))
    w = np.zeros((size, size))
    for row in range(size):
        cols = rng.choice(size, per_row, replace=False)
        w[row, cols] = rng.standard_normal(per_row)
    return w


def spectral_radius(w: np.ndarray) -> float:
    """The largest |eigenvalue| of a square matrix.

    LAPACK's dense eigenvalues: exact, and needing no start vector. ARPACK on the sparse
    matrix measured no faster at H = 1040 (1.3 s against 1.1 s) and less exact (10.339 for
    10.354 at its default tolerance): a random matrix's eigenvalues fill a disc, leaving the
    largest no gap to converge on. On one BLAS thread: on a busy 2-core host the default
    threads took 32 s for the same matrix.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return float(np.abs(np.linalg.eigvals(w)).max())


def reservoir(size: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A sparse random recurrent matrix scaled to spectral radius ``radius``."""
    w = sparse_matrix(size, rng)
    # A row of non-zeros each means every unit lies on a cycle: the radius is never 0.
    return w * (radius / spectral_radius(w))


def init_reservoir(embed: nn.Embedding, rnn: nn.RNN, radius: float) -> None:
    """Fill the embedding and the tanh RNN with the ESN's fixed weights (``freeze`` fixes them).

    Drawn from a NumPy generator seeded from torch's global stream, which the trainer seeds
    with the run's seed: the same seed gives the same reservoir.
    """
    seed = int(torch.randint(2**31 - 1, ()).item())
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(rng.standard_normal(embed.weight.shape)))
        for layer in range(rnn.num_layers):
            w_ih = getattr(rnn, f"weight_ih_l{layer}")
            fan_in = w_ih.shape[1]
            w_ih.copy_(torch.from_numpy(rng.normal(0, INPUT_SCALE / math.sqrt(fan_in), w_ih.shape)))
            w_hh = reservoir(rnn.hidden_size, radius, rng)
            getattr(rnn, f"weight_hh_l{layer}").copy_(torch.from_numpy(w_hh))
            getattr(rnn, f"bias_ih_l{layer}").copy_(
                torch.from_numpy(rng.normal(0, BIAS_SCALE, rnn.hidden_size))
            )
            getattr(rnn, f"bias_hh_l{layer}").zero_()


def freeze(embed: nn.Embedding, rnn: nn.RNN) -> None:
    """No gradient, so neither the optimizer nor weight decay ever touches them."""
    embed.requires_grad_(False)
    rnn.requires_grad_(False)


def init(embed: nn.Embedding, rnn: nn.Module, cfg: ModelConfig, loading: bool) -> None:
    """The reservoir drawn, then frozen. ``loading``: the weights are about to come from a
    checkpoint, so none is drawn (its eigendecomposition takes a second)."""
    if not loading:
        init_reservoir(embed, rnn, cfg.spectral_radius)
    freeze(embed, rnn)


def check(model: ModelConfig, train: TrainConfig | None) -> None:
    if model.tie_weights:
        raise ConfigError(
            "--tie-weights would train the echo-state network's fixed input weights: "
            "add --no-tie-weights, or choose another --model"
        )
    if train is not None and train.state_penalty:
        raise ConfigError(
            "--state-penalty acts through trained recurrent weights and --model esn trains "
            "none (only its read-out): drop --state-penalty, or choose another --model"
        )


SPEC = CellSpec(
    name="esn",
    title="echo-state network",
    help="echo-state: a fixed random reservoir, only the read-out trained",
    equations=EQUATIONS,
    build=build_tanh_layers,
    gates=("pre",),
    # torch fuses the reservoir, but trains only the read-out: bf16 would gain little
    fused=False,
    spectral=True,
    numpy_layers=NUMPY_LAYERS,
    flow_cell=nn.RNNCell,
    options={
        "spectral_radius": "{flag} sets the echo-state network's reservoir: add --model "
        "{takers}, or drop {flag}"
    },
    untie="keeps its input weights fixed",
    check=check,
    init=init,
)
