"""AdapterDrop's one policy (adapter_core.drop, Rücklé et al. 2021): a function of the seed and the step only."""

from __future__ import annotations

import random

import pytest

from adapter_core import AdapterDropConfig


def test_robust_draw_is_the_fairseq_plugins_draw_and_depends_on_seed_and_step_only():
    policy = AdapterDropConfig(mode="robust", max_dropped=3, seed=7)
    # the sequence nmt has always drawn (reports and resumed nmt runs stay what they were)
    expected = [random.Random(7 * 1_000_003 + step).randint(0, 3) for step in range(200)]
    random.seed(0)  # the global RNG plays no part
    assert [policy.training_dropped(step) for step in range(200)] == expected
    assert set(expected) == {0, 1, 2, 3}
    # a fresh policy asked for step 150 alone gives what a long run gives at step 150
    assert AdapterDropConfig(mode="robust", max_dropped=3, seed=7).training_dropped(150) == expected[150]
    other = AdapterDropConfig(mode="robust", max_dropped=3, seed=8)
    assert [other.training_dropped(step) for step in range(200)] != expected


def test_specialised_and_inference_counts():
    specialised = AdapterDropConfig(mode="specialised", num_dropped=2)
    assert {specialised.training_dropped(step) for step in range(20)} == {2}
    assert specialised.dropped_at_inference() == 2 and specialised.dropped(False, 5) == 2
    robust = AdapterDropConfig(mode="robust", max_dropped=3)
    assert robust.dropped_at_inference() == 0 and robust.dropped(False, 5) == 0
    assert robust.dropped(True, 5) == robust.training_dropped(5)
    assert AdapterDropConfig(mode="robust", max_dropped=3, inference_dropped=1).dropped_at_inference() == 1
    assert robust.most_dropped_in_training() == 3 and specialised.most_dropped_in_training() == 2


def test_bad_configs_and_too_many_dropped_layers_are_one_line_errors():
    with pytest.raises(ValueError, match="mode must be one of specialised, robust"):
        AdapterDropConfig(mode="sometimes")
    with pytest.raises(ValueError, match=">= 0"):
        AdapterDropConfig(num_dropped=-1)
    AdapterDropConfig(mode="robust", max_dropped=2).check_fits(2, "--drop-max")  # layer 2 always keeps its adapters
    with pytest.raises(ValueError, match="--drop-max 3: must be 0..2, .*at least one must keep its adapters"):
        AdapterDropConfig(mode="robust", max_dropped=3).check_fits(2, "--drop-max")
