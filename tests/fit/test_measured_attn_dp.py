"""The measured-row attn_dp column: read from the project's files (the MLPerf DeepSeek-R1 rows whose configs state
attention data parallelism), absent from a user's CSV without breaking it."""

from __future__ import annotations

from planner.fit.measured import MEASURED_DIR, read_points


def test_mlperf_deepseek_rows_with_attention_dp_are_marked():
    points = read_points(MEASURED_DIR / "mlperf_v6.csv")
    marked = [p for p in points if p.attn_dp]
    # 77 whose configs state it, 29 v6.1 Offline rows ASSUMED from NVIDIA's v6.0 configs of the same GPU
    assert len(marked) == 77 + 29
    assert all("DeepSeek-R1" in p.model and p.tp == 8 and p.ep == 8 for p in marked)
    assert all(p.attn_dp is None for p in points if "DeepSeek" not in p.model)


def test_a_user_csv_may_leave_the_column_out_or_set_it():
    header = "model,gpu,num_gpus,precision,engine,scenario,input_tokens,output_tokens,metric,measured_value"
    row = "deepseek-ai/DeepSeek-R1,H200,8,fp8,sglang,offline,1000,1000,output_tokens_per_s,9000"
    (absent,) = read_points(f"{header}\n{row}\n".encode(), user=True)
    assert absent.attn_dp is None
    (given,) = read_points(f"{header},tp,ep,attn_dp\n{row},8,8,true\n".encode(), user=True)
    assert given.attn_dp is True and given.tp == 8
