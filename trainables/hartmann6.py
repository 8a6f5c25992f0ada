"""The 6-D Hartmann function as a multi-fidelity trainable (minimum -3.32237 on [0, 1]^6)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from trainables.registry import register
from trainables.synthetic import Bound, SyntheticFunction, make_spec

OPTIMUM = -3.32236801141551
MINIMISER = (0.20168952, 0.15001069, 0.47687398, 0.27533243, 0.31165162, 0.65730054)

ALPHA = (1.0, 1.2, 3.0, 3.2)
A = (
    (10.0, 3.0, 17.0, 3.5, 1.7, 8.0),
    (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
    (3.0, 3.5, 1.7, 10.0, 17.0, 8.0),
    (17.0, 8.0, 0.05, 10.0, 0.1, 14.0),
)
P = tuple(
    tuple(v * 1e-4 for v in row)
    for row in (
        (1312, 1696, 5569, 124, 8283, 5886),
        (2329, 4135, 8307, 3736, 1004, 9991),
        (2348, 1451, 3522, 2883, 3047, 6650),
        (4047, 8828, 8732, 5743, 1091, 381),
    )
)


def hartmann6(x: Sequence[float]) -> float:
    """-sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2), the standard constants."""
    return -sum(
        alpha * math.exp(-sum(a * (xj - p) ** 2 for a, xj, p in zip(a_row, x, p_row, strict=True)))
        for alpha, a_row, p_row in zip(ALPHA, A, P, strict=True)
    )


HARTMANN6 = SyntheticFunction(
    name="hartmann6",
    bounds=tuple(Bound(f"x{i}", 0.0, 1.0) for i in range(1, 7)),
    objective=hartmann6,
    optimum=OPTIMUM,
    penalty_scale=1.0,
)

SPEC = register(
    make_spec(
        HARTMANN6,
        description=(
            "6-D Hartmann function on [0, 1]^6 (minimum -3.32237). Reports `loss` each of "
            "`epochs` iterations: the objective plus a penalty that shrinks to 0 at the last one."
        ),
        epochs=27,
    )
)
