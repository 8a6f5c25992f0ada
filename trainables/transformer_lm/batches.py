"""Batches for each data-parallel rank: disjoint slices of one seeded global batch per step.

Every rank draws the same global batch of windows from the seed and the step, and keeps
its own slice: no two ranks train on the same window, and a run with 2 ranks sees exactly
the windows a run with one rank and twice the batch would. Tensor-parallel peers share a
data-parallel rank, hence the same slice.
"""

from __future__ import annotations

import numpy as np
import torch

_STEP_SEED_STRIDE = 1_000_003


def _windows(data: torch.Tensor, starts: torch.Tensor, seq_len: int) -> torch.Tensor:
    offsets = torch.arange(seq_len + 1)
    return data[starts[:, None] + offsets[None, :]].long()


class TrainBatches:
    """Input and target token batches of one data-parallel rank."""

    def __init__(
        self,
        data: np.ndarray,
        *,
        seq_len: int,
        batch_size: int,
        dp_rank: int,
        dp_size: int,
        seed: int,
        token_dropout: float = 0.0,
        vocab: int = 256,
    ) -> None:
        if len(data) <= seq_len + 1:
            raise ValueError(f"the corpus ({len(data)} bytes) is shorter than one sequence")
        self._data = torch.from_numpy(np.require(data, requirements=["C", "W"]))
        self.seq_len, self.batch_size = seq_len, batch_size
        self.dp_rank, self.dp_size = dp_rank, dp_size
        self.seed, self.token_dropout, self.vocab = seed, token_dropout, vocab

    def get(self, step: int, micro_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The (inputs, targets) of ``micro_step`` of optimizer step ``step``: [batch, seq_len]."""
        generator = torch.Generator().manual_seed(
            (self.seed * _STEP_SEED_STRIDE + step) * 64 + micro_step
        )
        global_batch = self.batch_size * self.dp_size
        high = len(self._data) - self.seq_len - 1
        starts = torch.randint(0, high, (global_batch,), generator=generator)
        mine = starts[self.dp_rank * self.batch_size : (self.dp_rank + 1) * self.batch_size]
        window = _windows(self._data, mine, self.seq_len)
        inputs, targets = window[:, :-1], window[:, 1:]
        if self.token_dropout > 0:
            # Drawn for the whole global batch, so a rank's noise does not depend on dp_size.
            noise = torch.rand(global_batch, self.seq_len, generator=generator)
            replacement = torch.randint(0, 256, (global_batch, self.seq_len), generator=generator)
            rows = slice(self.dp_rank * self.batch_size, (self.dp_rank + 1) * self.batch_size)
            dropped = noise[rows] < self.token_dropout
            inputs = torch.where(dropped, replacement[rows], inputs)
        return inputs, targets


def eval_batches(
    data: np.ndarray,
    *,
    seq_len: int,
    batch_size: int,
    num_batches: int,
    dp_rank: int,
    dp_size: int,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's share of a fixed validation set: windows spread evenly over ``data``.

    Batch ``i`` of ``num_batches`` belongs to rank ``i % dp_size``; a rank may get none.
    """
    tensor = torch.from_numpy(np.require(data, requirements=["C", "W"]))
    windows = num_batches * batch_size
    high = len(tensor) - seq_len - 1
    if high <= 0:
        raise ValueError(f"the validation split ({len(tensor)} bytes) is shorter than a sequence")
    starts = torch.linspace(0, high, windows).long()
    batches = []
    for index in range(dp_rank, num_batches, dp_size):
        window = _windows(tensor, starts[index * batch_size : (index + 1) * batch_size], seq_len)
        batches.append((window[:, :-1], window[:, 1:]))
    return batches
