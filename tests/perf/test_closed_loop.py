"""Closed-loop and static-batch latency means: hand-derived goldens (planner/perf/closed_loop.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.errors import InvalidInputError
from planner.perf.closed_loop import (
    admission_wait_s,
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


def test_sglang_recv_interval_waits_half_the_interval_in_decode_steps():
    # k = 30 at a 12 ms step: a request arriving at a random time waits 30 / 2 x 12 ms = 180 ms; k <= 1 reads every
    # step (no wait)
    wait = admission_wait_s(step_s=0.012, input_tokens=922, arrival_rate_per_s=1.0, recv_interval=[30, 10, 1, 0])
    assert np.allclose(wait, [0.180, 0.060, 0.0, 0.0])


def test_trtllm_batch_wait_holds_context_until_timeout_or_tokens():
    # T = 40 steps of 20 ms = 0.8 s; K = 6554 tokens = ceil(6554 / 922) = 8 prompts, reached after 7 / rate s.
    # rate 3.5 /s: 7 / 3.5 = 2 s > 0.8 s, tau = 0.8: 0.8 (1 + 3.5 x 0.8 / 2) / (1 + 3.5 x 0.8) = 1.92 / 3.8
    slow = admission_wait_s(step_s=0.02, input_tokens=922, arrival_rate_per_s=3.5, wait_iters=40, wait_tokens=6554)
    assert math.isclose(float(slow), 0.8 * 2.4 / 3.8)
    # rate 35 /s: 7 / 35 = 0.2 s < 0.8 s, tau = 0.2: 0.2 (1 + 35 x 0.2 / 2) / (1 + 35 x 0.2) = 0.9 / 8
    fast = admission_wait_s(step_s=0.02, input_tokens=922, arrival_rate_per_s=35.0, wait_iters=40, wait_tokens=6554)
    assert math.isclose(float(fast), 0.9 / 8.0)
    # off (both 0), or a threshold one prompt already meets: no wait
    assert float(admission_wait_s(step_s=0.02, input_tokens=922, arrival_rate_per_s=3.5)) == 0.0
    assert float(admission_wait_s(step_s=0.02, input_tokens=922, arrival_rate_per_s=3.5, wait_tokens=500)) == 0.0
