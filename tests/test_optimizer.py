"""The plan's configuration search: never beaten by brute force, targets held under queueing, policies obeyed."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from planner.errors import PlannerError
from planner.optimizer import QUALITY_POLICIES
from planner.perf import evaluator
from planner.perf.simulation import scalar_step, simulate
from planner.plan import plan
from planner.scenario import Scenario

PRICE = 2.5  # one GPU price: only the configuration differs


def _scenario(**kw) -> Scenario:
    base = dict(model="llama-3.3-70b", gpu="H100-SXM", preset="chat", requests_per_day=300_000,
                gpu_price_usd_per_gpu_hour=PRICE)
    return Scenario(**{**base, **kw})


@pytest.fixture(scope="module")
def default_plan(real_catalog):
    return plan(_scenario(), real_catalog)


def test_default_plan_is_within_2_percent_of_brute_force_over_size_and_precision(real_catalog, default_plan):
    forced = []
    for n, prec in itertools.product((1, 2, 4, 8), ("bf16", "fp8")):
        try:
            forced.append(plan(dataclasses.replace(_scenario(), num_gpus_per_replica=n, precision=prec),
                               real_catalog).headline.monthly_usd)
        except PlannerError:
            continue
    assert forced, "no forced configuration is feasible"
    assert default_plan.headline.monthly_usd <= 1.02 * min(forced)


@pytest.mark.parametrize("speculative", ["off", "eagle3"])
def test_search_equals_exhaustive_one_configuration_at_a_time(real_catalog, speculative):
    # every (engine, precision, kv, GPUs, tp, pp, batch limit) of a small space, each planned alone with the
    # scenario fixing all of it: the search's choice is the cheapest of them (same objective, same tie-break order);
    # also with EAGLE-3 drafts on (Llama-3.3-70B has sourced EAGLE-3 acceptance)
    s = _scenario(engine="vllm", quality_policy="low-risk", requests_per_day=100_000, speculative=speculative)
    whole = plan(dataclasses.replace(s, num_gpus_per_replica=2), real_catalog)
    best = whole.search.best
    assert (whole.estimate.speculative is not None) == (speculative != "off")
    costs = []
    for prec, tp, limit in itertools.product(("bf16", "fp8"), (1, 2), (None, 64)):
        one = dataclasses.replace(s, num_gpus_per_replica=2, precision=prec, tp=tp, pp=2 // tp if tp == 2 else None,
                                  max_num_seqs=limit)
        try:
            p = plan(one, real_catalog)
        except PlannerError:
            continue
        costs.append(p.headline.monthly_usd)
    assert costs and whole.headline.monthly_usd <= min(costs) + 0.01
    assert best.monthly_usd == pytest.approx(whole.headline.monthly_usd, rel=1e-9)


def test_targets_hold_at_the_percentile_under_the_design_load(default_plan):
    p, b = default_plan, default_plan.search.best
    assert b.ttft_s_at_percentile <= p.ttft_target_s * (1 + 1e-6)
    assert b.tpot_s_at_percentile <= p.tpot_target_s * (1 + 1e-6)
    assert b.utilisation_frac < 1
    lat = b.latency
    assert lat["ttft_p50_s"] <= lat["ttft_p90_s"] <= lat["ttft_p95_s"] <= lat["ttft_p99_s"]
    assert lat["tpot_p50_s"] <= lat["tpot_p95_s"] <= lat["tpot_p99_s"]


def test_the_chosen_rate_holds_in_a_simulation(real_catalog, default_plan):
    # the analytic capacity, simulated step by step on the same step function: p95 within 25 % of the targets
    p, b = default_plan, default_plan.search.best
    model = real_catalog.model(p.scenario.model)
    cand = evaluator.candidates(real_catalog, model.arch, model.native_precision,
                                gpus=[real_catalog.gpu(b.gpu_id)], engines=[real_catalog.engine(b.engine)],
                                precisions=[real_catalog.precision(b.precision)],
                                kv_dtypes=[real_catalog.kv_dtype(b.kv_dtype)], gpu_counts=[b.num_gpus_per_replica],
                                layouts=lambda e, g, n: [b.layout], max_num_seqs=b.max_num_seqs)
    step = evaluator.step_time_fn(model.arch, cand, input_tokens=p.estimate.input_tokens,
                                  output_tokens=p.estimate.output_tokens)
    rate = b.capacity_requests_per_s_per_replica / b.layout.dp
    sim = simulate(scalar_step(step), rate_per_s=rate, input_tokens=p.estimate.input_tokens,
                   output_tokens=p.estimate.output_tokens, max_batch=p.estimate.max_concurrency,
                   token_budget=real_catalog.engine(b.engine).max_num_batched_tokens or 8192, n_requests=3000, seed=1)
    assert not sim.saturated
    assert sim.percentile("ttft", 0.95) <= 1.25 * p.ttft_target_s
    assert sim.percentile("tpot", 0.95) <= 1.25 * p.tpot_target_s


def test_fixed_fields_stay_fixed(real_catalog):
    p = plan(_scenario(num_gpus_per_replica=4, precision="bf16", engine="vllm", tp=4), real_catalog)
    b = p.search.best
    assert (b.num_gpus_per_replica, b.precision, b.engine, b.layout.tp) == (4, "bf16", "vllm", 4)
    assert (p.estimate.num_gpus, p.estimate.precision, p.estimate.engine, p.estimate.tp) == (4, "bf16", "vllm", 4)


@pytest.mark.parametrize("policy", ["lossless", "low-risk"])
def test_quality_policy_limits_the_precisions(real_catalog, policy):
    p = plan(_scenario(quality_policy=policy), real_catalog)
    allowed = QUALITY_POLICIES[policy]
    for opt in (p.search.best, *p.search.alternatives):
        prec = real_catalog.precision(opt.precision)
        native = real_catalog.model(p.scenario.model).native_precision
        assert prec.quality_risk in allowed or prec.precision_id == native
    if policy == "lossless":
        assert p.search.best.kv_dtype in ("bf16", "fp16")


def test_default_provider_policy_leaves_out_marketplaces(real_catalog):
    p = plan(Scenario(model="llama-3.1-8b", gpu="H100-SXM"), real_catalog)
    offers = {o.provider: o.provider_class for o in real_catalog.prices_for("H100-SXM")}
    assert offers.get(p.search.best.provider) != "marketplace"
    anywhere = plan(Scenario(model="llama-3.1-8b", gpu="H100-SXM", provider_policy="any"), real_catalog)
    assert anywhere.headline.monthly_usd <= p.headline.monthly_usd


def test_more_traffic_never_costs_less(real_catalog):
    low = plan(_scenario(requests_per_day=100_000), real_catalog).headline.monthly_usd
    high = plan(_scenario(requests_per_day=400_000), real_catalog).headline.monthly_usd
    assert high >= low
    longer = plan(_scenario(input_tokens_mean=1.25 * 1155), real_catalog).headline.monthly_usd
    assert longer >= plan(_scenario(), real_catalog).headline.monthly_usd - 0.01


def test_alternatives_and_explanation(default_plan):
    s = default_plan.search
    assert s.n_configurations >= s.n_fitting >= s.n_meeting_targets > 0
    assert s.explanation[0].startswith("cheapest that meets the targets")
    assert all(a.monthly_usd >= s.best.monthly_usd - 0.01 for a in s.alternatives)
    sizes = {a.num_gpus_per_replica for a in s.alternatives}
    assert sizes - {s.best.num_gpus_per_replica}  # another replica size is costed for comparison


def test_gpu_auto_searches_the_catalog(real_catalog):
    fixed = plan(Scenario(model="llama-3.1-8b", gpu="H100-SXM"), real_catalog)
    auto = plan(Scenario(model="llama-3.1-8b", gpu="auto"), real_catalog)
    assert auto.headline.monthly_usd <= fixed.headline.monthly_usd + 0.01
    assert auto.search.n_configurations > fixed.search.n_configurations
    assert np.isfinite(auto.search.best.usd_per_gpu_hour)


@pytest.mark.parametrize("example", ["chat-llama-3.3-70b-h100.toml", "rag-qwen3-8b-l40s.toml"])
def test_shipped_examples_are_within_2_percent_of_brute_force(real_catalog, example):
    from pathlib import Path

    from planner.scenario import load_scenario

    s = load_scenario(Path(__file__).resolve().parent.parent / "examples" / example)
    s = dataclasses.replace(s, num_gpus_per_replica=None, precision=None)  # what the optimizer may choose
    default = plan(s, real_catalog).headline.monthly_usd
    forced = []
    for n, prec in itertools.product((1, 2, 4, 8), ("bf16", "fp8")):
        try:
            forced.append(plan(dataclasses.replace(s, num_gpus_per_replica=n, precision=prec),
                               real_catalog).headline.monthly_usd)
        except PlannerError:
            continue
    assert forced and default <= 1.02 * min(forced)


def test_simulate_command_reports_percentiles_and_histograms(capsys):
    import json

    from planner.cli import main

    assert main(["simulate", "--requests", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sim = out["simulated"]
    assert sim["ttft_p50_s"] <= sim["ttft_p95_s"] <= sim["ttft_p99_s"]
    assert sum(out["histograms"]["ttft"]["counts"]) == sim["n_requests"]
    assert set(out["analytic"]) >= {"ttft_p95_s", "tpot_p95_s"}


def test_frontier_trades_cost_for_latency(default_plan):
    f = default_plan.search.frontier
    assert f and f[0].monthly_usd == pytest.approx(default_plan.search.best.monthly_usd)
    out = default_plan.estimate.output_tokens
    e2e = [p.ttft_s + (out - 1) * p.tpot_s for p in f]
    assert all(b.monthly_usd >= a.monthly_usd for a, b in zip(f, f[1:], strict=False))
    assert all(b < a for a, b in zip(e2e, e2e[1:], strict=False))


def test_explanation_counts_in_the_right_number():
    from planner.errors import counted

    assert (counted(1, "replica"), counted(2, "GPU"), counted(1_000, "GPU")) == ("1 replica", "2 GPUs", "1,000 GPUs")


# --- speculative decoding inside the search (SearchSpace.speculative) ---

DSV3_TIGHT = dict(model="deepseek-v3", gpu="H200-SXM", preset="chat", requests_per_day=200_000, tpot_target_s=0.03,
                  gpu_price_usd_per_gpu_hour=3.0)


@pytest.fixture(scope="module")
def dsv3_plans(real_catalog):
    return {spec: plan(Scenario(**DSV3_TIGHT, speculative=spec), real_catalog) for spec in ("off", "mtp")}


EXAMPLES = sorted(p.name for p in (Path(__file__).resolve().parent.parent / "examples").iterdir())


@pytest.mark.parametrize("example", [None, *EXAMPLES])
def test_off_searches_with_the_plain_step_bit_for_bit(real_catalog, default_plan, example):
    # speculative off (the default and every shipped example): the search's step model is the evaluator's plain
    # step, and the chosen capacity is the queueing model's rate on that plain step, exactly (no speculative
    # arithmetic on the way), so replicas, GPUs and cost are those of the plain search
    from planner.optimizer import option_candidates, step_time_fn
    from planner.perf.queueing import max_rate_meeting_slo
    from planner.scenario import load_scenario

    p = default_plan if example is None else plan(
        load_scenario(Path(__file__).resolve().parent.parent / "examples" / example), real_catalog)
    b = p.search.best
    assert p.scenario.speculative == "off"
    assert p.estimate.speculative is None
    model = real_catalog.model(p.scenario.model)
    cands = option_candidates(real_catalog, model, b)
    traffic = _traffic_of(p)
    plain = evaluator.step_time_fn(model.arch, cands, input_tokens=traffic.input_tokens,
                                   output_tokens=traffic.output_tokens)
    got = step_time_fn(model.arch, cands, None, traffic)
    for batch, prompt in ((1.0, 0.0), (7.0, 300.0), (64.0, 2048.0)):
        assert np.array_equal(got(np.array([batch]), np.array([prompt])), plain(np.array([batch]), np.array([prompt])))
    # the search takes the engine's per-request overhead off the TTFT target (optimizer._compute_capacities)
    room = max(p.ttft_target_s - (cands[0].profile.request_overhead_ms or 0.0) / 1000.0, 1e-9)
    rate, _ = max_rate_meeting_slo(plain, ttft_target_s=room, tpot_target_s=p.tpot_target_s,
                                   percentile=p.latency_percentile, input_tokens=traffic.prompt_tokens,
                                   output_tokens=traffic.output_tokens, max_batch=[float(p.estimate.max_concurrency)],
                                   token_budget=[float(real_catalog.engine(b.engine).max_num_batched_tokens or 1e12)],
                                   input_tokens_cv=traffic.input_tokens_cv, output_tokens_cv=traffic.output_tokens_cv)
    assert b.capacity_requests_per_s_per_replica == b.layout.dp * float(rate[0])


def _traffic_of(p):
    from planner.plan import _traffic

    return _traffic(p.scenario, p.workload, p.request_sizes, p.headline_tier, False)


def test_mtp_at_a_tight_tpot_needs_no_more_gpus_and_serves_more_per_replica(dsv3_plans):
    off, mtp = dsv3_plans["off"], dsv3_plans["mtp"]
    assert off.search.best.bound_by == "tpot_target_s"  # latency-bound: the TPOT target caps the rate
    assert mtp.search.best.total_gpus <= off.search.best.total_gpus
    assert mtp.headline.monthly_usd <= off.headline.monthly_usd + 0.01
    assert mtp.capacity_requests_per_s_per_replica >= off.capacity_requests_per_s_per_replica
    assert mtp.estimate.speculative["applied"] and mtp.estimate.speculative["method"] == "mtp"
    assert off.estimate.speculative is None
    # the targets still hold at the percentile under the design load, with the speculative step
    assert mtp.search.best.tpot_s_at_percentile <= mtp.tpot_target_s * (1 + 1e-6)


def test_the_same_configuration_serves_at_least_as_much_with_mtp(real_catalog, dsv3_plans):
    # off's own choice forced, mtp on: min(plain, speculative) per token never slows a step, so the rate can only rise
    b = dsv3_plans["off"].search.best
    fixed = dict(engine=b.engine, precision=b.precision, kv_dtype=b.kv_dtype,
                 num_gpus_per_replica=b.num_gpus_per_replica, tp=b.layout.tp, pp=b.layout.pp,
                 max_num_seqs=b.max_num_seqs)
    off = plan(Scenario(**DSV3_TIGHT, **fixed), real_catalog)
    mtp = plan(Scenario(**DSV3_TIGHT, **fixed, speculative="mtp"), real_catalog)
    assert mtp.capacity_requests_per_s_per_replica >= off.capacity_requests_per_s_per_replica
    assert mtp.search.best.total_gpus <= off.search.best.total_gpus


def test_the_plans_capacity_is_what_its_estimate_implies(real_catalog, dsv3_plans):
    # the estimate's speculative setting (draft tokens, acceptance) and the chosen configuration, re-run through the
    # queueing model on `speculative.step_time_fn` alone, give the plan's capacity; at the operating concurrency the
    # estimate's speedup is the plain step over the speculative step per token of that same step model
    from planner.optimizer import option_candidates
    from planner.perf import speculative as sp
    from planner.perf.queueing import max_rate_meeting_slo

    p = dsv3_plans["mtp"]
    b, est = p.search.best, p.estimate
    model = real_catalog.model(p.scenario.model)
    cands = option_candidates(real_catalog, model, b)
    setting = sp.SpeculativeSetting("mtp", est.speculative["draft_tokens"], est.speculative["acceptance_frac"], "")
    traffic = _traffic_of(p)
    kw = dict(input_tokens=traffic.input_tokens, output_tokens=traffic.output_tokens)
    spec_fn = sp.step_time_fn(model.arch, cands, setting, **kw)
    plain_fn = sp.step_time_fn(model.arch, cands, None, **kw)
    room = max(p.ttft_target_s - (cands[0].profile.request_overhead_ms or 0.0) / 1000.0, 1e-9)  # as the search
    rate, _ = max_rate_meeting_slo(spec_fn, ttft_target_s=room, tpot_target_s=p.tpot_target_s,
                                   percentile=p.latency_percentile, input_tokens=traffic.prompt_tokens,
                                   output_tokens=traffic.output_tokens, max_batch=[float(est.max_concurrency)],
                                   token_budget=[float(real_catalog.engine(b.engine).max_num_batched_tokens or 1e12)],
                                   input_tokens_cv=traffic.input_tokens_cv, output_tokens_cv=traffic.output_tokens_cv)
    assert p.capacity_requests_per_s_per_replica == pytest.approx(b.layout.dp * float(rate[0]), rel=1e-12)
    n, zero = np.array([float(est.concurrency)]), np.zeros(1)
    assert est.speculative["speedup_factor"] == pytest.approx(float(plain_fn(n, zero)[0] / spec_fn(n, zero)[0]),
                                                              rel=1e-9)


@pytest.mark.parametrize(("extra", "match"), [
    (dict(model="llama-3.1-8b", speculative="mtp"), "does not ship mtp"),
    (dict(model="llama-3.1-8b", engine="llama.cpp", precision="q4_k_m", speculative="eagle3"),
     "modelled for vllm, sglang, trtllm"),
    (dict(model="llama-3.1-8b", speculative_draft_tokens=3), "need speculative mtp or eagle3"),
])
def test_a_refused_speculative_setting_is_one_invalid_input_error(real_catalog, extra, match):
    from planner.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=match) as err:
        plan(Scenario(gpu="H100-SXM", **extra), real_catalog)
    assert "\n" not in str(err.value)


def test_request_overhead_is_on_every_ttft_and_off_the_target(tiny_catalog):
    """A profile's per-request overhead (API server, tokenisation) adds to every TTFT percentile of the chosen
    configuration and leaves that much less of the TTFT target to queueing and prefill."""
    fixed = dict(model="tiny", gpu="TEST-GPU", api_id="test-api", num_gpus_per_replica=1, precision="fp8",
                 requests_per_day=50_000, peak_to_average_ratio=1.0)

    def with_overhead(ms):
        return dataclasses.replace(tiny_catalog, efficiency=tuple(
            dataclasses.replace(p, request_overhead_ms=ms) for p in tiny_catalog.efficiency))

    base, slow = plan(Scenario(**fixed), with_overhead(0.0)), plan(Scenario(**fixed), with_overhead(100.0))
    assert slow.search.best.layout == base.search.best.layout
    for q in (50, 90, 95, 99):
        assert slow.search.best.latency[f"ttft_p{q}_s"] == pytest.approx(base.search.best.latency[f"ttft_p{q}_s"] + 0.1)
        assert slow.search.best.latency[f"tpot_p{q}_s"] == pytest.approx(base.search.best.latency[f"tpot_p{q}_s"])
    # a TTFT target below the overhead leaves no room: unreachable
    with pytest.raises(PlannerError):
        plan(Scenario(**fixed, ttft_target_s=0.09), with_overhead(100.0))


def test_latency_ties_within_one_percent_go_to_the_simpler_layout(monkeypatch):
    # four options at the same cost on the same GPUs: the fastest is PP2 (1.000 s), TP1 x DP is 0.5 % slower
    # (a tie: LAYOUT_TIE_FRAC 1 %) and wins for being simpler; TP2 is 0.8 % slower, TP1 with EP 3 % slower (no tie)
    import types

    import numpy as np

    from planner import optimizer
    from planner.perf.evaluator import Layout

    layouts = [Layout(tp=1, pp=2), Layout(tp=1, dp=2), Layout(tp=2), Layout(tp=2, ep=True)]
    e2e = np.array([1.000, 1.005, 1.008, 1.030])
    cs = types.SimpleNamespace(**{k: np.array([getattr(lay, k) for lay in layouts]) for k in ("tp", "pp", "ep",
                                                                                              "attn_dp")})
    monkeypatch.setattr(optimizer, "_design_load_latency", lambda *a, **k: "lat")
    monkeypatch.setattr(optimizer, "_end_to_end_s", lambda lat, traffic, q: e2e)
    order = np.arange(4)
    ranked, _ = optimizer._latency_tie_break(None, cs, order, np.full(4, 100.0), np.full(4, 2), None, None,
                                             types.SimpleNamespace(percentile=0.95), None, None)
    # the three within 1 %: simplest first (PP1 before PP2; then fewer TP ranks), then the one outside the tie
    assert list(ranked) == [1, 2, 0, 3]


def test_no_forced_batch_limit_beats_the_default(real_catalog):
    # 70B chat at 1.45M requests/day: with only the coarse limits (engine default, 256, 64, 16) the search chose
    # 12 x H100 (TP2 x PP2 x 3 replicas, 21,900 USD/month) where forcing max_num_seqs = 512 gave 8 x H100 as TP1 x PP8
    # (14,600): the finer limits (FINE_BATCH_LIMITS, branch and bound) must find whatever a forced limit finds
    s = _scenario(requests_per_day=1_450_000)
    default = plan(s, real_catalog).headline.monthly_usd
    forced = []
    for limit in (96, 192, 384, 512, 768, 1024):
        try:
            forced.append(plan(dataclasses.replace(s, max_num_seqs=limit), real_catalog).headline.monthly_usd)
        except PlannerError:
            continue
    assert forced and default <= min(forced) + 0.01


def test_the_branch_and_bound_rate_bound_holds_on_every_configuration(real_catalog):
    # `_with_groups`' bound (full-batch completions at the widest batch that fits, and the prompts one decode
    # sequence's spare budget admits) must lie above every SLO-bound rate the search computed in the group, at any
    # batch limit, or the refinement could skip a cheaper configuration
    from planner import optimizer

    optimizer._CAPACITY_CACHE.clear()
    for rpd in (300_000, 2_000_000):
        plan(_scenario(requests_per_day=rpd), real_catalog)
        plan(_scenario(model="qwen3-30b-a3b", preset="rag", requests_per_day=rpd), real_catalog)
    checked = 0
    for _, found in optimizer._CAPACITY_CACHE.values():
        if found.group is None:
            continue
        assert np.all(found.cap <= found.group_rate_bound[found.group] * (1 + 1e-9))
        checked += len(found.cap)
    assert checked > 1000
