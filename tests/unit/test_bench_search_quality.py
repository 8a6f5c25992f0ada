"""The search-quality benchmark's pure parts: budget accounting, regret curves, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.quality.analysis import (
    area_under,
    best_so_far,
    bootstrap_mean_ci,
    budget_of,
    first_budget_reaching,
    paired_wilcoxon,
    regret_curve,
)
from benchmarks.quality.problems import FULL, QUICK, flatten_config, service_spec
from benchmarks.quality.report import analyze_problem, markdown


def test_each_result_is_one_epoch_of_budget() -> None:
    assert budget_of([1, 2, 1, 3]) == [1, 2, 3, 4]


def test_best_so_far_counts_every_fidelity_or_only_the_full_one() -> None:
    values = [5.0, 3.0, None, 4.0, 1.0]
    epochs = [1, 1, 2, 3, 2]
    assert best_so_far(values).tolist() == [5.0, 3.0, 3.0, 3.0, 1.0]
    full = best_so_far(values, epochs, full_fidelity=3)
    assert math.isnan(full[0]) and full[3:].tolist() == [4.0, 4.0]


def test_regret_curve_cuts_at_the_budget_and_holds_a_short_run() -> None:
    curve = regret_curve([3.0, 2.0, 5.0, 1.0], reference=1.0, budget=3)
    assert curve.tolist() == [2.0, 1.0, 1.0]  # the 4th result is past the budget
    short = regret_curve([3.0, 2.0], reference=1.0, budget=4)
    assert short.tolist() == [2.0, 1.0, 1.0, 1.0]


def test_area_is_the_mean_regret_over_the_budget() -> None:
    assert area_under(np.array([4.0, 2.0, 0.0])) == pytest.approx(2.0)


def test_bootstrap_band_holds_the_mean() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(10.0, 1.0, size=(20, 3))
    mean, low, high = bootstrap_mean_ci(samples)
    assert np.all(low <= mean) and np.all(mean <= high)
    assert np.all(high - low < 2.0)


def test_wilcoxon_equal_pairs_and_clear_difference() -> None:
    same = paired_wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["p_value"] == 1.0
    a = np.linspace(1, 2, 20)
    different = paired_wilcoxon(a, a + 1.0)
    assert different["p_value"] < 0.05
    assert paired_wilcoxon([1.0], [2.0])["p_value"] is None


def test_first_budget_reaching_is_one_based() -> None:
    assert first_budget_reaching(np.array([3.0, 2.0, 1.0]), 2.0) == 2
    assert first_budget_reaching(np.array([3.0, 2.0]), 0.5) is None


def test_budgets_match_across_methods() -> None:
    for problems in (FULL, QUICK):
        for problem in problems.values():
            hyperopt = service_spec(problem, "service_hyperopt", 0)
            assert hyperopt["num_samples"] * problem.max_t == problem.budget
            bohb = service_spec(problem, "service_bohb", 0)
            assert bohb["scheduler"]["max_t"] == problem.max_t
            assert bohb["config"]["epochs"] == problem.max_t
            # BOHB gets more samples than the budget needs and is stopped at the budget
            # rather than running out of samples first.
            assert bohb["num_samples"] * hyperband_epochs_per_sample(problem.max_t) >= (
                1.3 * problem.budget
            )


def hyperband_epochs_per_sample(max_t: int, eta: int = 3) -> float:
    """Epochs per trial of one round of Ray's HyperBand brackets (each promoted trial
    continues from its checkpoint)."""
    s_max_1 = round(math.log(max_t) / math.log(eta)) + 1
    trials = epochs = 0
    for s in range(s_max_1):
        n = math.ceil(s_max_1 / (s + 1) * eta**s)
        r = int(max_t * eta ** (-s))
        trials += n
        done = 0
        while n >= 1 and r <= max_t:
            epochs += n * (r - done)
            done, n, r = r, n // eta, r * eta
    return epochs / trials


def test_hyperopt_nested_choice_is_flattened() -> None:
    config = {"lr": np.float64(0.1), "optimizer": {"optimizer": "sgd", "momentum": 0.5}}
    assert flatten_config(config) == {"lr": 0.1, "optimizer": "sgd", "momentum": 0.5}


def _run(seed: int, values: list[float], epochs: list[int]) -> dict[str, object]:
    return {"seed": seed, "values": values, "epochs": epochs, "wall_s": 1.0, "trials": 1}


def test_analysis_of_a_small_report() -> None:
    problem = {
        "settings": {"optimum": 0.0, "max_t": 2, "metric": "loss"},
        "budget": 4,
        "runs": {
            "service_bohb": [_run(s, [2.0, 1.0, 0.5, 0.1], [1, 1, 2, 2]) for s in range(3)],
            "direct_bohb": [_run(s, [2.0, 1.0, 0.5, 0.1], [1, 1, 2, 2]) for s in range(3)],
            "random": [_run(s, [3.0, 1.0, 2.0, 0.5], [1, 2, 1, 2]) for s in range(3)],
            "service_hyperopt": [{"seed": 0, "error": "boom"}],
        },
    }
    analysis = analyze_problem(problem)
    assert analysis["methods"]["random"]["final_mean"] == pytest.approx(0.5)
    assert analysis["methods"]["service_bohb"]["final_full_fidelity_mean"] == pytest.approx(0.1)
    pair = analysis["pairs"][0]
    assert pair["final"]["p_value"] == 1.0 and pair["no_significant_difference"]
    bohb = analysis["bohb_vs_random"][0]
    assert bohb["budget_to_reach_mean"] == 3 and bohb["fraction_mean"] == pytest.approx(0.75)
    assert "service_bohb" in markdown({"toy": analysis})
