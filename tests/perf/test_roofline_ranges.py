"""No range end beats the roofline anywhere in the catalog (issue 11, "Done when").

Every catalog model x GPU x precision x engine that runs it, on 1, 2, 4 and 8 GPUs in every layout the engine
offers, is evaluated by the one replica evaluator (what estimate(), sweep() and the search call) at two workloads, at
batch 1 and at the most sequences that fit. For every configuration that fits, the optimistic end of each range
(output tokens/s `_high`, TPOT and TTFT `_low`) must not beat

1. the evaluator's own 100 %-efficiency roofline of the same configuration (`roofline_tpot_s`,
   `roofline_ttft_s`), and
2. a hand bound that shares no code with the step model: per decode step an instance of g GPUs reads at least
   the active weights once, active matrix parameters x the precision's bits / 8 bytes, at no more than
   g x the GPU's memory bandwidth, and runs at least 2 FLOPs per active matrix parameter per token at no more
   than g x the GPU's fastest dense tensor rate (any format). So, with c sequences per instance and dp instances,
       TPOT >= max(bytes / (g x bandwidth), c x 2 x params / (g x peak)),
       output tokens/s <= dp x c / that TPOT,
       TTFT >= prompt tokens x 2 x params / (g x peak).
   Speculative decoding (more than one token per step) is off by default and not covered here.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner import units
from planner.perf import evaluator
from planner.perf.estimate import EstimateRequest, estimate

WORKLOADS = ((1024, 256), (128, 2048))  # (prompt, output) tokens: prefill-heavy and decode-heavy
GPU_COUNTS = (1, 2, 4, 8)
TOL = 1e-9  # relative slack for floating-point rounding only


def _catalog_candidates(catalog, model) -> evaluator.CandidateSet | None:
    """Every GPU x precision x engine that runs it (each engine's default KV dtype and efficiency profile, as
    estimate() resolves them), in every layout the engine offers on 1-8 GPUs."""
    arch = model.arch
    bases = evaluator.candidates(catalog, arch, model.native_precision, gpus=list(catalog.gpus.values()),
                                 engines=list(catalog.engines.values()), precisions=list(catalog.precisions.values()),
                                 kv_dtypes=[None], gpu_counts=[1], layouts=lambda e, g, n: [evaluator.Layout()])
    if not bases:
        return None
    cs = evaluator.CandidateSet.expand(
        bases, lambda b: [lay for n in GPU_COUNTS for lay in evaluator.layouts_for(b.engine, arch, b.gpu, n)])
    return cs if len(cs) else None


def _hand_bounds(model, cs: evaluator.CandidateSet, conc: np.ndarray, input_tokens: int):
    """(lowest TPOT s, lowest TTFT s) per configuration from bandwidth, peak FLOPs and the active parameters."""
    params = model.arch.active_compute_params  # matrix parameters one token runs through (no embedding lookup)
    per_base = lambda f: np.array([f(b) for b in cs.bases], dtype=float)[cs.base_index]  # noqa: E731
    bits = per_base(lambda b: b.precision.weight_bits_per_param)
    bandwidth_bytes_s = per_base(lambda b: b.gpu.memory_bandwidth_tb_s) * units.TB
    peak_flops = per_base(lambda b: max(v for v in (b.gpu.bf16_dense_tflops, b.gpu.fp8_dense_tflops,
                                                    b.gpu.fp4_dense_tflops, b.gpu.int8_dense_tops) if v)) * units.TERA
    gpus = cs.tp * cs.pp  # GPUs of one instance
    weight_bytes = params * bits / units.BITS_PER_BYTE
    tpot = np.maximum(weight_bytes / (gpus * bandwidth_bytes_s), conc * 2.0 * params / (gpus * peak_flops))
    ttft = input_tokens * 2.0 * params / (gpus * peak_flops)
    return tpot, ttft


@pytest.mark.parametrize("input_tokens,output_tokens", WORKLOADS)
def test_no_range_end_beats_the_roofline_anywhere_in_the_catalog(real_catalog, input_tokens, output_tokens):
    checked = 0
    for model in real_catalog.models.values():
        cs = _catalog_candidates(real_catalog, model)
        if cs is None:
            continue
        for concurrency in (1, None):  # batch 1 and the most sequences that fit (max throughput)
            ev = evaluator.evaluate(model.arch, cs, input_tokens=input_tokens, output_tokens=output_tokens,
                                    concurrency=concurrency, context_length_tokens=model.context_length_tokens)
            ok = ev.fits
            if not ok.any():
                continue
            c = ev.concurrency.astype(float)
            tput_high, tpot_low, ttft_low = (ev.output_tokens_per_s_high, ev.tpot_s_low, ev.ttft_s_low)
            # 1. the evaluator's own roofline of each configuration
            roof_tput = cs.dp * c / ev.roofline_tpot_s
            for name, bad in (("tokens/s high > roofline", tput_high > roof_tput * (1 + TOL)),
                              ("tpot low < roofline", tpot_low < ev.roofline_tpot_s * (1 - TOL)),
                              ("ttft low < roofline", ttft_low < ev.roofline_ttft_s * (1 - TOL))):
                _assert_none(bad & ok, name, model, cs, concurrency)
            # 2. the hand bound from bandwidth, peak FLOPs and parameter count
            tpot_floor, ttft_floor = _hand_bounds(model, cs, c, input_tokens)
            for name, bad in (("tokens/s high > hand bound", tput_high > cs.dp * c / tpot_floor * (1 + TOL)),
                              ("tpot low < hand bound", tpot_low < tpot_floor * (1 - TOL)),
                              ("ttft low < hand bound", ttft_low < ttft_floor * (1 - TOL))):
                _assert_none(bad & ok, name, model, cs, concurrency)
            checked += int(ok.sum())
    assert checked > 10_000  # the catalog is really covered (models x GPUs x precisions x layouts)


def _assert_none(bad: np.ndarray, what: str, model, cs: evaluator.CandidateSet, concurrency) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cand = cs.candidate(i)
        pytest.fail(f"{what}: {model.model_id} on {cand.gpu.gpu_id} {cand.precision.precision_id} "
                    f"{cand.engine.engine_id} tp{cand.layout.tp} pp{cand.layout.pp} dp{cand.layout.dp} "
                    f"at concurrency {concurrency or 'max'} ({int(bad.sum())} configurations)")


def test_the_issue_example_llama_70b_q4_on_dgx_spark_stays_under_its_bandwidth_bound(real_catalog):
    """Issue 11: Llama-3.1-70B Q4_K_M on a DGX Spark had a high end of 7.9 tok/s against a perfect-efficiency
    bound of 6.4. By hand: 0.273 TB/s / (69.5e9 matrix parameters x 4.8944 bits / 8) = 0.273e12 / 42.5e9
    = 6.42 tok/s at batch 1 (the exact parameter count comes from the model's config)."""
    model = real_catalog.model("meta-llama/Llama-3.1-70B")
    spark = real_catalog.gpu("DGX-Spark")
    q4 = real_catalog.precision("q4_k_m")
    params = model.arch.active_compute_params
    assert params == pytest.approx(69.5e9, rel=0.01)
    bound_tok_s = spark.memory_bandwidth_tb_s * units.TB / (params * q4.weight_bits_per_param / units.BITS_PER_BYTE)
    assert bound_tok_s == pytest.approx(6.42, abs=0.02)
    est = estimate(real_catalog, EstimateRequest(model=model.model_id, gpu="DGX-Spark", num_gpus=1,
                                                 precision="q4_k_m", input_tokens=1024, output_tokens=256,
                                                 concurrency=1))
    assert est.output_tokens_per_s_high <= bound_tok_s
    assert 1.0 / est.tpot_s_low <= bound_tok_s
