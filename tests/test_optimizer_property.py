"""Property: over random scenarios, brute force never beats the default plan (issue 10, "done when").

For each drawn scenario (model, GPU, volume, request lengths, latency targets and percentile, one
GPU price everywhere), the default plan's monthly cost must be within 2 % of the cheapest plan
found by forcing num_gpus_per_replica in {1, 2, 4, 8} x precision in {bf16, fp8}; where the
default plan is infeasible, every forced plan must be too. Its latency percentiles are ordered
and the peak utilisation stays below 1.

CI runs a small, derandomised sample; `PLANNER_LONG_PROPERTIES=1` runs 100 examples.
"""

from __future__ import annotations

import dataclasses
import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.plan import plan
from planner.scenario import Scenario

LONG = os.environ.get("PLANNER_LONG_PROPERTIES") == "1"
PRICE = 2.5  # one GPU price for every configuration: only the configuration differs
MODELS = ("meta-llama/Llama-3.3-70B-Instruct", "Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-32B")
GPUS = ("H100-SXM", "H200", "L40S", "A100-80GB")

scenarios = st.builds(
    lambda model, gpu, volume, prompt, output, ttft, tpot, pct: Scenario(
        model=model, gpu=gpu, requests_per_day=volume, input_tokens_mean=prompt, output_tokens_mean=output,
        ttft_target_s=ttft, tpot_target_s=tpot, latency_percentile=pct, gpu_price_usd_per_gpu_hour=PRICE),
    st.sampled_from(MODELS), st.sampled_from(GPUS),
    st.floats(1e4, 5e6), st.floats(100, 8000), st.floats(50, 1500),
    st.sampled_from((0.5, 1.0, 2.0, 5.0)), st.sampled_from((0.03, 0.05, 0.1)),
    st.sampled_from((0.5, 0.9, 0.95, 0.99)))


def _cost_or_none(scenario: Scenario, catalog) -> tuple[float | None, object | None]:
    try:
        result = plan(scenario, catalog)
    except PlannerError:
        return None, None
    return result.headline.monthly_usd, result


@settings(max_examples=100 if LONG else 8, deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios)
def test_brute_force_never_beats_the_default_plan(real_catalog, scenario):
    default, result = _cost_or_none(scenario, real_catalog)
    forced = [cost for n, prec in itertools.product((1, 2, 4, 8), ("bf16", "fp8"))
              if (cost := _cost_or_none(dataclasses.replace(scenario, num_gpus_per_replica=n, precision=prec),
                                        real_catalog)[0]) is not None]
    if default is None:
        assert not forced, f"the search found no plan, brute force found one at ${min(forced):,.0f}/month"
        return
    if forced:
        assert default <= 1.02 * min(forced), f"default ${default:,.0f} vs brute force ${min(forced):,.0f}"
    lat = result.latency
    assert lat["ttft_p50_s"] <= lat["ttft_p95_s"] <= lat["ttft_p99_s"]
    assert lat["tpot_p50_s"] <= lat["tpot_p95_s"] <= lat["tpot_p99_s"]
    assert 0 <= lat["utilisation_peak_frac"] < 1
