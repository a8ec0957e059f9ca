"""Queueing layer: the analytic percentiles against the step-clock simulation, hand-checkable limits, bad input.

Step functions (seconds of one engine step, decode batch b, prompt tokens p), chosen to resemble:
- dense 70B on 4 GPUs, memory-bound: 25 ms + 0.06 ms x b + 0.09 ms x p   (prefill ~11 k tokens/s)
- small 8B compute-bound with long prompts: 6 ms + 0.02 ms x b + 0.04 ms x p   (prompts of 6 000 tokens)
- MoE whose per-sequence cost grows sub-linearly (experts shared): 12 ms + 1.5 ms x sqrt(b) + 0.05 ms x p
- roofline (as the replica evaluator's steps are): max(20 ms + 0.02 ms x b, 0.045 ms x (b + p)): prompt tokens
  below ~440 - b ride free under the decode's memory time, so spreading them over steps would overstate capacity
Set PLANNER_SLOW_TESTS=1 for the full sweep (four tuned and five held-out step functions x fixed/variable lengths x 4
utilisations).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import InvalidInputError
from planner.perf.queueing import (
    PERCENTILES,
    LatencyPercentiles,
    latency_percentiles,
    max_rate_meeting_slo,
    mean_latency_s,
    saturation_rate_per_s,
)
from planner.perf.simulation import simulate


def dense(b, p):
    return 0.025 + 6e-5 * np.asarray(b, float) + 9e-5 * np.asarray(p, float)


def small(b, p):
    return 0.006 + 2e-5 * np.asarray(b, float) + 4e-5 * np.asarray(p, float)


def moe(b, p):
    return 0.012 + 1.5e-3 * np.sqrt(np.asarray(b, float)) + 5e-5 * np.asarray(p, float)


def roof(b, p):
    return np.maximum(0.020 + 2e-5 * np.asarray(b, float), 4.5e-5 * (np.asarray(b, float) + np.asarray(p, float)))


def llama405b(b, p):
    # held out (not used while changing the model): a 405B on 8 GPUs, roofline plus 3 ms of all-reduce a step
    b, p = np.asarray(b, float), np.asarray(p, float)
    return np.maximum(0.032 + 3e-5 * b, 6.5e-5 * (b + p)) + 0.003


def moe_1gpu(b, p):
    # held out: a small MoE on one GPU, sub-linear decode under a compute roof, a 4096-token budget
    b, p = np.asarray(b, float), np.asarray(p, float)
    return np.maximum(0.008 + 6e-4 * np.sqrt(b), 2.5e-5 * (b + p))


def dense32b_tp2(b, p):
    # held out, added with the co-batching prompt wait and the busy-period TPOT (never used to change the model): a 32B
    # dense on 2 GPUs, 4000-token prompts in a 2048-token budget (two chunks each): 32 GB of weights a GPU at ~3 TB/s
    # (10.7 ms), 0.19 ms of KV a sequence, 54 us a token of compute, 1.5 ms of all-reduce a step
    b, p = np.asarray(b, float), np.asarray(p, float)
    return np.maximum(0.0107 + 1.9e-4 * b, 5.4e-5 * (b + p)) + 0.0015


def dense8b_l40s(b, p):
    # held out, added with the per-step co-batching and the in-service prompt's leftover (2026-12-08, defined before
    # any result of it was computed): an 8B dense on one L40S, 16 GB of bf16 weights at ~0.7 of 864 GB/s (23 ms),
    # 25 us of KV a sequence, 0.11 ms a token of compute (16 GFLOP at ~150 TFLOPS), 0.5 ms of launch overhead, a
    # 2048-token budget
    b, p = np.asarray(b, float), np.asarray(p, float)
    return np.maximum(0.023 + 2.5e-5 * b, 1.1e-4 * (b + p)) + 0.0005


def moe_tp2(b, p):
    # held out, added with dense8b_l40s: a Mixtral-like MoE on 2 GPUs, the experts' weights read grow sub-linearly with
    # the batch (12 ms + 0.9 ms x sqrt(b)), 35 us a token of compute, 2 ms of all-reduce a step
    b, p = np.asarray(b, float), np.asarray(p, float)
    return np.maximum(0.012 + 9e-4 * np.sqrt(b), 3.5e-5 * (b + p)) + 0.002


# name: (step, input tokens, output tokens, max_batch, token budget)
CASES = {"dense70b": (dense, 1000, 250, 64, 8192), "small_longprompt": (small, 6000, 200, 128, 8192),
         "moe": (moe, 1500, 300, 128, 8192), "roofline": (roof, 1200, 200, 64, 8192)}
# step functions the model was not tuned on (added after the model changes, their figures reported separately)
HELD_OUT = {"llama405b_tp8": (llama405b, 2000, 400, 128, 8192), "moe_1gpu": (moe_1gpu, 800, 500, 256, 4096),
            "dense32b_tp2": (dense32b_tp2, 4000, 300, 64, 2048),
            "dense8b_l40s": (dense8b_l40s, 1500, 400, 64, 2048), "moe_tp2": (moe_tp2, 3000, 250, 96, 8192)}
ALL_CASES = CASES | HELD_OUT
SLOW = os.environ.get("PLANNER_SLOW_TESTS") == "1"


def _compare(name: str, util: float, cv: float, n_requests: int) -> dict[str, float]:
    f, inp, out, b, budget = ALL_CASES[name]
    sat = float(saturation_rate_per_s(f, input_tokens=inp, output_tokens=out, max_batch=b, token_budget=budget,
                                      input_tokens_cv=cv)[0])
    rate = util * sat
    lat = latency_percentiles(f, rate_per_s=rate, input_tokens=inp, output_tokens=out, max_batch=b,
                              token_budget=budget, input_tokens_cv=cv, output_tokens_cv=cv)
    sim = simulate(lambda d, p: float(f(d, p)), rate_per_s=rate, input_tokens=inp, output_tokens=out, max_batch=b,
                   token_budget=budget, n_requests=n_requests, seed=1, input_tokens_cv=cv, output_tokens_cv=cv)
    return {f"{w}_p{round(q * 100)}": float(getattr(lat, f"{w}_at")(q)[0]) / sim.percentile(w, q) - 1.0
            for w in ("ttft", "tpot") for q in (0.5, 0.95, 0.99)}


# The cells of the sweep (step function, length CV, utilisation) where the analytic percentile misses the simulation
# by more than 15 % (200,000 simulated requests, seed 1; docs/queueing.md tabulates every cell). Every other
# percentile of every cell must stay within 15 %.
KNOWN_MISSES: dict[tuple[str, float, float], set[str]] = {
    ("small_longprompt", 1.0, 0.9): {"tpot_p95"},
}
# the held-out step functions' misses (same sweep)
HELD_OUT_MISSES: dict[tuple[str, float, float], set[str]] = {
    ("moe_1gpu", 0.0, 0.9): {"ttft_p99"},
    ("moe_1gpu", 1.0, 0.9): {"ttft_p99", "tpot_p99"},
    ("dense32b_tp2", 0.0, 0.3): {"ttft_p99"},
    ("dense32b_tp2", 0.0, 0.5): {"ttft_p99"},
    ("dense32b_tp2", 1.0, 0.9): {"tpot_p95"},
    ("dense8b_l40s", 1.0, 0.9): {"tpot_p99"},
    ("moe_tp2", 0.0, 0.9): {"ttft_p95"},
}
SIM_REQUESTS = 200_000  # at 0.9 utilisation 20,000 requests leave the simulated p95/p99 TTFT +-15 % between seeds
# The default run: variable lengths, 0.9 utilisation and the budget-bound long prompts among them
DEFAULT_CELLS = [("dense70b", 0.0, 0.9), ("dense70b", 1.0, 0.5), ("moe", 0.0, 0.9), ("moe", 1.0, 0.9),
                 ("small_longprompt", 0.0, 0.3), ("small_longprompt", 1.0, 0.9), ("roofline", 0.0, 0.5),
                 ("roofline", 1.0, 0.3), ("dense32b_tp2", 1.0, 0.5)]


def _check_cell(name: str, cv: float, util: float) -> None:
    err = _compare(name, util, cv, SIM_REQUESTS)
    known = (KNOWN_MISSES | HELD_OUT_MISSES).get((name, cv, util), set())
    bad = {k: f"{e:+.0%}" for k, e in err.items() if abs(e) > 0.15 and k not in known}
    assert not bad, f"{name} cv={cv} u={util}: {bad}"


@pytest.mark.parametrize("name, cv, util", DEFAULT_CELLS)
def test_analytic_matches_simulation(name, cv, util):
    _check_cell(name, cv, util)


@pytest.mark.skipif(not SLOW, reason="set PLANNER_SLOW_TESTS=1")
@pytest.mark.parametrize("name", list(ALL_CASES))
@pytest.mark.parametrize("cv", [0.0, 1.0])
@pytest.mark.parametrize("util", [0.3, 0.5, 0.7, 0.9])
def test_analytic_matches_simulation_sweep(name, cv, util):
    # the target over every cell: each p50/p95/p99 within 15 % except the listed misses
    _check_cell(name, cv, util)


def test_known_misses_are_in_the_sweep():
    assert set(DEFAULT_CELLS) <= {(n, c, u) for n in ALL_CASES for c in (0.0, 1.0) for u in (0.3, 0.5, 0.7, 0.9)}
    names = {f"{w}_p{q}" for w in ("ttft", "tpot") for q in (50, 95, 99)}
    assert all(k[0] in CASES and v <= names for k, v in KNOWN_MISSES.items())
    assert all(k[0] in HELD_OUT and v <= names for k, v in HELD_OUT_MISSES.items())


@pytest.mark.parametrize("name, cv", [("roofline", 0.0), ("roofline", 1.0), ("moe_1gpu", 0.0), ("moe_1gpu", 1.0),
                                      ("dense70b", 1.0)])
def test_saturation_is_the_simulated_throughput_at_overload(name, cv):
    # at 1.5 x the analytic saturation the simulated engine runs a full batch with a backlog: its throughput is the
    # saturation rate. A roofline step's prompts ride free under the decode's memory time once a step, so two prompts
    # in one step cost more than two apart: whole prompts cluster (a long step draws more into the next), and the mean
    # step over an even spread (the model before the clustering chain: roofline 9.79 req/s, 6.5 % above the simulated
    # 9.19) overstates the rate. Within 5 %
    f, inp, out, b, budget = ALL_CASES[name]
    sat = float(saturation_rate_per_s(f, input_tokens=inp, output_tokens=out, max_batch=b, token_budget=budget,
                                      input_tokens_cv=cv)[0])
    n = 30_000
    sim = simulate(lambda d, p: float(f(d, p)), rate_per_s=1.5 * sat, input_tokens=inp, output_tokens=out, max_batch=b,
                   token_budget=budget, n_requests=n, seed=1, input_tokens_cv=cv, output_tokens_cv=cv)
    assert sim.ttft_s[-1] > 5 * sim.ttft_s[0]  # a growing backlog: the batch stays full to the end
    assert n / sim.simulated_s == pytest.approx(sat, rel=0.05)


@pytest.mark.parametrize("name, cv", [(n, c) for n in ("roofline", "llama405b_tp8", "moe_1gpu", "dense32b_tp2")
                                      for c in (0.0, 1.0)])
def test_mean_step_is_the_simulated_one_at_high_load(name, cv):
    # the running batch's mean step at 0.9 utilisation (the fixed point plus the clustering excess and its feedback)
    # against the simulated busy time per step, 50,000 requests: within 4 %. Steps not linear in the prompt tokens
    # (rooflines), where the clustering excess is not zero: its feedback 1 / (1 - h') takes the slope of h at the
    # fixed point. With the slope from Illinois's halved end weights instead (the model before 2026-12-08), moe_1gpu
    # came out +7 % (fixed lengths) and +15 % (CV 1), dense32b_tp2 CV 1 -7 %
    from planner.perf.queueing import _steady

    f, inp, out, b, budget = ALL_CASES[name]
    sat = float(saturation_rate_per_s(f, input_tokens=inp, output_tokens=out, max_batch=b, token_budget=budget,
                                      input_tokens_cv=cv)[0])
    one = np.ones(1)
    _, tau = _steady(f, 0.9 * sat * one, inp * one, out * one, b * one, budget * one, cv * one)
    sim = simulate(lambda d, p: float(f(d, p)), rate_per_s=0.9 * sat, input_tokens=inp, output_tokens=out,
                   max_batch=b, token_budget=budget, n_requests=50_000, seed=1, input_tokens_cv=cv,
                   output_tokens_cv=cv)
    assert float(tau[0]) == pytest.approx(sim.mean_step_s, rel=0.04)


def test_linear_step_saturation_by_hand():
    # a step linear in the prompt tokens has no clustering excess: full batch b = 64, P = 1000, O = 250 -> the batch
    # retires 64 / 250 = 0.256 requests a step, 256 prompt tokens a step, mean step 25 + 0.06 x 64 + 0.09 x 256 =
    # 51.88 ms, rate 64 / (250 x 0.05188) = 4.9345 req/s; the budget would allow (8192 - 64) / (1000 x step(64, 8128))
    # = 8128 / (1000 x 0.76036) = 10.69 req/s, so the batch binds
    assert saturation_rate_per_s(dense, input_tokens=1000, output_tokens=250, max_batch=64, token_budget=8192)[0] == (
        pytest.approx(64 / (250 * 0.05188), rel=1e-9))


def test_steady_state_is_the_fixed_point_near_saturation():
    # the running batch's fixed point n = rate O tau, tau = mean step at n: false position solves it where plain
    # iteration crawls (its error shrinks as the slope (~ rho) to the power of the passes); at 0.97 of saturation the
    # mean step it returns reproduces itself to 1e-9 (linear steps: the clustering excess is zero)
    from planner.perf.queueing import _steady, chunked_step_s

    rng = np.random.default_rng(5)
    n = 500
    a, bb, c = rng.uniform(0.005, 0.05, n), rng.uniform(1e-5, 2e-4, n), rng.uniform(1e-5, 2e-4, n)

    def f(b, p):
        return a + bb * b + c * p

    inp, out = rng.uniform(100, 8000, n), rng.uniform(50, 1000, n)
    mb, budget = rng.integers(8, 256, n).astype(float), np.full(n, 8192.0)
    rate = 0.97 * saturation_rate_per_s(f, input_tokens=inp, output_tokens=out, max_batch=mb, token_budget=budget)
    nbar, tau = _steady(f, rate, inp, out, mb, budget, np.zeros(n))
    again = chunked_step_s(f, np.maximum(nbar, 1.0), rate * inp * tau, inp, budget)
    assert np.max(np.abs(again / tau - 1.0)) < 1e-9


def test_in_step_residual_by_hand():
    # the in-service prompt's residual service that lies in the running step. A prompt that fits one full-budget step
    # (service x <= step) starts at a step boundary and ends inside that step: all of its mean residual x / 2 is the
    # running step's. x = 1.5 steps (k = 1 full step before the last): an arrival during the first step (probability
    # 1 / 1.5) finds the 0.5 step of the second left beyond it, E[leftover] = step (k x - step k (k + 1) / 2) / x =
    # (1.5 - 1) / 1.5 = 1/3 step, so 0.75 - 1/3 = 0.41667 steps. Lognormal prompts far inside one step (mean 1 % of
    # it, CV 1): the mean residual x (1 + cv^2) / 2 = 0.01
    from planner.perf.queueing import _in_step_residual_s

    step = np.ones(3)
    got = _in_step_residual_s(np.array([0.4, 1.5, 3.0]), np.zeros(3), step)
    assert got == pytest.approx([0.2, 0.75 - 1 / 3, 1.5 - (3 * 3 - 3 * 4 / 2) / 3])  # x = 3: leftovers 2, 1, 0
    assert _in_step_residual_s(np.array([0.01]), np.array([1.0]), np.ones(1))[0] == pytest.approx(0.01, rel=1e-9)
    # a CV-1 mean of 1.5 steps: its long prompts leave more of themselves beyond the running step than fixed ones
    vary = _in_step_residual_s(np.array([1.5]), np.array([1.0]), np.ones(1))[0]
    assert 0.0 < vary < 1.5  # below the whole mean residual 1.5 (1 + 1) / 2


def test_vanishing_load_limits():
    # step = 20 ms + 0.1 ms x b + 0.1 ms x p; a 500-token prompt alone: step(0, 500) = 20 + 50 = 70 ms, which emits
    # the first token; TPOT alone: step(1, 0) = 20.1 ms
    def f(b, p):
        return 0.02 + 1e-4 * np.asarray(b, float) + 1e-4 * np.asarray(p, float)

    lat = latency_percentiles(f, rate_per_s=1e-6, input_tokens=500, output_tokens=100, max_batch=32, token_budget=8192)
    for q in PERCENTILES:
        assert lat.ttft_at(q)[0] == pytest.approx(0.070, rel=1e-3)
        assert lat.tpot_at(q)[0] == pytest.approx(0.0201, rel=1e-3)
    sim = simulate(lambda b, p: float(f(b, p)), rate_per_s=1e-3, input_tokens=500, output_tokens=100, max_batch=32,
                   token_budget=8192, n_requests=200)
    assert sim.percentile("ttft", 0.5) == pytest.approx(0.070, rel=1e-9)
    assert sim.percentile("tpot", 0.5) == pytest.approx(0.0201, rel=1e-9)


def test_ttft_quantiles_are_those_of_the_sum():
    # constant 50 ms steps, 100-token prompts, 10 output tokens, 4 requests/s, 1,000 slots, a 1e6-token budget:
    # running batch n = rate x O x step = 4 x 10 x 0.05 = 2, so the engine is busy with probability
    # 1 - e^-2 = 0.8647; no slot wait (2 erlangs on 1,000 slots) and a negligible prompt wait (rho = 4 x 100 x 0.05
    # / 1e6 = 2e-5). TTFT = the prompt's own step (0.05 s) + the residual of the running step, U(0, 0.05) when busy:
    # P(TTFT > t) = 0.8647 x (1 - (t - 0.05) / 0.05), so t_q = 0.05 + 0.05 x (1 - (1 - q) / 0.8647):
    # p50 0.07109, p90 0.09422, p95 0.09711, p99 0.09942 s (adding the parts' quantiles would give p50 0.075 s)
    def f(b, p):
        return np.full(np.broadcast(np.asarray(b), np.asarray(p)).shape, 0.05)

    kw = dict(input_tokens=100, output_tokens=10, max_batch=1000, token_budget=1_000_000)
    lat = latency_percentiles(f, rate_per_s=4.0, **kw)
    busy = 1.0 - np.exp(-2.0)
    assert lat.running_batch_mean[0] == pytest.approx(2.0)
    for q in PERCENTILES:
        assert lat.ttft_at(q)[0] == pytest.approx(0.05 + 0.05 * (1.0 - (1.0 - q) / busy), rel=0.01)
    # mean TTFT = 0.05 + 0.8647 x 0.025 = 0.07162 s; mean TPOT = the 50 ms step
    ttft_mean, tpot_mean, util = mean_latency_s(f, rate_per_s=4.0, **kw)
    assert ttft_mean[0] == pytest.approx(0.05 + busy * 0.025, rel=0.01) and tpot_mean[0] == pytest.approx(0.05)
    sim = simulate(f, rate_per_s=4.0, n_requests=20_000, seed=4, **kw)
    assert float(np.mean(sim.ttft_s)) == pytest.approx(ttft_mean[0], rel=0.02)


def test_constant_step_single_slot_is_md1():
    # constant 50 ms step, max_batch 1, one output token: each request is served by one 50 ms step -> M/D/1.
    # Pollaczek-Khinchine mean wait W = rate s^2 / (2 (1 - rho)); rate 10/s, s = 0.05: rho = 0.5,
    # W = 10 x 0.0025 / (2 x 0.5) = 0.025 s, mean TTFT = W + s = 0.075 s
    def f(b, p):
        return np.full(np.broadcast(np.asarray(b), np.asarray(p)).shape, 0.05)

    assert saturation_rate_per_s(f, input_tokens=100, output_tokens=1, max_batch=1, token_budget=8192)[0] == (
        pytest.approx(20.0))
    sim = simulate(f, rate_per_s=10.0, input_tokens=100, output_tokens=1, max_batch=1, token_budget=8192,
                   n_requests=20_000, seed=3)
    assert float(np.mean(sim.ttft_s)) == pytest.approx(0.075, rel=0.04)
    lat = latency_percentiles(f, rate_per_s=10.0, input_tokens=100, output_tokens=1, max_batch=1, token_budget=8192)
    assert lat.utilisation_frac[0] == pytest.approx(0.5)
    # M/D/1 at rho 0.5: P(no wait) = 0.5, so the median TTFT is one step plus at most a small wait
    assert 0.05 <= lat.ttft_p50_s[0] <= 0.075


@settings(max_examples=60, deadline=None)
@given(rate_frac=st.floats(0.01, 0.99), inp=st.floats(1, 20_000), out=st.floats(1, 4000),
       b=st.integers(1, 512), budget=st.integers(256, 16_384), cv=st.floats(0, 2))
def test_quantiles_ordered(rate_frac, inp, out, b, budget, cv):
    kw = dict(input_tokens=inp, output_tokens=out, max_batch=b, token_budget=budget)
    sat = saturation_rate_per_s(dense, **kw)[0]
    lat = latency_percentiles(dense, rate_per_s=rate_frac * sat, input_tokens_cv=cv, output_tokens_cv=cv, **kw)
    assert isinstance(lat, LatencyPercentiles)
    for w in ("ttft", "tpot"):
        vals = [getattr(lat, f"{w}_at")(q)[0] for q in PERCENTILES]
        assert all(np.isfinite(vals)) and vals == sorted(vals), (w, vals)
    assert bool(lat.stable[0]) and lat.utilisation_frac[0] < 1


def test_unstable_beyond_saturation():
    lat = latency_percentiles(dense, rate_per_s=[1.0, 100.0], input_tokens=1000, output_tokens=250, max_batch=64,
                              token_budget=8192)
    assert list(lat.stable) == [True, False] and np.isinf(lat.ttft_p99_s[1])


def test_max_rate_meeting_slo():
    inp = np.array([1000.0, 1000.0, 1000.0, 12_000.0])
    out = np.array([250.0, 250.0, 250.0, 200.0])
    b = np.array([64.0, 64.0, 8.0, 128.0])
    kw = dict(input_tokens=inp, output_tokens=out, max_batch=b, token_budget=8192)
    rate, bound = max_rate_meeting_slo(dense, ttft_target_s=1.0, tpot_target_s=0.045, percentile=0.95, **kw)
    lat = latency_percentiles(dense, rate_per_s=np.maximum(rate, 1e-9), **kw)
    assert np.all(lat.utilisation_frac[rate > 0] < 1)
    ok = rate > 0
    # a 12 000-token prompt needs two chunks even alone: step(0, 8192) + step(0, 3808) = 0.762 + 0.368 s > 1 s
    assert ok[:3].all() and bound[3] == "ttft" and rate[3] == 0
    sub = {k: v[ok] if np.ndim(v) else v for k, v in kw.items()}
    over = latency_percentiles(dense, rate_per_s=1.1 * rate[ok], **sub)
    missed = (over.ttft_p95_s > 1.0) | (over.tpot_p95_s > 0.045) | ~over.stable
    assert missed[bound[ok] != "saturation"].all()
    # spot check in the simulation: the rate found for the first configuration meets the targets (15 % model error)
    sim = simulate(lambda d, p: float(dense(d, p)), rate_per_s=float(rate[0]), input_tokens=1000, output_tokens=250,
                   max_batch=64, token_budget=8192, n_requests=6000, seed=2)
    assert sim.percentile("ttft", 0.95) <= 1.15 * 1.0 and sim.percentile("tpot", 0.95) <= 1.15 * 0.045


def test_max_rate_per_configuration_targets():
    # one target per configuration gives each configuration the rate its own scalar target gives
    kw = dict(input_tokens=1000, output_tokens=250, max_batch=64, token_budget=8192)
    both, _ = max_rate_meeting_slo(dense, ttft_target_s=np.array([0.5, 2.0]), tpot_target_s=np.array([0.04, 0.06]),
                                   percentile=0.95, **kw)
    one, _ = max_rate_meeting_slo(dense, ttft_target_s=0.5, tpot_target_s=0.04, percentile=0.95, **kw)
    two, _ = max_rate_meeting_slo(dense, ttft_target_s=2.0, tpot_target_s=0.06, percentile=0.95, **kw)
    assert both[0] == pytest.approx(one[0]) and both[1] == pytest.approx(two[0]) and both[0] < both[1]
    with pytest.raises(InvalidInputError, match="target"):
        max_rate_meeting_slo(dense, ttft_target_s=np.array([1.0, -1.0]), tpot_target_s=0.05, percentile=0.9, **kw)


@pytest.mark.parametrize("kwargs, field", [
    (dict(rate_per_s=0.0), "rate_per_s"), (dict(rate_per_s=-1.0), "rate_per_s"),
    (dict(rate_per_s=float("nan")), "rate_per_s"), (dict(input_tokens=float("nan")), "input_tokens"),
    (dict(max_batch=0), "max_batch"), (dict(token_budget=0), "token_budget"),
    (dict(input_tokens_cv=-1.0), "input_tokens_cv"),
])
def test_bad_inputs(kwargs, field):
    kw = dict(rate_per_s=1.0, input_tokens=1000, output_tokens=250, max_batch=64, token_budget=8192) | kwargs
    with pytest.raises(InvalidInputError, match=field):
        latency_percentiles(dense, **kw)


def test_bad_percentile_and_targets():
    lat = latency_percentiles(dense, rate_per_s=1.0, input_tokens=1000, output_tokens=250, max_batch=64,
                              token_budget=8192)
    with pytest.raises(InvalidInputError, match="percentile"):
        lat.ttft_at(0.8)
    kw = dict(input_tokens=1000, output_tokens=250, max_batch=64, token_budget=8192)
    with pytest.raises(InvalidInputError, match="percentile"):
        max_rate_meeting_slo(dense, ttft_target_s=1.0, tpot_target_s=0.05, percentile=0.999, **kw)
    with pytest.raises(InvalidInputError, match="target"):
        max_rate_meeting_slo(dense, ttft_target_s=float("nan"), tpot_target_s=0.05, percentile=0.9, **kw)
    with pytest.raises(InvalidInputError, match="rate_per_s"):
        simulate(lambda d, p: 0.01, rate_per_s=0.0, input_tokens=10, output_tokens=10, max_batch=1, token_budget=64)


def test_prompt_wait_phases_by_hand():
    # step = 20 ms + 0.1 ms x p (no batch term), P = 100 tokens, O = 10, 4 requests/s, a 10^6-token budget.
    # Mean step: a fraction f = rate P tau / P = rate tau of the steps carries a prompt (30 ms), the rest decode only
    # (20 ms): tau = 0.02 + 0.01 x 4 tau -> tau = 0.02 / 0.96 = 0.0208333 s; running batch n = 4 x 10 x tau = 0.83333.
    # Q: one prompt's service on the spare budget x = P step(n, spare) / spare ~ 100 x 1.00020e-4 = 0.0100020 s,
    # rho = 4 x = 0.0400080, M/G/1 wait given that it waits (fixed lengths, exponential) theta = x / (2 (1 - rho))
    # = 0.00520942 s; less the in-service prompt's mean residual x / 2: P(Q > 0) = rho e^(-(x / 2) / theta)
    # = 0.0400080 x e^-0.959992 = 0.0153189, all of it where the arrival lands in a step carrying a chunk:
    # busy 1 - e^-n = 0.565402, length-biased share of chunk steps f 0.03 / tau = 0.12, so 0.0678482 of arrivals,
    # and P(Q > 0 | chunk step) = 0.0153189 / 0.0678482 = 0.225782.
    # C: E[T] = tau, E[T^2] = f 0.03^2 + (1 - f) 0.02^2 = 0.000441667 (f = 0.0833333), so co-batched arrivals
    # m = rate busy E[T^2] / (2 E[T]) = 4 x 0.565402 x 0.0106 = 0.0239730, P(C > 0) = 1 - e^-m = 0.0236880,
    # E[C] = 0.1 ms x 100 x m = 2.39730e-4 s.
    # Decode-only step: P(W > 0) = P(C > 0) = 0.0236880, E[W] = E[C]. Chunk step: P(W > 0) = 0.0236880 x (1 - 0.225782)
    # + 0.225782 = 0.244122, E[W] = E[C] + 0.225782 theta = 2.39730e-4 + 1.17619e-3 = 1.41592e-3 s
    from planner.perf.queueing import _prompt_wait_phases

    def f(b, p):
        return 0.02 + 1e-4 * np.asarray(p, float) + 0.0 * np.asarray(b, float)

    one = np.ones(1)
    tau = 0.02 / 0.96
    nbar = 4.0 * 10 * tau * one
    spare = 1e6 - nbar
    full, chunk, plain = f(nbar, spare), f(nbar, 100.0), f(nbar, 0.0)
    x = 100.0 * full / spare
    rho = 4.0 * x
    theta = x / (2.0 * (1.0 - rho))
    (in_plain, in_chunk), rates, _ = _prompt_wait_phases(4.0 * one, 100.0 * one, 0.0 * one, nbar, tau * one, spare,
                                                      100.0 * one, plain, chunk, full, rho, theta, 0.0 * one, False)
    assert float(in_plain.sum()) == pytest.approx(0.0236880, rel=1e-4)
    assert float(np.sum(in_plain / rates)) == pytest.approx(2.39730e-4, rel=1e-4)
    assert float(in_chunk.sum()) == pytest.approx(0.244122, rel=1e-4)
    assert float(np.sum(in_chunk / rates)) == pytest.approx(1.41592e-3, rel=1e-4)


def test_slot_wait_of_a_flat_step_is_the_tabulated_mgc():
    # a constant 30 ms step and 1-token prompts: no prefill work rides on the completions (phi = 1 - plain / tau_full
    # = 0) and no request's work lengthens a step (branching 0, peakedness z = 1), and the running batch is the
    # offered load a = 0.9 x 64 = 57.6 (every step 30 ms). So P(S > 0) = Erlang C(64, 57.6) = 0.311, and given a wait
    # the table's cell (CV 1, 64 servers, 0.9): conditional mean factor 0.987 not above the tail factor 0.997, so one
    # exponential stage decaying at (64 / 7.5 - 0.9 x 8.533) / 0.997 = 0.856 / s. The simulated admission waits (seed
    # 1; seeds 2 and 3 move the figure at 1 / gap by -25..0 %) within 30 %; the previous M/D/c factor 0.5 said
    # P(S > 1 / gap) = 0.311 e^-2 = 0.042, less than half the simulated 0.098
    from planner.perf.queueing import _saturation, _slot_wait

    def flat(b, p):
        return np.full(np.broadcast(np.asarray(b), np.asarray(p)).shape, 0.03)

    one = np.ones(1)
    sat, tau_full, plain, *_ = _saturation(flat, one, 250.0 * one, 64.0 * one, 8192.0 * one, 0.0 * one)
    assert sat[0] == pytest.approx(64 / 7.5) and plain[0] == pytest.approx(tau_full[0])
    rate = 0.9 * sat
    log_c, decay, fast = _slot_wait(64.0 * one, rate * 7.5, rate, 7.5 * one, one, plain, tau_full, rate * 7.5, 0 * one)
    gap = 64 / 7.5 - rate[0]
    assert np.exp(log_c[0]) == pytest.approx(0.311, rel=0.01) and decay[0] == pytest.approx(gap / 0.997, rel=0.01)
    assert np.isinf(fast[0])
    sim = simulate(flat, rate_per_s=float(rate[0]), input_tokens=1, output_tokens=250, max_batch=64, token_budget=8192,
                   n_requests=200_000, seed=1, output_tokens_cv=1.0)
    for x in (0.5 / gap, 1.0 / gap):
        assert np.mean(sim.slot_wait_s > x) == pytest.approx(np.exp(log_c[0] - decay[0] * x), rel=0.3)


def test_slot_wait_is_erlang_c_of_the_peaked_engine():
    # Hayward: the slots fill as an Erlang C system with c / z servers at load nbar / z, z = 1 / (1 - m)^2 the
    # peakedness of a branching ratio m. m = 0.5: z = 4; 64 slots, running batch 40: Erlang C(16, 10), by the Erlang B
    # recursion B_k = a B_(k-1) / (k + a B_(k-1)) (B_0 = 1, a = 10) and C = B / (1 - rho (1 - B)), rho = 10 / 16
    from planner.perf.queueing import _slot_wait

    a_, erlang_b = 10.0, 1.0
    for k in range(1, 17):
        erlang_b = a_ * erlang_b / (k + a_ * erlang_b)
    rho = a_ / 16
    erlang_c = erlang_b / (1 - rho * (1 - erlang_b))
    one = np.ones(1)
    # service 10 s, rate 5.76 / s (a = 57.6), full batch 30 ms plain of 40 ms (phi 0.25)
    log_c, _, _ = _slot_wait(64.0 * one, 57.6 * one, 5.76 * one, 10.0 * one, 0 * one, 0.03 * one, 0.04 * one,
                             40.0 * one, 0.5 * one)
    assert np.exp(log_c[0]) == pytest.approx(erlang_c, rel=1e-6)
    assert 0.05 < erlang_c < 0.3  # a real wait probability, not a degenerate one


def test_two_stage_slot_wait_has_the_tables_conditional_quantiles():
    # fixed lengths (service CV 0), 64 slots at 0.9: the table's M/D/c conditional wait has mean factor 0.6186 and tail
    # factor 0.5147 (data/queueing_mgc.csv), quantiles 0.4749 / 1.3269 / 2.5502 at 0.5 / 0.9 / 0.99 (units of
    # 1 / (c mu - lambda)). The two stages (rates 1 / 0.5147 and 1 / (0.6186 - 0.5147)) put P(S > x | S > 0) =
    # (h e^-gx - g e^-hx) / (h - g) at those x at 0.495, 0.095, 0.0088: within 2, 6 and 13 % of 0.5, 0.1 and 0.01
    # (one exponential at the tail's rate: 0.397, 0.076, 0.0070, 21-30 % short)
    from planner.perf.queueing import _slot_wait

    one = np.ones(1)
    service, b, rate = 10.0, 64.0, 0.9 * 6.4
    _, g, h = _slot_wait(b * one, rate * service * one, rate * one, service * one, 0 * one, 0.03 * one, 0.03 * one,
                         rate * service * one, 0 * one)
    gap = b / service - rate
    assert g[0] == pytest.approx(gap / 0.514652, rel=1e-3) and h[0] == pytest.approx(gap / (0.618583 - 0.514652),
                                                                                       rel=1e-3)
    for x, level, tol in ((0.474859, 0.5, 0.02), (1.32691, 0.1, 0.06), (2.55015, 0.01, 0.13)):
        t = x / gap
        tail = (h[0] * np.exp(-g[0] * t) - g[0] * np.exp(-h[0] * t)) / (h[0] - g[0])
        assert tail == pytest.approx(level, rel=tol)
