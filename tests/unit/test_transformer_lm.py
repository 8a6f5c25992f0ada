"""The pieces of ``transformer_lm`` in one process: corpus, batches, schedule, model, metrics."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from trainables.transformer_lm.batches import TrainBatches, eval_batches
from trainables.transformer_lm.corpus import build_corpus, is_validation, stdlib_sources
from trainables.transformer_lm.evaluate import metrics_from_totals
from trainables.transformer_lm.hparams import LmHyperparams
from trainables.transformer_lm.loop import make_optimizer
from trainables.transformer_lm.model import TransformerLM, window_mask
from trainables.transformer_lm.parallel import Topology
from trainables.transformer_lm.schedule import learning_rate

LONE = Topology(0, 1, 0, 1, 0, 1, None)


def test_the_corpus_is_the_standard_library_split_by_a_fixed_rule() -> None:
    first, second = build_corpus(300_000), build_corpus(300_000)
    assert np.array_equal(first.train, second.train) and np.array_equal(first.val, second.val)
    assert len(first.val) == 30_000 and len(first.train) == 270_000
    sources = stdlib_sources()
    assert sources == sorted(sources, key=lambda p: p.as_posix())
    assert not any("site-packages" in p.parts or "test" in p.parts[-2:-1] for p in sources)
    assert is_validation("json/decoder.py") == is_validation("json/decoder.py")


def test_ranks_take_disjoint_slices_of_one_global_batch() -> None:
    data = np.frombuffer(np.random.default_rng(0).bytes(10_000), dtype=np.uint8)
    common = {"seq_len": 16, "batch_size": 4, "dp_size": 2, "seed": 3}
    rank0 = TrainBatches(data, dp_rank=0, **common).get(step=5)
    rank1 = TrainBatches(data, dp_rank=1, **common).get(step=5)
    whole = TrainBatches(data, dp_rank=0, **{**common, "batch_size": 8, "dp_size": 1}).get(5)
    assert torch.equal(torch.cat([rank0[0], rank1[0]]), whole[0])
    assert not torch.equal(rank0[0], rank1[0])
    inputs, targets = rank0
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are the next bytes
    assert not torch.equal(TrainBatches(data, dp_rank=0, **common).get(step=6)[0], inputs)


def test_token_dropout_replaces_inputs_only() -> None:
    data = np.frombuffer(np.random.default_rng(1).bytes(5_000), dtype=np.uint8)
    clean = TrainBatches(data, seq_len=64, batch_size=8, dp_rank=0, dp_size=1, seed=0)
    noisy = TrainBatches(
        data, seq_len=64, batch_size=8, dp_rank=0, dp_size=1, seed=0, token_dropout=0.3
    )
    (x0, y0), (x1, y1) = clean.get(0), noisy.get(0)
    assert torch.equal(y0, y1)
    changed = (x0 != x1).float().mean().item()
    assert 0.15 < changed < 0.35


def test_validation_batches_cover_the_split_once_across_ranks() -> None:
    data = np.frombuffer(np.random.default_rng(2).bytes(4_000), dtype=np.uint8)
    both = [
        eval_batches(data, seq_len=16, batch_size=2, num_batches=5, dp_rank=r, dp_size=2)
        for r in (0, 1)
    ]
    alone = eval_batches(data, seq_len=16, batch_size=2, num_batches=5, dp_rank=0, dp_size=1)
    assert [len(b) for b in both] == [3, 2]
    merged = [both[i % 2][i // 2] for i in range(5)]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(merged, alone, strict=True))


def test_accumulation_at_equal_effective_batch_validates_on_the_same_sequences() -> None:
    # A comparison of batch 16 against 4 x 4 accumulated must score both on one sample,
    # and the accumulated run's validation batches stay as small as its training ones.
    data = np.frombuffer(np.random.default_rng(4).bytes(8_000), dtype=np.uint8)
    plain = LmHyperparams(batch_size=16, seq_len=16, eval_batches=2)
    accumulated = replace(plain, batch_size=4, grad_accum_steps=4)
    assert (plain.val_batches, accumulated.val_batches) == (2, 8)

    def batches(hp: LmHyperparams) -> list[torch.Tensor]:
        found = eval_batches(
            data, seq_len=hp.seq_len, batch_size=hp.batch_size,
            num_batches=hp.val_batches, dp_rank=0, dp_size=1,
        )  # fmt: skip
        return [inputs for inputs, _ in found]

    assert torch.equal(torch.cat(batches(plain)), torch.cat(batches(accumulated)))
    assert {len(b) for b in batches(accumulated)} == {4}
    assert len(torch.cat(batches(accumulated))) == 32


@pytest.mark.parametrize("schedule", ["constant", "warmup_cosine", "cosine_restarts"])
def test_schedules(schedule: str) -> None:
    hp = LmHyperparams(schedule=schedule, lr=1.0, warmup_steps=4, T_0=5, T_mult=2, min_lr_ratio=0.1)
    rates = [learning_rate(hp, step, 40) for step in range(40)]
    assert all(0.1 - 1e-9 <= r <= 1.0 + 1e-9 for r in rates)
    if schedule == "constant":
        assert set(rates) == {1.0}
    elif schedule == "warmup_cosine":
        assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
        assert rates[4:] == sorted(rates[4:], reverse=True) and rates[-1] < 0.11
    else:  # restarts at 5, 15 (5 + 10), 35 (+ 20)
        assert [s for s in range(1, 40) if rates[s] > rates[s - 1]] == [5, 15, 35]


def test_window_mask_is_causal_and_banded() -> None:
    mask = window_mask(6, 3, torch.device("cpu"))
    assert mask[5].tolist() == [False, False, False, True, True, True]
    assert not mask.triu(1).any()


@pytest.mark.parametrize(
    ("attention", "norm", "norm_type"),
    [("full", "pre", "layernorm"), ("window", "post", "rmsnorm"), ("low_rank", "pre", "rmsnorm")],
)
def test_the_model_is_causal(attention: str, norm: str, norm_type: str) -> None:
    hp = LmHyperparams(
        attention=attention, norm=norm, norm_type=norm_type, window_size=4, rank=8, d_model=48
    )
    torch.manual_seed(0)
    model = TransformerLM(hp).eval()
    tokens = torch.randint(0, 256, (1, 16))
    changed = tokens.clone()
    changed[0, 10] = (changed[0, 10] + 1) % 256
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    assert torch.allclose(before[0, :10], after[0, :10], atol=1e-6)  # the past ignores the future
    assert not torch.allclose(before[0, 10:], after[0, 10:])
    # tied output layer: the token embedding is the only [vocab, d_model] matrix
    shaped = [n for n, p in model.named_parameters() if p.shape == (256, hp.d_model)]
    assert shaped == ["tok_emb.weight"]


def test_weight_decay_is_decoupled_not_an_l2_term() -> None:
    """AdamW: w <- w - lr*wd*w - lr*adam(grad). The loss (and so the gradient) does not
    depend on the decay; the decayed weights differ by exactly lr*wd*w after one step."""
    hp = replace(LmHyperparams(), lr=0.01, fused_adamw=False)
    inputs, targets = torch.randint(0, 256, (2, 16)), torch.randint(0, 256, (2, 16))
    weights = {}
    losses = {}
    for decay in (0.0, 0.5):
        torch.manual_seed(0)
        model = TransformerLM(replace(hp, weight_decay=decay))
        start = model.blocks[0].mlp.fc.weight.detach().clone()
        optimizer = make_optimizer(
            replace(hp, weight_decay=decay), model, torch.device("cpu"), LONE
        )
        loss = model(inputs, targets)
        loss.backward()
        optimizer.step()
        losses[decay] = loss.item()
        weights[decay] = model.blocks[0].mlp.fc.weight.detach()
    assert losses[0.0] == losses[0.5]
    assert torch.allclose(weights[0.0] - weights[0.5], hp.lr * 0.5 * start, atol=1e-7)


def test_f1_and_accuracy_from_counts() -> None:
    vocab = 4
    # predictions [0, 0, 1, 2], targets [0, 1, 1, 2]
    true_pos = torch.tensor([1.0, 1.0, 1.0, 0.0])
    predicted = torch.tensor([2.0, 1.0, 1.0, 0.0])
    actual = torch.tensor([1.0, 2.0, 1.0, 0.0])
    totals = torch.cat([torch.tensor([4 * math.log(2), 3.0, 4.0]), true_pos, predicted, actual])
    metrics = metrics_from_totals(totals.double(), vocab)
    assert metrics["val_accuracy"] == 0.75
    assert metrics["val_loss"] == pytest.approx(math.log(2))
    assert metrics["val_ppl"] == pytest.approx(2.0)
    assert metrics["val_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)  # byte 3 absent
