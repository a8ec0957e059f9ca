"""Experts a MoE step reads under the routers' measured load imbalance (step_work.routing_probs / experts_touched)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.errors import InvalidInputError
from planner.model.architecture import expected_experts_touched
from planner.perf.step_work import ROUTING_GINI, experts_touched, routing_probs


def _gini(x: np.ndarray) -> float:
    """Gini coefficient by its definition: mean absolute difference over all pairs / (2 x mean)."""
    x = np.asarray(x, dtype=float)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean()))


def test_two_experts_by_hand():
    # 2 experts, top-1: p1 + p2 = 1 and Gini = (|p1 - p2| + |p2 - p1|) / (2 x 2^2 x 0.5) = |p1 - p2| / 2, so a Gini of
    # 0.24 is p = (0.74, 0.26); two tokens touch (1 - 0.26^2) + (1 - 0.74^2) = 0.9324 + 0.4524 = 1.3848 experts,
    # where uniform routing touches 2 (1 - 0.5^2) = 1.5
    assert np.sort(routing_probs(2, 1, 0.24)) == pytest.approx([0.26, 0.74], abs=1e-9)
    assert float(experts_touched(2, 1, 2.0, 0.24)) == pytest.approx(1.3848, abs=1e-9)
    assert float(expected_experts_touched(2, 1, 2.0)) == pytest.approx(1.5)


@pytest.mark.parametrize("n_experts,top_k", [(8, 2), (128, 4), (256, 8), (384, 8), (16, 1)])
def test_probabilities_sum_to_top_k_with_the_measured_gini(n_experts, top_k):
    p = routing_probs(n_experts, top_k)
    assert p.sum() == pytest.approx(top_k, rel=1e-9)
    assert np.all((p > 0) & (p <= 1))
    assert _gini(p) == pytest.approx(ROUTING_GINI, abs=1e-6)


@pytest.mark.parametrize("n_experts,top_k", [(8, 2), (128, 4), (256, 8)])
def test_uniform_at_gini_zero_and_fewer_experts_in_between(n_experts, top_k):
    tokens = np.array([1.0, 4.0, 32.0, 64.0, 1e5])
    uniform = expected_experts_touched(n_experts, top_k, tokens)
    assert experts_touched(n_experts, top_k, tokens, 0.0) == pytest.approx(uniform, rel=1e-12)
    skewed = experts_touched(n_experts, top_k, tokens)
    assert skewed[0] == pytest.approx(top_k)  # one token reads its top-k experts whatever the routing
    assert skewed[-1] == pytest.approx(n_experts)  # a large batch reads them all
    assert np.all(skewed <= uniform + 1e-12) and np.all(np.diff(skewed) > 0)


def test_broadcasts_over_token_arrays():
    assert experts_touched(256, 8, np.ones((3, 2))).shape == (3, 2)


def test_top_k_of_all_experts_has_no_imbalance():
    # a token routed to every expert: every p_i is 1, whatever the asked Gini
    assert routing_probs(4, 4, 0.3) == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("args", [(0, 1, 0.2), (4, 0, 0.2), (4, 5, 0.2), (4, 2, -0.1), (4, 2, 1.0)])
def test_bad_input(args):
    with pytest.raises(InvalidInputError):
        routing_probs(*args)


@pytest.mark.parametrize("n_experts,top_k", [(8, 2), (128, 4), (256, 8)])
def test_tabulated_sum_matches_the_direct_sum(n_experts, top_k):
    p = routing_probs(n_experts, top_k)
    tokens = np.concatenate([np.arange(1.0, 257.0), np.random.default_rng(0).uniform(0.01, 1e5, 2000)])
    direct = (1.0 - (1.0 - p)[None, :] ** tokens[:, None]).sum(axis=-1)
    assert experts_touched(n_experts, top_k, tokens[:256]) == pytest.approx(direct[:256], rel=1e-12)
    assert experts_touched(n_experts, top_k, tokens) == pytest.approx(direct, rel=1e-4)
    assert float(experts_touched(n_experts, top_k, 0.0)) == 0.0
