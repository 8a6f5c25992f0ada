"""The Branin function as a multi-fidelity trainable (minimum 0.397887, three minimisers)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from trainables.registry import register
from trainables.synthetic import Bound, SyntheticFunction, make_spec

OPTIMUM = 0.397887357729738
MINIMISERS = ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475))


def branin(x: Sequence[float]) -> float:
    """Branin-Hoo with its usual constants; x1 in [-5, 10], x2 in [0, 15]."""
    x1, x2 = x
    b = 5.1 / (4.0 * math.pi**2)
    c = 5.0 / math.pi
    t = 1.0 / (8.0 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1.0 - t) * math.cos(x1) + 10.0


BRANIN = SyntheticFunction(
    name="branin",
    bounds=(Bound("x1", -5.0, 10.0), Bound("x2", 0.0, 15.0)),
    objective=branin,
    optimum=OPTIMUM,
    penalty_scale=10.0,
)

SPEC = register(
    make_spec(
        BRANIN,
        description=(
            "Branin function on x1 in [-5, 10], x2 in [0, 15] (minimum 0.397887). "
            "Reports `loss` each of `epochs` iterations: the objective plus a penalty "
            "that shrinks to 0 at the last one."
        ),
        epochs=9,
    )
)
