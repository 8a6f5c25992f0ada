"""PNG plots of the search-quality benchmark: regret vs budget, mean with 95% bands, log y."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.quality.analysis import REGRET_FLOOR
from benchmarks.quality.report import complete_seeds, curve_bands, reference_of

STYLE = {
    "service_bohb": ("tab:blue", "-", "BOHB, service"),
    "direct_bohb": ("tab:cyan", "--", "BOHB, direct Ray Tune"),
    "service_hyperopt": ("tab:red", "-", "HyperOpt, service"),
    "direct_hyperopt": ("tab:orange", "--", "HyperOpt, direct Ray Tune"),
    "random": ("tab:gray", ":", "random search (full fidelity)"),
}


def plot_problem(name: str, problem: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = int(problem["budget"])
    _, reference_kind = reference_of(problem)
    x = np.arange(1, budget + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for method, (mean, low, high) in curve_bands(problem).items():
        color, style, label = STYLE.get(method, ("black", "-", method))
        seeds = len(mean) and len(complete_seeds(problem))
        clip = [np.clip(c, REGRET_FLOOR, None) for c in (mean, low, high)]
        ax.plot(x, clip[0], color=color, linestyle=style, label=f"{label} ({seeds} seeds)")
        ax.fill_between(x, clip[1], clip[2], color=color, alpha=0.15, linewidth=0)
    ax.axvline(0.2 * budget, color="black", linewidth=0.6, alpha=0.4, label="1/5 of the budget")
    ax.set_yscale("log")
    ax.set_xlim(1, budget)
    ax.set_xlabel("budget: epochs (fidelity units) used, all trials, in order of arrival")
    ax.set_ylabel(f"best-so-far regret\n(vs {reference_kind})", fontsize=9)  # two lines: fits
    ax.set_title(f"{name}: mean regret, 95% bootstrap band over seeds")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
