"""Speculative decoding: hand-derived tokens per step, the verify-step hook, off = unchanged, wins at batch 1,
never reported as a gain where it loses, sourced acceptance rows and one-line refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pytest
from conftest import TINY_DENSE, TINY_MOE

from planner.cli import main
from planner.errors import CatalogError, InvalidInputError
from planner.model.architecture import architecture_from_config
from planner.model.quantization import WeightFormat
from planner.perf import speculative as sp
from planner.perf.estimate import EstimateRequest, estimate
from planner.perf.performance import decode_terms

BF16 = WeightFormat("bf16", 2.0, 2.0, 2.0, "bf16", True)
DSV3 = dict(model="deepseek-ai/DeepSeek-V3", gpu="H200-SXM", num_gpus=8, precision="fp8")
LLAMA8 = dict(model="meta-llama/Llama-3.1-8B", gpu="H100-SXM", precision="fp8")


def _row(k: int, value: float, basis: str = "per_position_frac", **kw) -> sp.AcceptanceRow:
    base = dict(row_id=f"r{k}-{value}", method="mtp", applies_to=("m",), measured_on="m", engine="vllm",
                draft_tokens=k, acceptance_basis=basis, acceptance_value=value, workload="w", temperature=0.0,
                draft_model=None, source_url="https://example.org", source_accessed=dt.date(2026, 1, 1), notes=None)
    return sp.AcceptanceRow(**{**base, **kw})


@pytest.mark.parametrize(("alpha", "k", "expected"), [
    (0.8, 1, 1.8),  # 1 + 0.8
    (0.8, 3, 2.952),  # 1 + 0.8 + 0.64 + 0.512 = (1 - 0.8^4) / 0.2
    (0.5, 2, 1.75),  # 1 + 0.5 + 0.25
    (1.0, 4, 5.0),  # every draft accepted: k + 1
])
def test_tokens_per_step_golden(alpha, k, expected):
    assert float(sp.tokens_per_step(alpha, k)) == pytest.approx(expected)


@pytest.mark.parametrize(("tokens", "k", "alpha"), [(1.83, 1, 0.83), (2.952, 3, 0.8), (1.75, 2, 0.5)])
def test_acceptance_from_tokens_inverts_the_chain(tokens, k, alpha):
    assert sp.acceptance_from_tokens(tokens, k) == pytest.approx(alpha, abs=1e-9)


@pytest.mark.parametrize("tokens", [1.0, 0.5, 4.5, math.nan])
def test_acceptance_from_tokens_refuses_impossible_lengths(tokens):
    with pytest.raises(InvalidInputError, match="mean tokens per step"):
        sp.acceptance_from_tokens(tokens, 3)


def test_acceptance_interpolates_between_measured_draft_lengths():
    rows = [_row(1, 0.85), _row(7, 0.70)]
    # k = 3: 0.85 + (3 - 1) / (7 - 1) x (0.70 - 0.85) = 0.80; beyond the measured lengths it is held
    assert sp.acceptance_at(rows, 3) == pytest.approx(0.80)
    assert sp.acceptance_at(rows, 9) == pytest.approx(0.70)
    # rows at one length are averaged: (0.83 + 0.69) / 2 = 0.76; a tokens-per-step row converts (1.86 -> 0.86)
    assert sp.acceptance_at([_row(1, 0.83), _row(1, 0.69)], 1) == pytest.approx(0.76)
    assert sp.acceptance_at([_row(1, 1.86, "mean_tokens_per_step")], 1) == pytest.approx(0.86)


def test_speculative_decode_golden():
    # step = 12 ms verify + 1 draft x 1 ms = 13 ms; E = 1.8; TPOT = 13 / 1.8 = 7.2222 ms;
    # throughput = 4 / 7.2222 ms = 553.85 tok/s; speedup = 10 / 7.2222 = 1.3846
    d = sp.speculative_decode(batch=4, plain_step_s=0.010, verify_step_s=0.012, draft_pass_s=0.001, draft_tokens=1,
                              acceptance_frac=0.8)
    assert float(d.step_s) == pytest.approx(0.013)
    assert float(d.tpot_s) == pytest.approx(0.013 / 1.8)
    assert float(d.output_tokens_per_s) == pytest.approx(4 * 1.8 / 0.013)
    assert float(d.speedup_factor) == pytest.approx(0.010 * 1.8 / 0.013)
    assert float(d.plain_output_tokens_per_s) == pytest.approx(400.0)
    assert bool(d.helps)


def test_draft_pass_is_one_mean_layer_plus_the_head():
    arch = architecture_from_config(TINY_DENSE)
    # layers without the head: 34,583,552 - 1,024,000 = 33,559,552 over 2 layers = 16,779,776;
    # + head 1000 x 1024 = 1,024,000 -> 17,803,776 of 34,583,552 = 0.514805
    assert sp.draft_pass_frac(arch) == pytest.approx(17_803_776 / 34_583_552)


def _terms(arch, **kw):
    return decode_terms(arch, BF16, context_tokens=512, kv_bytes_per_elem=2, tp=1, pp=1, memory_bandwidth_tb_s=1.0,
                        compute_tflops=100.0, interconnect_bandwidth_gb_s=100.0, **kw)


@pytest.mark.parametrize("config", [TINY_DENSE, TINY_MOE])
def test_query_tokens_default_changes_nothing(config):
    arch = architecture_from_config(config)
    plain = dataclasses.asdict(_terms(arch, batch=3))
    same = dataclasses.asdict(_terms(arch, batch=3, query_tokens_per_seq=1))
    assert plain.keys() == same.keys()
    for key, value in plain.items():
        assert np.array_equal(np.asarray(value), np.asarray(same[key])), key


def test_verify_step_scales_tokens_not_kv_reads():
    arch = architecture_from_config(TINY_MOE)
    plain = _terms(arch, batch=2)
    verify = _terms(arch, batch=2, query_tokens_per_seq=3)
    six = _terms(arch, batch=6)
    assert float(verify.compute_decode_s) == pytest.approx(3 * float(plain.compute_decode_s))
    assert float(verify.attn_decode_s) == pytest.approx(3 * float(plain.attn_decode_s))
    assert float(verify.memory_kv_s) == pytest.approx(float(plain.memory_kv_s))  # 2 sequences' KV, read once
    assert float(verify.memory_s) == pytest.approx(float(plain.memory_s))  # dense weights once per step
    # the experts 2 x 3 = 6 query tokens touch, as 6 plain sequences would
    assert float(verify.memory_expert_s) == pytest.approx(float(six.memory_expert_s))
    assert float(verify.memory_expert_s) > float(plain.memory_expert_s)


def test_off_is_identical_to_no_speculation(real_catalog):
    req = EstimateRequest(**DSV3, concurrency=8)
    before = estimate(real_catalog, req).to_dict()
    off = estimate(real_catalog, dataclasses.replace(req, speculative="off")).to_dict()
    assert off == before and off["speculative"] is None


def test_speculation_helps_at_batch_1(real_catalog):
    est = estimate(real_catalog, EstimateRequest(**DSV3, concurrency=1, speculative="mtp"))
    spec = est.speculative
    # defaults: the DeepSeek-V3 report's one draft token at 0.85 -> 1.85 tokens per verify step
    assert spec["draft_tokens"] == 1 and spec["acceptance_frac"] == pytest.approx(0.85)
    assert spec["tokens_per_step"] == pytest.approx(1.85)
    assert spec["applied"] and 1.0 < spec["speedup_factor"] < 1.85
    assert est.tpot_s == pytest.approx(spec["tpot_s_on"]) and est.tpot_s < spec["tpot_s_off"]
    assert est.output_tokens_per_s == pytest.approx(spec["output_tokens_per_s_on"])
    assert est.output_tokens_per_s_per_user == pytest.approx(1.0 / est.tpot_s)


def test_large_compute_bound_batch_loses_and_keeps_the_plain_figures(real_catalog):
    # 1,024 short sequences of Llama-3.1-8B on one H100: 7 drafts make the verify step 8x the GEMM work
    req = EstimateRequest(**LLAMA8, input_tokens=128, output_tokens=128, concurrency=1024)
    plain = estimate(real_catalog, req)
    est = estimate(real_catalog, dataclasses.replace(req, speculative="eagle3", speculative_draft_tokens=7))
    spec = est.speculative
    assert spec["speedup_factor"] < 1.0 and not spec["applied"]
    assert est.tpot_s == plain.tpot_s and est.output_tokens_per_s == plain.output_tokens_per_s
    assert spec["tpot_s_on"] > spec["tpot_s_off"] == plain.tpot_s
    assert any("loses" in w for w in est.warnings)


@pytest.mark.parametrize("concurrency", [1, 8, 64, 256, 1024])
def test_never_reported_as_a_gain_where_it_loses(real_catalog, concurrency):
    req = EstimateRequest(**LLAMA8, input_tokens=128, output_tokens=128, concurrency=concurrency)
    plain = estimate(real_catalog, req)
    est = estimate(real_catalog, dataclasses.replace(req, speculative="eagle3", speculative_draft_tokens=3))
    spec = est.speculative
    assert spec["applied"] == (spec["speedup_factor"] > 1.0)
    assert est.tpot_s <= plain.tpot_s and est.output_tokens_per_s >= plain.output_tokens_per_s
    assert est.tpot_s == pytest.approx(min(spec["tpot_s_on"], spec["tpot_s_off"]))


@pytest.mark.parametrize(("extra", "match"), [
    (dict(model="meta-llama/Llama-3.1-8B", gpu="H100-SXM", speculative="mtp"), "does not ship mtp"),
    (dict(model="Qwen/Qwen3-8B", gpu="H100-SXM", speculative="eagle3"), "does not ship eagle3"),
    (dict(model="zai-org/GLM-4.5", gpu="H200-SXM", num_gpus=8, precision="fp8", speculative="mtp"),
     "no sourced mtp acceptance"),
    (dict(**LLAMA8, speculative="medusa"), "speculative must be one of"),
    (dict(**LLAMA8, speculative_draft_tokens=3), "need speculative mtp or eagle3"),
    (dict(**LLAMA8, speculative="eagle3", speculative_draft_tokens=0), "draft_tokens"),
    (dict(**LLAMA8, speculative="eagle3", speculative_draft_tokens=17), "draft_tokens"),
    (dict(**LLAMA8, speculative="eagle3", speculative_acceptance_frac=1.5), "acceptance_frac"),
    (dict(**LLAMA8, speculative="eagle3", speculative_acceptance_frac=math.nan), "acceptance_frac"),
    (dict(**LLAMA8, speculative="eagle3", speculative_acceptance_frac=0.0), "acceptance_frac"),
    (dict(model="meta-llama/Llama-3.1-8B", gpu="H100-SXM", precision="q4_k_m", engine="llama.cpp",
          speculative="eagle3"), "modelled for vllm, sglang, trtllm"),
])
def test_bad_speculative_requests_are_refused(real_catalog, extra, match):
    with pytest.raises(InvalidInputError, match=match):
        estimate(real_catalog, EstimateRequest(**extra))


def test_given_acceptance_is_used_for_a_model_without_sourced_rows(real_catalog):
    est = estimate(real_catalog, EstimateRequest(model="zai-org/GLM-4.5", gpu="H200-SXM", num_gpus=8,
                                                 precision="fp8", concurrency=1, speculative="mtp",
                                                 speculative_acceptance_frac=0.8, speculative_draft_tokens=2))
    assert est.speculative["acceptance_source"] == "given"
    assert est.speculative["tokens_per_step"] == pytest.approx(2.44)  # 1 + 0.8 + 0.64


def test_shipped_rows_are_sourced_and_name_catalog_models(real_catalog):
    rows = sp.load_acceptance()
    assert rows and all(r.source_url.startswith("https://") for r in rows)
    for r in rows:
        for model_id in r.applies_to:
            assert model_id in real_catalog.models, (r.row_id, model_id)
            if r.method == "mtp":
                assert real_catalog.models[model_id].arch.n_mtp_layers > 0, (r.row_id, model_id)
        assert 0.0 < r.acceptance_frac <= 1.0


HEADER = ("row_id,method,applies_to,measured_on,engine,draft_tokens,acceptance_basis,acceptance_value,workload,"
          "temperature,draft_model,source_url,source_accessed,notes")


@pytest.mark.parametrize(("cells", "column"), [
    ("r,medusa,m,m,vllm,1,per_position_frac,0.8,w,,,https://x.org,2026-01-01,", "method"),
    ("r,mtp,m,m,vllm,1,per_token,0.8,w,,,https://x.org,2026-01-01,", "acceptance_basis"),
    ("r,mtp,m,m,vllm,1,per_position_frac,1.2,w,,,https://x.org,2026-01-01,", "acceptance_value"),
    ("r,mtp,m,m,vllm,3,mean_tokens_per_step,4.5,w,,,https://x.org,2026-01-01,", "acceptance_value"),
    ("r,mtp,m,m,vllm,17,per_position_frac,0.8,w,,,https://x.org,2026-01-01,", "draft_tokens"),
    ("r,mtp,m,m,vllm,1,per_position_frac,0.8,w,,,,2026-01-01,", "source_url"),
])
def test_bad_rows_are_catalog_errors(tmp_path, cells, column):
    path = tmp_path / "speculative.csv"
    path.write_text(HEADER + "\n" + cells + "\n")
    with pytest.raises(CatalogError, match=column):
        sp.load_acceptance(path)


def test_cli_json_shows_both_sides(capsys):
    code = main(["estimate", "--model", "deepseek-v3", "--gpu", "H200-SXM", "--num-gpus", "8", "--precision", "fp8",
                 "--concurrency", "1", "--speculative", "mtp", "--draft-tokens", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    spec = out["speculative"]
    assert code == 0 and spec["draft_tokens"] == 2
    assert {"tokens_per_step", "tpot_s_off", "tpot_s_on", "output_tokens_per_s_off",
            "output_tokens_per_s_on", "applied"} <= set(spec)


@pytest.mark.parametrize("argv", [
    ["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--speculative", "mtp"],
    ["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--draft-tokens", "2"],  # draft options with speculation off
])
def test_cli_refuses_with_one_line(capsys, argv):
    code = main(["estimate", *argv])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def _setup(real_catalog, **req):
    from planner.perf.estimate import prepare

    return prepare(real_catalog, EstimateRequest(**req))


def test_step_fn_for_the_queueing_model(real_catalog):
    s = _setup(real_catalog, **LLAMA8, input_tokens=128, output_tokens=128)
    cands = [s.candidate] * 3
    kw = dict(input_tokens=128, output_tokens=128)
    plain_fn = sp.step_time_fn(s.model.arch, cands, None, **kw)
    setting = sp.resolve(s.model.arch, s.model.model_id, "eagle3", sp.shipped_rows(), draft_tokens=3)
    spec_fn = sp.step_time_fn(s.model.arch, cands, setting, **kw)
    batch, zero, prompt = np.array([1.0, 64.0, 1024.0]), np.zeros(3), np.full(3, 128.0)
    plain, spec = plain_fn(batch, zero), spec_fn(batch, zero)
    dec = sp.decode_with(s.model.arch, cands, setting, concurrency=batch, **kw)
    # per token: the speculative TPOT where it helps, the plain step where it loses (batch 1,024)
    assert spec == pytest.approx(np.minimum(plain, dec.tpot_s))
    assert spec[0] < plain[0] and spec[2] == pytest.approx(plain[2])
    # a prompt chunk riding along keeps its plain cost
    assert spec_fn(batch, prompt) - spec == pytest.approx(plain_fn(batch, prompt) - plain)


def test_the_searchs_step_speculates_only_on_engines_that_run_drafts(real_catalog):
    # optimizer.step_time_fn over a mixed set: vLLM rows take speculative.step_time_fn (EAGLE-3, k = 3), the
    # llama.cpp row (no drafts modelled) keeps evaluator.step_time_fn bit for bit; None is the plain step everywhere
    from planner.optimizer import Traffic, step_time_fn
    from planner.perf import evaluator

    model = real_catalog.model("llama-3.1-8b")
    gpu = real_catalog.gpu("H100-SXM")
    kw = dict(gpus=[gpu], kv_dtypes=[None], gpu_counts=[1])
    vllm = evaluator.candidates(real_catalog, model.arch, model.native_precision, engines=[real_catalog.engine("vllm")],
                                precisions=[real_catalog.precision("fp8")], **kw)[:1]
    gguf = evaluator.candidates(real_catalog, model.arch, model.native_precision,
                                engines=[real_catalog.engine("llama.cpp")], precisions=[real_catalog.precision("q8_0")],
                                **kw)[:1]
    cs = evaluator.CandidateSet.expand([*vllm, *gguf], lambda c: [c.layout], (None,))
    assert [cs.bases[b].engine.engine_id for b in cs.base_index] == ["vllm", "llama.cpp"]
    traffic = Traffic(input_tokens=128, output_tokens=128, design_rate_per_s=1.0, average_rate_per_s=1.0)
    setting = sp.resolve(model.arch, model.model_id, "eagle3", sp.shipped_rows(), draft_tokens=3)
    tkw = dict(input_tokens=128, output_tokens=128)
    batch, prompt = np.array([1.0, 1.0]), np.array([0.0, 64.0])
    mixed = step_time_fn(model.arch, cs, setting, traffic)(batch, prompt)
    plain = evaluator.step_time_fn(model.arch, cs, **tkw)(batch, prompt)
    spec_vllm = sp.step_time_fn(model.arch, cs.take(np.array([0])), setting, **tkw)(batch[:1], prompt[:1])
    assert mixed[0] == spec_vllm[0] < plain[0]  # batch 1: speculation wins on vLLM
    assert mixed[1] == plain[1]
    assert np.array_equal(step_time_fn(model.arch, cs, None, traffic)(batch, prompt), plain)


def test_slo_estimate_with_speculation_serves_at_least_the_plain_rate(real_catalog):
    from planner.plan import slo_estimate

    req = EstimateRequest(model="deepseek-ai/DeepSeek-V3", gpu="H200-SXM", num_gpus=8, precision="fp8")
    off = slo_estimate(real_catalog, req, ttft_target_s=2.0, tpot_target_s=0.03)[1]["requests_per_s"]
    est, slo = slo_estimate(real_catalog, dataclasses.replace(req, speculative="mtp"), ttft_target_s=2.0,
                            tpot_target_s=0.03)
    assert est.speculative["applied"] and slo["requests_per_s"] >= off
