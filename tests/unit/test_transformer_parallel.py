"""Tensor and data parallelism of ``transformer_lm`` on CPU gloo ranks: same losses as one rank."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.transformer_ranks import parity_hyperparams, run_ranks

LOSSES = ("train_loss", "val_loss")


def losses(reports: list, keys: tuple[str, ...] = LOSSES) -> list[float]:
    """The reported values of ``keys``, evaluation after evaluation, in one flat list."""
    return [float(metrics[key]) for metrics, _ in reports for key in keys]


# window differs from full only in its mask; low_rank adds a replicated latent projection.
@pytest.mark.parametrize("attention", ["full", "low_rank"])
def test_tensor_parallel_2_gives_the_losses_of_one_rank(attention: str) -> None:
    hp = parity_hyperparams(attention=attention, norm_type="rmsnorm", window_size=8, rank=8)
    keys = (*LOSSES, "grad_norm", "update_ratio", "val_accuracy")
    one = losses(run_ranks(hp, world=1, tp=1), keys)
    two = losses(run_ranks(hp, world=2, tp=2), keys)
    assert len(one) == len(two) == hp.evals * len(keys)
    assert two == pytest.approx(one, rel=1e-5, abs=1e-6)
    assert one[len(keys)] < one[0]  # the training loss fell: it trained


def test_data_2_x_tensor_2_matches_one_rank_with_the_global_batch() -> None:
    # Rank r takes slice r of one seeded global batch: 2 data ranks of batch 4 see what
    # one rank of batch 8 sees, so the training losses agree.
    hp = parity_hyperparams(norm="post")
    single = run_ranks(replace(hp, batch_size=2 * hp.batch_size), world=1, tp=1)
    ddp = run_ranks(hp, world=2, tp=1)
    two_by_two = run_ranks(hp, world=4, tp=2)
    expected = losses(single, ("train_loss",))
    assert losses(ddp, ("train_loss",)) == pytest.approx(expected, rel=1e-5)
    assert losses(two_by_two, ("train_loss",)) == pytest.approx(expected, rel=1e-5)
    assert losses(two_by_two) == pytest.approx(losses(ddp), rel=1e-5)


def test_a_checkpoint_resumes_exactly_and_across_layouts() -> None:
    hp = parity_hyperparams(evals=3, schedule="cosine_restarts", T_0=3)
    straight = run_ranks(hp, world=2, tp=2)
    first_state = straight[0][1]
    assert first_state is not None and first_state["evals_done"] == 1
    resumed_tp = run_ranks(hp, world=2, tp=2, resume=first_state)
    resumed_one = run_ranks(hp, world=1, tp=1, resume=first_state)
    assert [m["evaluation"] for m, _ in resumed_tp] == [2, 3]
    assert losses(resumed_tp) == pytest.approx(losses(straight)[len(LOSSES) :], rel=1e-5)
    assert losses(resumed_one) == pytest.approx(losses(straight)[len(LOSSES) :], rel=1e-5)
