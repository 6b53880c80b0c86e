"""The training loop: truncated BPTT with carried hidden state, clipping, checkpoints.

The rate of each step comes from ``schedule.Schedule``, when to stop from
``stopping.StopRules``, what to do after non-finite steps from ``rollback.Rollback``.
The library never prints: ``Trainer.run`` reports through a callback that receives
``StepEvent``, ``EvalEvent``, ``InfoEvent`` and finally returns a ``FinishEvent``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from charlm.config.schema import RunConfig
from charlm.data.batching import Splits, StripeBatcher
from charlm.data.tokenizers import Tokenizer
from charlm.evaluation.scoring import Score, score_tokens
from charlm.generation.generate import sample_text
from charlm.models.lm import RNNLM, detach_hidden, hidden_from_tensors, hidden_tensors
from charlm.models.precision import Precision
from charlm.rundir import checkpoint as ckpt_io
from charlm.rundir import recovery
from charlm.rundir.log import Meter, RunLog
from charlm.rundir.progress import TrainState
from charlm.training import distributed, rtrl
from charlm.training.averaging import WeightAverage
from charlm.training.events import Callback, EvalEvent, FinishEvent, InfoEvent, StepEvent, ignore
from charlm.training.rollback import Rollback
from charlm.training.schedule import Schedule
from charlm.training.state_penalty import state_penalty
from charlm.training.stopping import StopRules


@dataclass
class Trainer:
    config: RunConfig
    tokenizer: Tokenizer
    splits: Splits
    val_chars: int
    run_dir: Path
    state: TrainState
    model: RNNLM
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    device: torch.device
    rank: int = 0
    world: int = 1
    stop_requested: bool = False

    def __post_init__(self) -> None:
        tc = self.config.train
        self.main = self.rank == 0  # only rank 0 writes files and reports
        self.log = RunLog(self.run_dir, enabled=self.main)
        self.optimizer = _make_optimizer(self.model, self.config)
        # RTRL carries its sensitivities in float32 (charlm.training.rtrl), its own gradient
        self.rtrl = None
        if tc.algorithm == "rtrl":
            self.rtrl = rtrl.CarriedRTRL(self.model, tc.batch_size, self.device)
        amp = "off" if self.rtrl else tc.amp
        self.precision = Precision(amp, self.device, self.config.model.model)
        self.batcher = StripeBatcher(
            self.splits.train, tc.batch_size, tc.bptt, self.rank, self.world
        )
        self.hidden: Any = self.model.init_hidden(tc.batch_size, self.device)
        self.schedule = Schedule(tc)
        self.stopping = StopRules(tc)
        self.rollback = Rollback(tc.lr)
        self._latest_step = -1  # the step latest.safetensors was last written at
        self._notes: list[str] = []  # said through InfoEvents at the next step
        self.average: WeightAverage | None = None  # from --average-from on
        self._penalty = 0.0  # the last step's state penalty, logged apart from the loss

    # ---- persistence -------------------------------------------------------------------
    def load(self, ck: ckpt_io.Checkpoint, *, weights_only: bool = False) -> None:
        ckpt_io.load_weights(self.model, ck)
        if weights_only:
            return
        if ck.raw:  # the weights read were the running mean; training goes on from the raw ones
            self.average = WeightAverage(self.model)
            self.model.load_state_dict(ck.raw)
        if ck.optimizer is not None:
            self.optimizer.load_state_dict(ck.optimizer)
        if ck.hidden:  # every rank's rows; this rank takes its own block
            b = self.config.train.batch_size
            mine = slice(self.rank * b, (self.rank + 1) * b)
            rows = [h[:, mine].to(self.device, torch.float32) for h in ck.hidden]
            if self.rtrl:  # its sensitivities are saved after the state
                self.rtrl.load_rows(rows.pop())
            self.hidden = hidden_from_tensors(rows)
        if "torch" in ck.rng:
            torch.set_rng_state(ck.rng["torch"])
        if "cuda" in ck.rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(ck.rng["cuda"])

    def checkpoint(self, full: bool) -> ckpt_io.Checkpoint:
        ck = ckpt_io.Checkpoint(
            config=self.config,
            tokenizer=self.tokenizer.to_dict(),
            model=self.scored_model.state_dict(),
            state=asdict(self.state),
        )
        if full and self.average is not None:
            ck.raw = self.model.state_dict()
        if full:
            ck.optimizer = self.optimizer.state_dict()
            ck.hidden = [distributed.gather_rows(h.float()) for h in hidden_tensors(self.hidden)]
            if self.rtrl:
                ck.hidden.append(self.rtrl.rows())
            ck.rng = {"torch": torch.get_rng_state()}
            if self.device.type == "cuda":
                ck.rng["cuda"] = torch.cuda.get_rng_state()
        return ck

    def save(self, name: str, full: bool) -> None:
        """Every rank calls this (a full checkpoint gathers hidden state); rank 0 writes."""
        models = {self.model, self.scored_model}  # the one model, until averaging starts
        if not all(bool(p.isfinite().all()) for m in models for p in m.parameters()):
            self._notes.append(f"weights are not finite: {name} not written")
            return
        ck = self.checkpoint(full)
        if self.main:
            ckpt_io.save(ck, self.run_dir / name)
        if name == ckpt_io.LATEST:
            self._latest_step = self.state.step

    # ---- the loop ----------------------------------------------------------------------
    def run(self, on_event: Callback = ignore) -> FinishEvent:
        done = self.finished()
        if done:  # resuming a finished run: not one more step, no file touched
            return FinishEvent(done, self.state, self.run_dir)
        total_steps = self.total_steps()
        if not self.main:
            on_event = ignore
        if self.world > 1:  # each rank its own dropout masks, reproducibly on resume
            torch.manual_seed(self.state.seed + 1_000_003 * self.rank + self.state.step)
        self._prepare_run_dir()
        self._say(on_event)  # what the clean-up after a crash did, before the first step
        self.rollback.start(self.model, self.optimizer)
        self.model.train()
        self._started = time.monotonic() - self.state.elapsed
        reason = ""
        while not reason:
            reason = self._run_epoch(on_event, total_steps)
        self.write_config()
        if self._latest_step != self.state.step:  # the final evaluation usually just wrote it
            self.save(ckpt_io.LATEST, full=True)
        self._say(on_event)
        distributed.barrier()
        return FinishEvent(reason, self.state, self.run_dir)

    def _prepare_run_dir(self) -> None:
        if not self.main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.state.step == 0:  # a fresh run: logs of an overwritten run must not linger
            for stale in ("metrics.jsonl", "samples.txt"):
                (self.run_dir / stale).unlink(missing_ok=True)
        # After a crash: no orphaned temporary files, no logged steps the checkpoint lacks.
        self._notes += recovery.tidy(self.run_dir, self.state.step)
        self.write_config()

    def _run_epoch(self, on_event: Callback, total_steps: int) -> str:
        """Train from the current window to the end of the epoch, or until a bound is hit."""
        tc, st = self.config.train, self.state
        meter = Meter()
        for k, x, y in self.batcher.windows(st.window):
            self._reset_stripes()
            loss, norm, lr = self.train_step(x, y, total_steps)
            st.step, st.window = st.step + 1, k + 1
            st.tokens_seen += x.numel() * self.world
            st.elapsed = time.monotonic() - self._started
            loss = self.agree(loss, total_steps)
            self._average(loss is not None, total_steps)
            meter.add(x.numel() * self.world, loss)
            self._say(on_event)
            if loss is not None:
                on_event(
                    StepEvent(
                        st.step,
                        st.epoch,
                        loss,
                        lr,
                        norm,
                        st.tokens_seen,
                        meter.rate(),
                        self.progress(total_steps),
                        st.elapsed,
                    )
                )
            if st.step % self.log_every == 0:
                self._log_step(meter, lr, norm)
            reason = self.stopping.after_step(st, *self._stop_flags())
            if st.step % tc.eval_every == 0 or reason:
                if self._evaluate(on_event, meter) and not reason:
                    reason = "patience"
                meter = Meter()
            if reason:
                return reason
        st.epoch, st.window = st.epoch + 1, 0
        self._restart_state()
        if self.stopping.epochs_done(st):
            if st.step % tc.eval_every:
                self._evaluate(on_event, meter)
            return "epochs"
        return ""

    def _reset_stripes(self) -> None:
        """Send each stripe's carried state back to zero with probability ``reset_prob``.

        A model that has only seen carried state starts badly from zero, where every sample,
        prime and short text starts (bench/coldstart.py measures the gap). The draw is made for
        the global batch from the run's seed and step: a resumed run draws the same, every rank
        takes its own stripes (N ranks of batch B reset as one process of batch N x B), and the
        training random stream (dropout) is left as it was.
        """
        p, b = self.config.train.reset_prob, self.config.train.batch_size
        if not p:
            return
        gen = torch.Generator().manual_seed(self.state.seed * 1_000_003 + self.state.step)
        draw = torch.rand(self.world * b, generator=gen)[self.rank * b : (self.rank + 1) * b]
        keep = (draw >= p).to(self.device)[None, :, None]
        zeroed = [torch.where(keep, h, torch.zeros_like(h)) for h in hidden_tensors(self.hidden)]
        self.hidden = hidden_from_tensors(zeroed)
        if self.rtrl:
            self.rtrl.keep(keep[0, :, 0])

    def finished(self) -> str:
        """Why the run has nothing left to do under its bounds ('' while it has)."""
        return self.stopping.finished(self.state)

    @property
    def log_every(self) -> int:
        return max(1, self.config.train.eval_every // 10)

    def total_steps(self) -> int:
        return self.stopping.total_steps(len(self.batcher))

    def progress(self, total_steps: int) -> float:
        return self.stopping.progress(self.state, total_steps)

    def agree(self, loss: float | None, total_steps: int) -> float | None:
        """The step's loss averaged over ranks, and the stop flags: one all-reduce a step,
        after ``train_step``.

        A signal or the clock may reach one rank before another; acting on a local stop
        would leave the others waiting in a collective, so every rank acts on the sum. The
        same goes for the start of weight averaging, which the clock may decide.
        """
        if self.world == 1:
            return loss
        total, n_stop, n_late, n_average = distributed.all_reduce_sum(
            [
                loss or 0.0,
                self.stop_requested,
                self.stopping.late(self.state),
                self._average_due(total_steps),
            ],
            self.device,
        )
        self._agreed = (n_stop > 0, n_late > 0)
        self._agreed_average = n_average > 0
        return None if loss is None else total / self.world

    @property
    def scored_model(self) -> RNNLM:
        """What evaluation, samples and checkpoints use: the mean of the weights once
        averaging has started, else the weights being trained."""
        return self.model if self.average is None else self.average.model

    def _average_due(self, total_steps: int) -> bool:
        start = self.config.train.average_from
        return start is not None and self.progress(total_steps) >= start

    def _average(self, stepped: bool, total_steps: int) -> None:
        """Fold this step's weights into the mean, from --average-from on (once started, to
        the end). A skipped step changed nothing, so it is not counted twice."""
        if not stepped:
            return
        if self.average is None:
            due = self._agreed_average if self.world > 1 else self._average_due(total_steps)
            if not due:
                return
            self.average = WeightAverage(self.model)
            self._notes.append(
                f"step {self.state.step}: averaging the weights from here on (--average-from "
                f"{self.config.train.average_from:g}); scores and checkpoints use the mean"
            )
        self.state.averaged_steps += 1
        self.average.add(self.model, self.state.averaged_steps)

    def _stop_flags(self) -> tuple[bool, bool]:
        """(interrupted, late): as all ranks agreed this step, or this process's own."""
        if self.world > 1:
            return self._agreed
        return self.stop_requested, self.stopping.late(self.state)

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, total_steps: int
    ) -> tuple[float | None, float, float]:
        """One window: forward, backward, clip, update. Returns (loss, gradient norm before
        clipping, learning rate); the loss is None when the update was skipped."""
        x, y = self._to_device(x), self._to_device(y)
        tc = self.config.train
        if self.rtrl:
            self.optimizer.zero_grad(set_to_none=True)
            value, hidden = self.rtrl.train(x, y, self.hidden)
        else:
            value, hidden = self._backward(x, y)
        self.precision.unscale(self.optimizer)
        clip = tc.grad_clip or math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        lr = self.schedule.rate(self.state, self.progress(total_steps))
        if self.precision.overflowed(value, norm):
            return None, norm, lr
        if not (math.isfinite(value) and math.isfinite(norm)):
            self._bad_step()
            return None, norm, lr
        self.rollback.good_step()
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.precision.step(self.optimizer)
        self.hidden = detach_hidden(hidden)
        return value, norm, lr

    def _backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, Any]:
        """BPTT through the window: its mean loss and the state after it."""
        tc = self.config.train
        with self.precision.autocast():
            nll, states, hidden = self.net(x, y, self.hidden)
            loss = nll.float().mean()
        objective = loss
        if tc.state_penalty:  # trains the model; never part of a reported loss
            penalty = state_penalty(states, tc.state_penalty, tc.state_penalty_kind)
            objective = loss + penalty
            self._penalty = penalty.item()
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(objective)  # with DDP, gradients arrive averaged over ranks
        return loss.item(), hidden

    def _restart_state(self) -> None:
        """Every stripe from zero: its state, and RTRL's sensitivities."""
        self.hidden = self.model.init_hidden(self.config.train.batch_size, self.device)
        if self.rtrl:
            self.rtrl.restart()

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # page-locked, so the copy overlaps with compute
            t = t.pin_memory()
        return t.to(self.device, non_blocking=True)

    def _bad_step(self) -> None:
        """A non-finite loss or gradient: skip the update, start the stripes afresh."""
        self._restart_state()
        self._note(self.rollback.bad_step(self.model, self.optimizer, self.state))

    def _note(self, note: str) -> None:
        if note:
            self._notes.append(note)

    def _say(self, on_event: Callback) -> None:
        for note in self._notes:
            on_event(InfoEvent(note))
        self._notes.clear()

    def _evaluate(self, on_event: Callback, meter: Meter) -> bool:
        """Score the validation split, save checkpoints; True when patience ran out."""
        meter.freeze()
        st = self.state
        score = self._score_val()
        finite = math.isfinite(score.nats_per_token)  # a NaN loss is never "best"
        improved = finite and (st.best_val is None or score.nats_per_token < st.best_val)
        if improved:
            st.best_val, st.evals_since_best = score.nats_per_token, 0
            self.save(ckpt_io.BEST, full=False)
            self.rollback.remember(self.model, self.optimizer)
        else:
            st.evals_since_best += 1
            self._note(self.schedule.stalled(st))
        sample = self._sample() if self.main else ""
        self._log_eval(score, sample, meter)
        self.save(ckpt_io.LATEST, full=True)
        on_event(
            EvalEvent(
                st.step, score.nats_per_token, score.bits_per_char, st.best_val, improved, sample
            )
        )
        return self.stopping.out_of_patience(st)

    def _score_val(self) -> Score:
        """Each rank scores its block of validation rows; the totals are summed."""
        tc = self.config.train
        shard, rows = distributed.eval_shard(
            self.splits.val, tc.eval_batch_size, self.rank, self.world
        )
        nats, count = 0.0, 0
        if len(shard) > 1:
            nats, count = score_tokens(self.scored_model, shard, rows, tc.bptt, self.device)
        nats, count = distributed.all_reduce_sum([nats, count], self.device)
        return Score(nats, int(count), self.val_chars)

    def _sample(self) -> str:
        """What `charlm sample` prints for the checkpoint saved at this evaluation."""
        tc = self.config.train
        if tc.sample_length == 0:
            return ""
        return sample_text(
            self.scored_model,
            self.tokenizer,
            tc.sample_length,
            tc.sample_temperature,
            self.sample_seed(),
        )

    def sample_seed(self) -> int:
        """The seed of this evaluation's sample: named in samples.txt, so it can be repeated."""
        return self.state.seed + self.state.step

    def _log_step(self, meter: Meter, lr: float, norm: float) -> None:
        extra = {"state_penalty": self._penalty} if self.config.train.state_penalty else {}
        self.log.row(self.state, meter, lr=lr, grad_norm=norm, **extra)

    def _log_eval(self, score: Score, sample: str, meter: Meter) -> None:
        # Perplexity per token beside bits per character: per word (with <eos>) in whitespace
        # mode, where it compares with published figures; bits/char compare across tokenizers.
        self.log.row(
            self.state,
            meter,
            val_loss=score.nats_per_token,
            val_bpc=score.bits_per_char,
            val_ppl=score.perplexity,
        )
        how = f"seed {self.sample_seed()}, temperature {self.config.train.sample_temperature:g}"
        self.log.sample(self.state.step, score.bits_per_char, how, sample)

    def write_config(self) -> None:
        self.log.config(self.config, self.state)


def _make_optimizer(model: RNNLM, config: RunConfig) -> torch.optim.Optimizer:
    tc = config.train
    # Fixed weights (an echo-state reservoir) stay out: no update, no weight decay.
    params = [p for p in model.parameters() if p.requires_grad]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
