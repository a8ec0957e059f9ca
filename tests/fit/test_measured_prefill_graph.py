"""The measured-row prefill_cuda_graph column: true / false / empty (the engine's default for its build), filled in the
project's file only where a source states it, with a clear error for anything else."""

from __future__ import annotations

import pytest

from planner.errors import CatalogError
from planner.fit.measured import read_measured, read_points

HEADER = "model,gpu,num_gpus,precision,engine,scenario,input_tokens,output_tokens,metric,measured_value"
ROW = "deepseek-ai/DeepSeek-R1,B200,8,fp8,trtllm,serving,1000,1000,ttft_ms,190"


def test_a_user_csv_may_leave_the_column_out_or_set_it():
    (absent,) = read_points(f"{HEADER}\n{ROW}\n".encode(), user=True)
    assert absent.prefill_cuda_graph is None
    (on,) = read_points(f"{HEADER},prefill_cuda_graph\n{ROW},true\n".encode(), user=True)
    (off,) = read_points(f"{HEADER},prefill_cuda_graph\n{ROW},false\n".encode(), user=True)
    (empty,) = read_points(f"{HEADER},prefill_cuda_graph\n{ROW},\n".encode(), user=True)
    assert (on.prefill_cuda_graph, off.prefill_cuda_graph, empty.prefill_cuda_graph) == (True, False, None)


def test_a_bad_value_names_the_column_and_the_value():
    with pytest.raises(CatalogError, match=r"prefill_cuda_graph.*must be true or false.*'sometimes'"):
        read_points(f"{HEADER},prefill_cuda_graph\n{ROW},sometimes\n".encode(), user=True)


def test_the_project_rows_that_state_it():
    """TensorRT-LLM #5929 (0.21 PyTorch backend: context steps eager) and InferenceX #3317's 1k1k rows (the script
    turns the piecewise context graph on from 64 clients); every other row takes its engine build's default."""
    stated = {p.row_id: p.prefill_cuda_graph for p in read_measured() if p.prefill_cuda_graph is not None}
    assert all(k.startswith(("trt5929-", "ix3317-dsr1-b200-trt-1k1k-")) for k in stated)
    assert sum(k.startswith("trt5929-") for k in stated) == 20 and not any(
        v for k, v in stated.items() if k.startswith("trt5929-"))
    ix = {k: v for k, v in stated.items() if k.startswith("ix3317-")}
    assert len(ix) == 18
    assert all(v == (int(k.split("-c")[1].split("-")[0]) >= 64) for k, v in ix.items())
