"""Generated specs through the whole validation a submission goes through (bounds, fields,
search-space parsing, the algorithm's and the trainable's checks): a spec is either valid
or refused with InvalidSpec, never another exception (which the API would answer 500)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_spaces import InvalidSpec
from service.spec import parse_spec_document, spec_from_mapping
from service.validation import ClusterCapacity, validate_study
from trainables import list_trainables

CAPACITY = ClusterCapacity(cpus=4, gpus=0)
TRAINABLES = sorted(t.name for t in list_trainables())
TYPES = ["uniform", "loguniform", "quniform", "randint", "lograndint", "qrandint", "choice", "grid"]

numbers = st.one_of(
    st.integers(-5, 130),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 2, 0.5, 1e-5, 1e300, -1e300, 2**63, 2**64 + 1, 10**30]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=6))
names = st.one_of(
    st.sampled_from(["x", "x1", "x2", "lr", "epochs", "iterations", "width", "layers"]),
    st.sampled_from(["eval", "grid_search", "__x", "1", "value", "type", "a/b", "a.b", ""]),
    st.text(max_size=6),
)


def definitions(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    numeric = st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES[:6]), "low": numbers, "high": numbers},
        optional={"q": numbers, "extra": scalars},
    )
    branch = st.fixed_dictionaries({"value": scalars}).flatmap(
        lambda head: st.dictionaries(names, children, max_size=2).map(lambda sub: {**sub, **head})
    )
    options = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["choice", "grid"]),
            "values": st.one_of(st.lists(st.one_of(scalars, branch), max_size=5), scalars),
        }
    )
    group = st.dictionaries(names, children, max_size=3)
    return st.one_of(numeric, options, group, scalars)


parameters = st.recursive(
    st.fixed_dictionaries({"type": st.sampled_from(TYPES), "low": numbers, "high": numbers}),
    definitions,
    max_leaves=12,
)
spaces = st.one_of(st.none(), st.dictionaries(names, parameters, max_size=4), scalars)
configs = st.dictionaries(
    st.one_of(names, st.sampled_from(["epochs", "iterations", "seq_len", "batch_size"])),
    st.one_of(scalars, st.lists(scalars, max_size=3)),
    max_size=4,
)
sections = st.one_of(
    st.none(),
    st.sampled_from(["random", "grid", "hyperopt", "bohb", "fifo", "asha", "hyperband", "pbt"]),
    st.dictionaries(
        st.sampled_from(["name", "seed", "max_t", "grace_period", "reduction_factor", "n"]),
        st.one_of(
            scalars,
            st.sampled_from(["random", "grid", "hyperopt", "bohb", "asha", "hyperband", "pbt"]),
        ),
        max_size=3,
    ),
)
documents = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=8), "trainable": st.sampled_from(TRAINABLES)},
    optional={
        "search_space": spaces,
        "config": configs,
        "metric": st.one_of(st.sampled_from(["loss", "val_loss", "epoch", "mfu"]), scalars),
        "mode": st.one_of(st.sampled_from(["min", "max"]), scalars),
        "algorithm": sections,
        "scheduler": sections,
        "num_samples": numbers,
        "max_concurrent_trials": numbers,
        "resources": st.dictionaries(
            st.sampled_from(["num_workers", "use_gpu", "cpus_per_worker", "tensor_parallel"]),
            numbers,
            max_size=3,
        ),
        "stop": st.dictionaries(
            st.sampled_from(["time_budget_s", "max_failures", "max_restarts"]), numbers
        ),
    },
)


def validate(document: dict[str, Any]) -> None:
    try:
        validate_study(spec_from_mapping(document), CAPACITY)
    except InvalidSpec as error:
        assert error.errors, "an InvalidSpec names its problems"
        json.dumps([[list(loc), msg] for loc, msg in error.errors])  # answerable as JSON


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_generated_specs_are_valid_or_invalid_specs(document: dict[str, Any]) -> None:
    validate(document)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_the_same_specs_sent_as_yaml(document: dict[str, Any]) -> None:
    import yaml

    def finite(value: Any) -> bool:
        return not isinstance(value, float) or math.isfinite(value)

    text = yaml.safe_dump(document)
    try:
        parsed = parse_spec_document(text.encode(), "application/yaml")
    except InvalidSpec:
        return
    assert finite(parsed.get("num_samples"))
    validate(parsed)
