"""The vectorised sweep agrees with estimate() configuration by configuration, and is fast."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from planner.errors import DoesNotFitError, InvalidInputError, UnknownNameError
from planner.perf.estimate import EstimateRequest, estimate
from planner.perf.sweep import COLUMNS, sweep


def _estimate_of(catalog, row, inp, out):
    return estimate(catalog, EstimateRequest(model=row["model_id"], gpu=row["gpu_id"], num_gpus=row["num_gpus"],
                                             precision=row["precision"], engine=row["engine"], input_tokens=inp,
                                             output_tokens=out))


def test_tiny_sweep_matches_estimate_everywhere(tiny_catalog):
    result = sweep(tiny_catalog, input_tokens=512, output_tokens=128, gpu_counts=(1, 2, 4))
    assert len(result) > 0
    for row in result.rows():
        if not row["fits"]:
            with pytest.raises((DoesNotFitError, InvalidInputError)):
                _estimate_of(tiny_catalog, row, 512, 128)
            assert math.isnan(row["output_tokens_per_s"])
            continue
        est = _estimate_of(tiny_catalog, row, 512, 128)
        assert (est.tp, est.pp, est.max_concurrency) == (row["tp"], row["pp"], row["max_concurrency"])
        assert est.output_tokens_per_s == pytest.approx(row["output_tokens_per_s"], rel=1e-9)
        assert est.output_tokens_per_s_per_user == pytest.approx(row["output_tokens_per_s_per_user"], rel=1e-9)
        assert est.ttft_s == pytest.approx(row["ttft_s"], rel=1e-9)
        assert est.efficiency_profile == row["efficiency_profile"]


def test_real_sweep_matches_estimate_on_a_sample(real_catalog):
    result = sweep(real_catalog, input_tokens=1024, output_tokens=256, gpu_counts=range(1, 9))
    rows = result.rows(only_fitting=True)
    random.seed(7)
    for row in random.sample(rows, 60):
        est = _estimate_of(real_catalog, row, 1024, 256)
        assert est.output_tokens_per_s == pytest.approx(row["output_tokens_per_s"], rel=1e-9), row
        assert est.max_concurrency == row["max_concurrency"]


def test_sweep_reports_what_does_not_fit(tiny_catalog):
    # 8,192-token context: a 9,000-token request fits no configuration
    result = sweep(tiny_catalog, input_tokens=8000, output_tokens=1000)
    assert not result["fits"].any()
    assert np.isnan(result["output_tokens_per_s"]).all()
    assert (result["max_concurrency"] == 0).all()


def test_more_gpus_never_hold_fewer_sequences(real_catalog):
    result = sweep(real_catalog, input_tokens=2048, output_tokens=512, models=["llama-3.1-70b"], gpus=["H100-SXM"],
                   precisions=["fp8"], gpu_counts=(1, 2, 4, 8))
    assert list(result["num_gpus"]) == [1, 2, 4, 8]
    assert np.all(np.diff(result["max_concurrency"]) >= 0)
    fits = result["fits"]
    assert np.all(np.diff(result["output_tokens_per_s"][fits]) > 0)


def test_more_bandwidth_and_memory_give_more_throughput(real_catalog):
    # H200: same compute as the H100, 4.8 vs 3.35 TB/s and 141 vs 80 GB (a larger batch fits)
    result = sweep(real_catalog, input_tokens=1024, output_tokens=256, models=["llama-3.1-8b"],
                   gpus=["H100-SXM", "H200"], precisions=["bf16"], gpu_counts=(1,))
    h100, h200 = result["output_tokens_per_s"]
    assert result["gpu_id"][0] == "H100-SXM" and h200 > h100 > 0
    assert result["max_concurrency"][1] > result["max_concurrency"][0]


def test_engine_restriction_and_names(real_catalog):
    result = sweep(real_catalog, input_tokens=1024, output_tokens=256, models=["llama-3.1-8b"], engine="llama.cpp",
                   gpu_counts=(1,))
    assert set(result["engine"]) == {"llama.cpp"}
    with pytest.raises(UnknownNameError, match="closest"):
        sweep(real_catalog, input_tokens=1, output_tokens=1, models=["llama-9"])


@pytest.mark.parametrize("kw, match", [
    (dict(input_tokens=0, output_tokens=1), "input_tokens"), (dict(input_tokens=-1, output_tokens=1), "input_tokens"),
    (dict(input_tokens=1, output_tokens=1.5), "output_tokens"), (dict(input_tokens=float("nan"), output_tokens=1),
                                                                 "input_tokens"),
    (dict(input_tokens=1, output_tokens=1, gpu_counts=(0,)), "gpu_count"),
    (dict(input_tokens=10_000_000, output_tokens=1), "<="),
])
def test_bad_inputs(tiny_catalog, kw, match):
    with pytest.raises(InvalidInputError, match=match):
        sweep(tiny_catalog, **kw)


def test_rows_have_every_column(tiny_catalog):
    row = sweep(tiny_catalog, input_tokens=64, output_tokens=64, gpu_counts=(1,)).rows()[0]
    assert set(row) == set(COLUMNS)


def test_full_sweep_covers_the_catalog(real_catalog):
    # Its speed is benchmarks/bench_sweep.py's figure (a timed assert fails on a loaded machine, not on slow code).
    result = sweep(real_catalog, input_tokens=1024, output_tokens=256, gpu_counts=range(1, 9))
    assert len(result) > 100_000
