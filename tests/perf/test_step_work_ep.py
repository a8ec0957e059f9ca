"""Expert parallelism inside a tensor-parallel group: the busiest GPU's share of a token's experts and of the touched
experts' weight bytes (step_work.busiest_rank_slots, step_work.ep_expert_bytes_factor). Golden values by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TINY_DENSE, TINY_MOE

from planner.model.architecture import architecture_from_config
from planner.perf.step_work import busiest_rank_slots, ep_expert_bytes_factor


def test_busiest_rank_slots_by_hand():
    # top-2 over 2 GPUs: both on one GPU with probability 1/2: 1/2 x 2 + 1/2 x 1 = 1.5
    assert busiest_rank_slots(2, 2) == pytest.approx(1.5)
    # top-8 over 2 GPUs: 4 + E|X - 4|, X ~ Binomial(8, 1/2); E|X - 4| = 2 x (4 x 1 + 3 x 8 + 2 x 28 + 1 x 56) / 256
    assert busiest_rank_slots(8, 2) == pytest.approx(4 + 2 * (4 + 24 + 56 + 56) / 256)
    # top-2 over 4 GPUs: the same GPU with probability 1/4: 1/4 x 2 + 3/4 x 1 = 1.25
    assert busiest_rank_slots(2, 4) == pytest.approx(1.25)
    # one GPU holds every expert; never below the mean top_k / tp, never above top_k
    assert busiest_rank_slots(8, 1) == 8.0
    got = busiest_rank_slots(8, np.array([2.0, 4.0, 8.0, 16.0]))
    assert np.all(got >= 8 / np.array([2.0, 4.0, 8.0, 16.0])) and np.all(got <= 8) and np.all(np.diff(got) < 0)


def test_ep_expert_bytes_factor_by_hand():
    arch = architecture_from_config(TINY_MOE)  # 8 experts, top-2, 2 MoE layers
    # EP2, one token: a GPU holds 4 experts, each touched with p = 2/8: mu = 1, sigma = sqrt(4 x 1/4 x 3/4) = 0.866;
    # the busiest of 2 GPUs touches mu + 0.5642 sigma = 1.4886 (E[max of 2 standard normals] = 1/sqrt(pi))
    want = 1.0 + 0.5642 * math.sqrt(4 * 0.25 * 0.75)
    assert float(ep_expert_bytes_factor(arch, 1.0, 2.0, True)) == pytest.approx(want, rel=1e-6)
    # a large batch touches every expert on every GPU: 1; tensor parallelism (or one GPU, or a dense model): 1
    assert float(ep_expert_bytes_factor(arch, 4096.0, 2.0, True)) == pytest.approx(1.0)
    assert float(ep_expert_bytes_factor(arch, 1.0, 2.0, False)) == 1.0
    assert float(ep_expert_bytes_factor(arch, 1.0, 1.0, True)) == 1.0
    assert float(ep_expert_bytes_factor(architecture_from_config(TINY_DENSE), 1.0, 2.0, True)) == 1.0
    # never more than all of a GPU's experts over the mean touched: 4 / (4 x p)
    f = ep_expert_bytes_factor(arch, np.array([1.0, 2.0, 8.0, 64.0]), 2.0, True)
    p = 1.0 - 0.75 ** np.array([1.0, 2.0, 8.0, 64.0])
    assert np.all(f >= 1.0) and np.all(f <= 1.0 / p + 1e-12) and np.all(np.diff(f) < 0)
