"""data/measured/mlperf_v6.csv: MLPerf Inference v6.0/v6.1 closed-division LLM results, an independent set that
no fit reads (calibration reads data/measured/throughput.csv only), scored by `planner validate --data`.
Rows of N data-parallel replicas carry `dp` and are modelled as one replica (measured.per_instance)."""

from __future__ import annotations

import dataclasses

import pytest

from planner.fit.measured import MEASURED_DIR, MEASURED_FILE, MeasuredPoint, per_instance, read_measured
from planner.fit.validation import predict_rows
from tests.fit.test_source_split import _reserved

MLPERF_FILE = MEASURED_DIR / "mlperf_v6.csv"


@pytest.fixture(scope="module")
def mlperf_rows():
    return read_measured(MLPERF_FILE)


def test_rows_load_and_come_only_from_allowed_rounds(mlperf_rows):
    assert len(mlperf_rows) > 500
    assert {p.source_group for p in mlperf_rows} == {"mlperf-inference-v6.0-closed", "mlperf-inference-v6.1-closed"}
    assert all(p.split == "holdout" for p in mlperf_rows)
    assert not [(p.row_id, why) for p in mlperf_rows if (why := _reserved(p.source_url or ""))]


def test_no_fit_reads_the_mlperf_rows(mlperf_rows):
    fitted = {p.row_id for p in read_measured()}  # the default file, which calibration reads
    assert MEASURED_FILE.name == "throughput.csv" and not fitted & {p.row_id for p in mlperf_rows}
    assert not {p.source_group for p in read_measured()} & {p.source_group for p in mlperf_rows}


def test_per_instance_divides_the_system_by_dp():
    row = MeasuredPoint(row_id="r", split="holdout", model="m", gpu="B200", num_gpus=8, precision="fp8",
                        engine="trtllm", scenario="serving", input_tokens=300, output_tokens=280,
                        metric="output_tokens_per_s", measured_value=80_000.0, tp=1, dp=8, request_rate_per_s=285.7,
                        concurrency=1024)
    one = per_instance(row)
    # 8 replicas of 1 GPU: each serves 1/8 of the rate, sequences and tokens/s
    assert (one.num_gpus, one.tp, one.dp, one.concurrency) == (1, 1, None, 128)
    assert one.request_rate_per_s == pytest.approx(285.7 / 8) and one.measured_value == pytest.approx(10_000.0)
    ttft = dataclasses.replace(row, metric="ttft_ms", measured_value=450.0)
    assert per_instance(ttft).measured_value == 450.0  # a latency is the same in every replica
    assert per_instance(dataclasses.replace(row, dp=None)) == dataclasses.replace(row, dp=None)


def test_a_dp_row_is_predicted_as_dp_times_one_replica(real_catalog, mlperf_rows):
    row = next(p for p in mlperf_rows if p.dp and p.dp > 1 and p.metric == "output_tokens_per_s"
               and p.scenario == "offline")
    single = dataclasses.replace(per_instance(row), row_id="one")
    [whole], _ = predict_rows(real_catalog, [row], config_dir=MEASURED_DIR / "model_configs")
    [one], _ = predict_rows(real_catalog, [single], config_dir=MEASURED_DIR / "model_configs")
    assert whole.predicted_value == pytest.approx(one.predicted_value * row.dp)
    assert whole.ape_frac == pytest.approx(one.ape_frac)
