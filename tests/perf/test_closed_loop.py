"""Closed-loop and static-batch latency means: hand-derived goldens (planner/perf/closed_loop.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.errors import InvalidInputError
from planner.perf.closed_loop import (
    closed_loop_mean_s,
    first_wave_frac,
    later_wave_tpot_s,
    later_wave_ttft_s,
    wave_train_waits,
)
from planner.perf.serving import wave_ttft_s


def test_first_wave_frac_is_c_over_n_and_defaults_by_lengths():
    # 64 clients, 640 requests -> 10 % of the requests start in the first wave; more clients than requests -> 1
    assert first_wave_frac(concurrency=64, num_requests=640, fixed_lengths=False) == pytest.approx(0.1)
    assert first_wave_frac(concurrency=64, num_requests=32, fixed_lengths=True) == pytest.approx(1.0)
    # N not stated: fixed lengths stay synchronised (1), variable lengths are the steady state (0)
    out = first_wave_frac(concurrency=[8, 8], num_requests=[math.nan, math.nan], fixed_lengths=[True, False])
    np.testing.assert_allclose(out, [1.0, 0.0])
    with pytest.raises(InvalidInputError, match="num_requests"):
        first_wave_frac(concurrency=8, num_requests=0, fixed_lengths=True)


def test_later_wave_waits_for_its_own_group_step_only():
    # a 4-step burst of 2 s: the first wave waits (4 + 1) / 8 x 2 = 1.25 s on average; a later wave's group
    # has one 0.5 s step to itself
    assert float(wave_ttft_s(burst_prefill_s=2.0, burst_steps=4)) == pytest.approx(1.25)
    assert float(later_wave_ttft_s(burst_prefill_s=2.0, burst_steps=4)) == pytest.approx(0.5)
    # one step: every wave is the whole burst
    assert float(later_wave_ttft_s(burst_prefill_s=0.3, burst_steps=1)) == pytest.approx(0.3)


def test_later_wave_tpot_shares_the_cycle_with_the_other_groups_prefill():
    # 4 groups, 0.5 s prefill steps, 0.01 s decode steps, 101 tokens: 3 of the 100 decode steps are the other
    # groups' prefill steps -> 0.01 + 3 x (0.5 - 0.01) / 100 = 0.0247 s
    tpot = later_wave_tpot_s(decode_step_s=0.01, burst_prefill_s=2.0, burst_steps=4, output_tokens=101)
    assert float(tpot) == pytest.approx(0.0247)
    # more groups than decode steps: every decode step is a prefill step
    assert float(later_wave_tpot_s(decode_step_s=0.01, burst_prefill_s=2.0, burst_steps=4,
                                   output_tokens=2)) == pytest.approx(0.5)


def test_closed_loop_mean_weighs_the_first_wave():
    # 10 % at 1.2 s, 90 % at 0.2 s -> 0.3 s
    assert float(closed_loop_mean_s(first_wave_s=1.2, later_s=0.2, first_frac=0.1)) == pytest.approx(0.3)


@pytest.mark.parametrize("batch, capacity, waits", [
    (50, 100, 0.0),  # fits: no wait
    (100, 100, 0.0),  # exactly one wave
    (200, 100, 0.5),  # two waves: half the requests wait one
    (250, 100, 0.8),  # q = 2, r = 50: (100 x 2 x 1 / 2 + 50 x 2) / 250 = 200 / 250
])
def test_wave_train_waits(batch, capacity, waits):
    assert float(wave_train_waits(batch=batch, capacity=capacity)) == pytest.approx(waits)
