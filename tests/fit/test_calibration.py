"""Fitting efficiency profiles, the user's calibrated profiles, and the `validate`/`calibrate`/`profiles` CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from planner.cli import main
from planner.errors import CatalogError, InvalidInputError
from planner.fit.calibration import (
    CLASS_GPU_MATCH,
    HW_CLASSES,
    PARAMS,
    FitSettings,
    _from_link,
    _to_link,
    calibrate_profile,
    fit_additive,
    hardware_class,
    load_user_profiles,
    points_from_vllm_bench,
    profile_dir,
    profile_factors,
    replace_profiles,
    save_profile,
)
from planner.fit.validation import MeasuredPoint, RowModel, model_row, read_measured
from planner.perf.estimate import EstimateRequest, efficiency_of, estimate
from planner.perf.step_work import COMM_LARGE_MESSAGE_BW_FRAC

BENCH = {  # the fields `vllm bench serve --save-result` writes that the planner reads
    "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "num_prompts": 200, "request_rate": "inf",
    "max_concurrency": 32, "duration": 40.0, "completed": 200, "total_input_tokens": 204_800,
    "total_output_tokens": 51_200, "request_throughput": 5.0, "output_throughput": 1280.0,
    "total_token_throughput": 6400.0, "mean_ttft_ms": 150.0, "mean_tpot_ms": 22.0, "mean_itl_ms": 22.0,
}


@pytest.fixture
def profiles_in(tmp_path, monkeypatch):
    folder = tmp_path / "profiles"
    monkeypatch.setenv("PLANNER_PROFILE_DIR", str(folder))
    return folder


def _point(**kw) -> MeasuredPoint:
    base = dict(row_id="p", split="fit", model="tiny", gpu="TEST-GPU", num_gpus=1, precision="bf16", engine="vllm",
                scenario="batch1", input_tokens=1, output_tokens=128, metric="batch1_decode_tokens_per_s",
                measured_value=1.0, tp=1, kv_dtype="bf16", concurrency=1)
    base.update(kw)
    return MeasuredPoint(**base)


@pytest.mark.parametrize("gpu, cls", [("H100-SXM", "nvidia-datacenter"), ("RTX-4090", "nvidia-consumer"),
                                      ("RTX-PRO-6000", "nvidia-consumer"), ("MI300X", "amd"), ("M2-Ultra", "apple"),
                                      ("Gaudi3", "nvidia-datacenter")])
def test_hardware_classes(real_catalog, gpu, cls):
    assert hardware_class(real_catalog.gpu(gpu)) == cls


def test_every_engine_class_pair_has_a_catalog_row(real_catalog):
    for engine in real_catalog.engines:
        for gpu in real_catalog.gpus.values():
            prof = real_catalog.efficiency_for(engine, gpu)
            assert prof.engine == engine
            assert prof.gpu_match in {m for ms in CLASS_GPU_MATCH.values() for m in ms}


def test_link_functions_round_trip():
    natural = np.array([0.7, 0.6, 0.5, 0.55, 0.45, 0.3, 1.5, 30.0, 2.0, 20.0, 8.0, 40.0, 500.0])
    assert _from_link(_to_link(natural)) == pytest.approx(natural)
    assert len(PARAMS) == len(natural) and HW_CLASSES[0] == "nvidia-datacenter"


def _synthetic(catalog, factors):
    """Rows of every kind for Llama-3.1-8B on an H100, with 'measured' values the model predicts at `factors`."""
    cat = _catalog_with(catalog, factors)
    shapes = [dict(), dict(metric="prefill_tokens_per_s", input_tokens=2048, output_tokens=1),
              dict(metric="prefill_tokens_per_s", input_tokens=256, output_tokens=1),
              dict(scenario="offline", metric="output_tokens_per_s", input_tokens=128, output_tokens=128,
                   concurrency=None),
              dict(scenario="offline", metric="output_tokens_per_s", input_tokens=64, output_tokens=1024,
                   concurrency=None),
              dict(scenario="static_batch", metric="output_tokens_per_s", input_tokens=32, output_tokens=128,
                   concurrency=4),
              dict(scenario="static_batch", metric="output_tokens_per_s", input_tokens=32, output_tokens=128,
                   concurrency=64),
              dict(scenario="static_batch", metric="output_tokens_per_s", input_tokens=1024, output_tokens=1024,
                   concurrency=16)]
    points = []
    for i, shape in enumerate(shapes):
        p = _point(row_id=f"s{i}", engine="trtllm", model="llama-3.1-8b", gpu="H100-SXM", **shape)
        m = model_row(cat, p)
        assert isinstance(m, RowModel)
        points.append(dataclasses.replace(p, measured_value=m.predict(efficiency_of(cat.efficiency[0]))))
    return points


def _catalog_with(catalog, factors):
    (mbu, moe, mfu_d, mfu_p, comm_bw, overlap, overhead_ms, latency_us, expert_us, layer_us, request_ms,
     half_us, eager_us) = factors
    prof = dataclasses.replace(catalog.efficiency_for("trtllm", catalog.gpu("H100-SXM")), profile_id="truth",
                               gpu_match="*", mbu_frac=mbu, moe_mbu_frac=moe, mfu_decode_frac=mfu_d,
                               mfu_prefill_frac=mfu_p, comm_bw_frac=comm_bw, step_overhead_ms=overhead_ms,
                               comm_latency_us=latency_us, moe_expert_overhead_us=expert_us,
                               overhead_overlap_frac=overlap, layer_overhead_us=layer_us,
                               request_overhead_ms=request_ms, comm_half_us=half_us, eager_launch_us=eager_us,
                               comm_large_bw_frac=COMM_LARGE_MESSAGE_BW_FRAC)
    return replace_profiles(catalog, [prof])


def test_fit_recovers_known_factors(real_catalog):
    truth = (0.55, 0.6, 0.45, 0.35, 0.5, 0.4, 0.8, 20.0, 2.0, 15.0, 12.0, 30.0, 20.0)
    points = _synthetic(real_catalog, truth)
    result = fit_additive(real_catalog, points, settings=FitSettings(prior_sd=50.0, offset_sd=50.0),
                          engines=("trtllm", "vllm"))
    got = result.factors[("trtllm", "nvidia-datacenter")]
    # prefill rows pin the prefill efficiency; the fitted factors reproduce every synthetic row
    assert got[3] == pytest.approx(truth[3], rel=0.03)
    refit = _catalog_with(real_catalog, got)
    for p in points:
        m = model_row(refit, p)
        assert m.predict(efficiency_of(refit.efficiency[0])) == pytest.approx(p.measured_value, rel=0.02), p.row_id
    assert result.fit_counts[("trtllm", "nvidia-datacenter")] == len(points)
    assert result.fit_counts[("vllm", "nvidia-datacenter")] == 0


def test_older_engine_rows_weigh_less(real_catalog):
    """The same rows measured twice, by a current and an older engine build 2x apart: with the older rows
    down-weighted the fitted prediction sits nearer the current measurement (geometric mean at weight 1)."""
    truth = (0.55, 0.6, 0.45, 0.35, 0.5, 0.4, 0.8, 20.0, 2.0, 15.0, 12.0, 30.0, 20.0)
    current = [dataclasses.replace(p, engine_date="2026-01") for p in _synthetic(real_catalog, truth)]
    older = [dataclasses.replace(p, row_id=p.row_id + "-old", engine_date="2025-01",
                                 measured_value=p.measured_value * (0.5 if p.metric.endswith("_per_s") else 2.0))
             for p in current]

    def log_gap(weight: float) -> float:
        settings = FitSettings(prior_sd=50.0, offset_sd=50.0, older_weight=weight)
        got = fit_additive(real_catalog, current + older, settings=settings, engines=("trtllm",))
        cat = _catalog_with(real_catalog, got.factors[("trtllm", "nvidia-datacenter")])
        gaps = [np.log(model_row(cat, p).predict(efficiency_of(cat.efficiency[0])) / p.measured_value)
                for p in current]
        return float(np.median(np.abs(gaps)))

    assert log_gap(0.1) < log_gap(1.0) - 0.1


def test_cli_validate_since_filters_by_engine_build(capsys):
    code, out, _ = _run(capsys, "validate", "--json", "--since", "2025-07")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert rows and all(r["engine_date"] >= "2025-07" and r["era"] == "current" for r in rows)
    code, _, err = _run(capsys, "validate", "--since", "2025-7")
    assert code == 2 and "YYYY-MM" in err


def test_fit_without_rows_is_an_error(tiny_catalog):
    with pytest.raises(InvalidInputError, match="no expressible rows"):
        fit_additive(tiny_catalog, [_point(gpu="No-Such-GPU")])


def test_calibration_moves_the_prediction_towards_the_measurement(tiny_catalog):
    base = model_row(tiny_catalog, _point())
    before = base.predict(efficiency_of(base.setup.profile))
    profile, rows = calibrate_profile(tiny_catalog, [_point(measured_value=before / 2)], name="mine")
    [(_, b, a)] = rows
    assert b == pytest.approx(before)
    assert abs(np.log(a / (before / 2))) < abs(np.log(b / (before / 2)))
    assert profile.gpu_match == "TEST-GPU" and profile.engine == "vllm" and profile.n_points == 1


@pytest.mark.parametrize("name", ["", "../x", "a b", ".hidden", "x/y"])
def test_profile_names_are_checked(tiny_catalog, name):
    with pytest.raises(InvalidInputError, match="profile name"):
        calibrate_profile(tiny_catalog, [_point(measured_value=100.0)], name=name)


def test_calibration_needs_one_engine_and_gpu(tiny_catalog):
    with pytest.raises(InvalidInputError, match="one engine on one GPU"):
        calibrate_profile(tiny_catalog, [_point(measured_value=100.0), _point(engine="sglang", measured_value=90.0)],
                          name="mixed")


def test_saved_profile_round_trips(tiny_catalog, profiles_in):
    profile, _ = calibrate_profile(tiny_catalog, [_point(measured_value=300.0)], name="rt")
    path = save_profile(profile)
    assert path == profiles_in / "rt.csv" and profile_dir() == profiles_in
    [loaded] = load_user_profiles()
    assert profile_factors(loaded) == pytest.approx(profile_factors(profile), rel=1e-9)
    assert loaded.profile_id == "rt"


def test_malformed_profile_file_is_a_catalog_error(profiles_in):
    profiles_in.mkdir()
    (profiles_in / "bad.csv").write_text("profile_id,engine\nx,vllm\n")
    with pytest.raises(CatalogError, match="missing column"):
        load_user_profiles()


def test_estimate_finds_a_user_profile(real_catalog, profiles_in):
    req = EstimateRequest(model="llama-3.1-8b", gpu="H100-SXM", input_tokens=1024, output_tokens=256)
    base = estimate(real_catalog, req)
    prof = dataclasses.replace(real_catalog.efficiency_for("vllm", real_catalog.gpu("H100-SXM")), profile_id="slow",
                               gpu_match="H100-SXM", mbu_frac=0.1, moe_mbu_frac=0.1, mfu_decode_frac=0.1,
                               mfu_prefill_frac=0.1)
    save_profile(prof)
    with_user = real_catalog.with_user_profiles(load_user_profiles())  # read by the caller: estimate reads no file
    slow = estimate(with_user, dataclasses.replace(req, profile="slow"))
    assert slow.efficiency_profile == "slow"
    assert slow.output_tokens_per_s < base.output_tokens_per_s


def test_vllm_bench_json_becomes_points():
    points = points_from_vllm_bench(json.dumps(BENCH), model=None, gpu="H100-SXM")
    assert [p.metric for p in points] == ["output_tokens_per_s", "ttft_ms", "tpot_ms"]
    first = points[0]
    # 204,800 / 200 = 1,024 input and 51,200 / 200 = 256 output tokens per request; closed loop at 32
    assert (first.input_tokens, first.output_tokens, first.scenario, first.concurrency) == (1024, 256, "serving", 32)
    assert first.model == "meta-llama/Llama-3.1-8B" and first.measured_value == pytest.approx(1280.0)


def test_vllm_bench_open_loop_and_static_batch():
    open_loop = points_from_vllm_bench(json.dumps({**BENCH, "max_concurrency": None, "request_rate": 4.0}),
                                       model="llama-3.1-8b", gpu="H100-SXM")
    assert open_loop[0].request_rate_per_s == pytest.approx(4.0) and open_loop[0].concurrency is None
    burst = points_from_vllm_bench(json.dumps({**BENCH, "max_concurrency": None}), model="llama-3.1-8b",
                                   gpu="H100-SXM")
    assert burst[0].scenario == "static_batch" and burst[0].concurrency == 200


@pytest.mark.parametrize("raw, match", [
    ("not json", "not valid JSON"), ("[1, 2]", "JSON object"),
    (json.dumps({**BENCH, "completed": None}), "completed"),
    (json.dumps({**BENCH, "output_throughput": -1.0}), "output_throughput"),
    (json.dumps({**BENCH, "total_input_tokens": float("nan")}), "total_input_tokens"),
])
def test_vllm_bench_rejects_bad_files(raw, match):
    with pytest.raises(InvalidInputError, match=match):
        points_from_vllm_bench(raw, model=None, gpu="H100-SXM")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_calibrate_then_estimate_with_the_profile(tmp_path, capsys, profiles_in):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(BENCH))
    code, out, _ = _run(capsys, "calibrate", "--vllm-bench", str(bench), "--gpu", "H100-SXM", "--model",
                        "llama-3.1-8b", "--name", "my-h100", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["profile"]["profile_id"] == "my-h100" and (profiles_in / "my-h100.csv").is_file()
    assert len(data["points"]) == 3
    code, out, _ = _run(capsys, "profiles", "--json")
    assert code == 0 and any(p["profile_id"] == "my-h100" and p["origin"] == "user" for p in json.loads(out))
    code, out, _ = _run(capsys, "estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--profile", "my-h100",
                        "--json")
    assert code == 0 and json.loads(out)["efficiency_profile"] == "my-h100"


@pytest.mark.parametrize("argv, code, message", [
    (["calibrate", "--name", "x"], 2, "exactly one of"),
    (["calibrate", "--vllm-bench", "/no/such.json", "--gpu", "H100-SXM", "--name", "x"], 2, "no such file"),
    (["calibrate", "--vllm-bench", "BENCH", "--name", "x"], 2, "--gpu is required"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--profile", "nope"], 2,
     "unknown efficiency profile"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, profiles_in, argv, code, message):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(BENCH))
    argv = [str(bench) if a == "BENCH" else a for a in argv]
    got, out, err = _run(capsys, *argv)
    assert got == code and message in err and len(err.strip().splitlines()) == 1


def test_cli_validate_json_counts_every_row(capsys):
    code, out, _ = _run(capsys, "validate", "--json", "--split", "holdout")
    assert code == 0
    data = json.loads(out)
    counts = data["counts"]
    assert counts["predicted"] + counts["unexpressible"] == counts["rows"]
    assert len(data["unexpressible"]) == counts["unexpressible"]
    assert "batch1_decode_tokens_per_s" in data["summary"]["holdout"]["metric"]
    assert "batch1_decode" in data["families"]["source_holdout"] and "leave_one_source_out" not in data["families"]


def test_cli_validate_user_csv_and_bad_csv(tmp_path, capsys):
    good = tmp_path / "mine.csv"
    good.write_text("model,gpu,num_gpus,precision,engine,scenario,input_tokens,output_tokens,metric,measured_value\n"
                    "llama-3.1-8b,H100-SXM,1,bf16,vllm,batch1,1,128,batch1_decode_tokens_per_s,150\n"
                    "llama-3.1-8b,No-GPU,1,bf16,vllm,batch1,1,128,batch1_decode_tokens_per_s,150\n")
    code, out, _ = _run(capsys, "validate", "--data", str(good))
    assert code == 0 and "1 of 2 rows predicted; 1 not expressible" in out and "No-GPU" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("model,gpu\nx,y\n")
    code, _, err = _run(capsys, "validate", "--data", str(bad))
    assert code == 2 and "missing column" in err


def test_jacobian_sparsity_covers_every_dependency(real_catalog):
    """The fit's finite differences perturb parameter blocks together where no residual depends on both: every
    residual that moves when a parameter moves must be marked in the sparsity pattern (else the Jacobian is
    wrong), checked on rows of every engine and class, older and current builds."""
    from planner.fit.calibration import _problem, fit_models

    chosen, seen = [], {}
    for p in read_measured():  # up to three rows of each (engine, GPU name prefix, era): every block has rows
        key = (p.engine, p.gpu[:2], p.era)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= 3:
            chosen.append(p)
    models = fit_models(real_catalog, chosen, engines=tuple(real_catalog.engines))
    residuals, start, sparsity, *_ = _problem(models, tuple(real_catalog.engines), FitSettings())
    dense = sparsity.toarray().astype(bool)
    rng = np.random.default_rng(0)
    x = start + rng.normal(0.0, 0.3, start.size)
    base = residuals(x)
    for j in range(start.size):
        step = x.copy()
        step[j] += 0.05
        moved = np.abs(residuals(step) - base) > 1e-12
        assert not (moved & ~dense[:, j]).any(), j


def test_era_offset_is_zero_without_older_rows(real_catalog):
    current = [p for p in read_measured() if p.split == "fit" and p.era != "older"]
    fit = fit_additive(real_catalog, current)
    assert fit.era_offset == pytest.approx((0.0,) * len(fit.era_offset), abs=1e-6)


def test_cli_validate_loso_refits_only_the_project_data(tmp_path, capsys):
    code, _, err = _run(capsys, "validate", "--loso", "--data", str(tmp_path / "x.csv"))
    assert code == 2 and "--loso refits the project's profiles" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("change, message", [
    ({"output_throughput": 1e300}, "output_throughput"),
    ({"num_prompts": "abc"}, "num_prompts"),
    ({"num_prompts": -3}, "num_prompts"),
    ({"output_throughput": 1e-300}, "output_throughput"),
])
def test_vllm_bench_values_outside_their_bands_are_rejected(change, message):
    from planner.fit.profile_store import points_from_vllm_bench

    good = {"backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "num_prompts": 200, "completed": 200,
            "total_input_tokens": 204800, "total_output_tokens": 51200, "output_throughput": 1280.0,
            "max_concurrency": 32, "mean_ttft_ms": 150.0, "mean_tpot_ms": 22.0}
    with pytest.raises(InvalidInputError, match=message):
        points_from_vllm_bench(json.dumps({**good, **change}), model=None, gpu="H100-SXM")


def test_profile_names_that_shadow_a_shipped_profile_or_are_too_long_are_refused():
    from planner.fit.profile_store import check_profile_name

    with pytest.raises(InvalidInputError, match="shipped profile"):
        check_profile_name("VLLM-datacenter", reserved=["vllm-datacenter"])
    with pytest.raises(InvalidInputError, match="at most 64"):
        check_profile_name("a" * 300)
    check_profile_name("my-h100-run")
