"""Attention data parallelism with expert parallelism (Layout.attn_dp): which layouts exist, the memory split
(replicated attention/dense weights, sharded experts, each GPU its own sequences' KV cache), the step terms
(no all-reduce, all-to-all of each GPU's own tokens) and estimate's choice of layout. Golden values are
ratios and sums derivable from the architecture's own counts, written out in each test."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner import units
from planner.errors import InvalidInputError
from planner.model.architecture import kv_bytes_per_sequence
from planner.perf import evaluator
from planner.perf.estimate import EstimateRequest, estimate, prepare
from planner.perf.evaluator import Layout, layout_problem, layouts_for
from planner.perf.performance import decode_terms, prefill_terms
from planner.perf.step_work import ACTIVATION_BYTES, ALLTOALLS_PER_MOE_LAYER, comm_terms

R1 = "deepseek-ai/DeepSeek-R1"


def _setup(cat, model=R1, engine="trtllm", n=8):
    return prepare(cat, EstimateRequest(model=model, gpu="h200", num_gpus=n, engine=engine, precision="fp8"))


def test_layouts_for_offers_attention_dp_for_moe_on_engines_that_run_it(real_catalog):
    s = _setup(real_catalog)
    for engine_id in ("vllm", "sglang", "trtllm"):
        lays = layouts_for(real_catalog.engine(engine_id), s.model.arch, s.gpu, 8)
        adp = [lay for lay in lays if lay.attn_dp]
        assert Layout(8, 1, 1, True, False, True) in adp, engine_id
        assert all(lay.ep and lay.tp >= 2 for lay in adp)
    dense = real_catalog.model("meta-llama/Llama-3.1-70B-Instruct").arch
    assert not [lay for lay in layouts_for(real_catalog.engine("vllm"), dense, s.gpu, 8) if lay.attn_dp]
    llama_cpp = real_catalog.engine("llama.cpp")
    assert "adp" not in llama_cpp.layouts
    assert layout_problem(llama_cpp, s.model.arch, s.gpu, Layout(8, 1, 1, True, False, True)) is not None


def test_label_and_dict_show_attention_dp():
    lay = Layout(8, 1, 1, True, False, True)
    assert lay.label == "attention DP8 x EP8"
    assert lay.to_dict()["attn_dp"] is True and Layout(8).to_dict()["attn_dp"] is False
    assert Layout(4, 2, 2, True, False, True).label == "attention DP4 x EP4 x PP2 x DP2"


def test_memory_replicates_dense_weights_shards_experts_and_splits_kv_by_sequence(real_catalog):
    s = _setup(real_catalog)
    arch, c = s.model.arch, s.candidate
    tp8, adp8 = replace(c, layout=Layout(8, 1, 1, True)), replace(c, layout=Layout(8, 1, 1, True, False, True))
    ev = evaluator.evaluate(arch, [tp8, adp8], input_tokens=1000, output_tokens=1000)
    total = c.fmt.total_bytes(arch)
    experts = arch.routed_expert_params * c.fmt.expert_bytes_per_param
    # TP8: everything / 8; attention DP8: the non-expert bytes whole on each GPU, the experts / 8
    assert ev.weights_gb_per_gpu[0] == pytest.approx(total / 8 / units.GB, rel=1e-12)
    assert ev.weights_gb_per_gpu[1] == pytest.approx(((total - experts) + experts / 8) / units.GB, rel=1e-12)
    # MLA has one latent KV head: TP8 replicates a sequence's KV on all 8 GPUs, attention DP holds it on one
    # (1/8 of it per GPU on average); held tokens are TensorRT-LLM's prompt + full output = 2000
    kv_seq = kv_bytes_per_sequence(arch, 2000.0, c.kv.bytes_per_elem) / units.GB
    assert ev.kv_gb_per_sequence_per_gpu[0] == pytest.approx(kv_seq, rel=1e-12)
    assert ev.kv_gb_per_sequence_per_gpu[1] == pytest.approx(kv_seq / 8, rel=1e-12)
    assert ev.max_concurrency[1] > 5 * ev.max_concurrency[0]


def test_comm_terms_attention_dp_has_no_allreduce_and_sends_each_gpus_own_tokens(real_catalog):
    arch = _setup(real_catalog).model.arch
    tokens, tp, link = 800.0, 8.0, 450.0
    moe_layers = sum(g.n_layers for g in arch.moe_groups)
    top_k = max(g.top_k for g in arch.moe_groups)
    transfer, calls = comm_terms(arch, tokens, tp=tp, pp=1, link_gb_s=link, expert_parallel=True, attn_dp=True)
    # 2 all-to-alls per MoE layer, none of the 2 all-reduces per layer
    assert float(calls) == ALLTOALLS_PER_MOE_LAYER * moe_layers
    # each GPU sends (tp-1)/tp of its own tokens/tp x top-k activations per all-to-all
    per_a2a = (tp - 1) / tp * (tokens / tp) * top_k * arch.hidden_size * ACTIVATION_BYTES
    assert float(transfer) == pytest.approx(ALLTOALLS_PER_MOE_LAYER * moe_layers * per_a2a / (link * units.GB))


def test_decode_terms_read_whole_dense_weights_and_own_kv(real_catalog):
    s = _setup(real_catalog)
    arch, fmt = s.model.arch, s.fmt
    kw = dict(batch=512.0, context_tokens=1500.0, kv_bytes_per_elem=1.0, tp=8, pp=1, memory_bandwidth_tb_s=4.8,
              compute_tflops=1979.0, interconnect_bandwidth_gb_s=450.0, expert_parallel=True)
    tp_terms, adp_terms = decode_terms(arch, fmt, **kw), decode_terms(arch, fmt, **kw, attn_dp=True)
    assert float(adp_terms.memory_s) == pytest.approx(8 * float(tp_terms.memory_s))  # dense bytes not split
    assert float(adp_terms.memory_kv_s) == pytest.approx(float(tp_terms.memory_kv_s) / 8)  # MLA: 1 KV head
    assert float(adp_terms.memory_expert_s) == float(tp_terms.memory_expert_s)
    assert float(adp_terms.compute_decode_s) == float(tp_terms.compute_decode_s)  # 1/8 of the FLOPs per GPU


def test_prefill_of_one_prompt_runs_its_dense_part_on_one_gpu(real_catalog):
    s = _setup(real_catalog)
    arch, fmt = s.model.arch, s.fmt
    kw = dict(prompt_tokens=2000.0, tp=8, pp=1, memory_bandwidth_tb_s=4.8, compute_tflops=1979.0,
              interconnect_bandwidth_gb_s=450.0, expert_parallel=True)
    tp_p, adp_p = prefill_terms(arch, fmt, **kw), prefill_terms(arch, fmt, **kw, attn_dp=True)
    flops = 1979.0 * units.TERA
    # dense: 2 x always-read params x N on one GPU; routed experts: 2 x active routed x N over 8
    want = 2 * 2000.0 * (arch.always_read_params / flops + arch.active_routed_params / (8 * flops))
    assert float(adp_p.compute_s) == pytest.approx(want, rel=1e-12)
    assert float(tp_p.compute_s) == pytest.approx(2 * 2000.0 * arch.active_compute_params / (8 * flops), rel=1e-12)
    assert float(adp_p.attn_s) == pytest.approx(8 * float(tp_p.attn_s), rel=1e-12)


def test_non_attention_dp_terms_unchanged_bit_for_bit(real_catalog):
    s = _setup(real_catalog)
    kw = dict(batch=np.array([1.0, 64.0]), context_tokens=1500.0, kv_bytes_per_elem=1.0, tp=8, pp=1,
              memory_bandwidth_tb_s=4.8, compute_tflops=1979.0, interconnect_bandwidth_gb_s=450.0)
    a = decode_terms(s.model.arch, s.fmt, **kw)
    b = decode_terms(s.model.arch, s.fmt, **kw, attn_dp=False)
    for k, v in vars(a).items():
        assert np.array_equal(np.asarray(v), np.asarray(getattr(b, k))), k


def test_estimate_picks_attention_dp_for_deepseek_on_eight_gpus_and_obeys_the_flag(real_catalog):
    picked = estimate(real_catalog, EstimateRequest(model=R1, gpu="h200", num_gpus=8, engine="trtllm"))
    assert picked.attn_dp and picked.expert_parallel and "attention DP" in picked.layout
    forced = estimate(real_catalog, EstimateRequest(model=R1, gpu="h200", num_gpus=8, engine="trtllm", tp=8,
                                                    attn_dp=True))
    assert (forced.tp, forced.attn_dp, forced.layout) == (8, True, "attention DP8 x EP8")
    plain = estimate(real_catalog, EstimateRequest(model=R1, gpu="h200", num_gpus=8, engine="trtllm", tp=8))
    assert not plain.attn_dp and forced.max_concurrency > 5 * plain.max_concurrency
    with pytest.raises(InvalidInputError, match="attn_dp needs a mixture-of-experts model"):
        estimate(real_catalog, EstimateRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h200", num_gpus=2,
                                               tp=2, attn_dp=True))


def test_slo_estimate_keeps_the_searched_attention_dp_layout(real_catalog):
    from planner.plan import slo_estimate

    req = EstimateRequest(model=R1, gpu="h200", num_gpus=8, engine="trtllm", tp=8, attn_dp=True,
                          input_tokens=1000, output_tokens=1000)
    est, slo = slo_estimate(real_catalog, req, ttft_target_s=10.0, tpot_target_s=0.5, percentile=0.95)
    # the search chose attention DP8 x EP8 (its layout in `slo`); the estimate re-run at that layout keeps it
    # (before plan.slo_estimate passed attn_dp it fell back to TP8 x EP, whose KV holds ~8x fewer sequences)
    assert slo["layout"]["attn_dp"] if isinstance(slo["layout"], dict) else "attention DP" in slo["layout"]
    assert est.attn_dp and est.layout == "attention DP8 x EP8"
    assert est.concurrency == slo["operating_concurrency"]


def test_decode_terms_of_matches_the_evaluator_step(real_catalog):
    from planner.perf.estimate import decode_terms_of

    s = prepare(real_catalog, EstimateRequest(model=R1, gpu="h200", num_gpus=8, engine="trtllm", tp=8, attn_dp=True))
    step = decode_terms_of(s, batch=256.0, context_tokens=1500.0)
    # the evaluator's steady state at 256 sequences with no prompts mixed in is the same decode-only step
    whole = evaluator.point_terms_of(s.model.arch, [s.candidate], concurrency=256.0, input_tokens=1000,
                                     output_tokens=1000).step
    for name in ("memory_s", "memory_expert_s", "memory_kv_s", "compute_decode_s", "transfer_s", "collectives"):
        assert float(np.asarray(getattr(step, name))) == pytest.approx(float(np.asarray(getattr(whole, name))[0]),
                                                                       rel=1e-12), name
