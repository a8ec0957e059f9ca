"""Collective cost by message size and kind: bytes per GPU (step_work.comm_terms), the achieved share of the
link as the message grows (performance.collective_transfer_s) and the sourced large-message share
(data/collectives.csv)."""

from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DENSE, TINY_MOE

from planner.errors import InvalidInputError
from planner.model.architecture import architecture_from_config
from planner.perf.evaluator import efficiency_of
from planner.perf.performance import Efficiency, collective_transfer_s
from planner.perf.step_work import COMM_LARGE_MESSAGE_BW_FRAC, comm_terms

DATA = Path(__file__).resolve().parents[2] / "data" / "collectives.csv"


def _eff(**kw) -> Efficiency:
    base = dict(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0, comm_latency_s=0.0)
    return Efficiency(**{**base, **kw})


def test_large_message_share_is_the_median_of_the_used_sourced_rows():
    with DATA.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["source_url"].startswith("https://") and r["source_accessed"] for r in rows)
    for r in rows:  # the share is the row's bus bandwidth over its link, as written
        assert float(r["large_message_bw_frac"]) == pytest.approx(
            float(r["bus_bandwidth_gb_s"]) / float(r["link_gb_s"]), abs=0.001), r["row_id"]
    used = [float(r["large_message_bw_frac"]) for r in rows if r["used"] == "yes"]
    # (0.822 + 0.817) / 2 = 0.8195 -> 0.82
    assert round(statistics.median(used), 2) == COMM_LARGE_MESSAGE_BW_FRAC == 0.82


def test_small_and_large_messages_by_hand():
    # comm_bw 0.1 (small), large 0.8, h = 10 us. x = 1 us per call: share at the small rate 10 / 11,
    # per-byte factor 1/0.8 + (10 - 1.25) x 10/11 = 1.25 + 7.9545 = 9.2045; 4 calls -> 4 us x 9.2045
    eff = _eff(comm_bw_frac=0.1, comm_large_bw_frac=0.8, comm_half_s=10e-6)
    assert collective_transfer_s(4e-6, 4.0, eff) == pytest.approx(4e-6 * (1.25 + 8.75 * 10 / 11))
    # x = 1 ms per call: 1.25 + 8.75 x 10/1010 = 1.3366 -> nearly the large-message rate
    assert collective_transfer_s(1e-3, 1.0, eff) == pytest.approx(1e-3 * (1.25 + 8.75 * 10 / 1010))
    # the extra cost over the large-message rate is bounded by (1/eta_s - 1/eta_l) x h per call
    big = collective_transfer_s(1.0, 1.0, eff)
    assert big - 1.0 / 0.8 < 8.75 * 10e-6


def test_infinite_half_size_is_one_bandwidth_and_zero_bytes_cost_nothing():
    old = _eff(comm_bw_frac=0.25)  # defaults: comm_half_s inf -> every byte at comm_bw_frac (the former model)
    assert collective_transfer_s(np.array([1e-6, 1e-3]), 2.0, old) == pytest.approx([4e-6, 4e-3])
    new = _eff(comm_bw_frac=0.25, comm_large_bw_frac=0.8, comm_half_s=np.array([0.0, 5e-6]))
    assert np.all(collective_transfer_s(0.0, 0.0, new) == 0.0)
    assert collective_transfer_s(1e-3, 1.0, _eff(comm_bw_frac=0.25, comm_large_bw_frac=0.8, comm_half_s=0.0)) \
        == pytest.approx(1e-3 / 0.8)  # h = 0: every byte at the large-message rate


def test_per_byte_cost_falls_with_the_message_size():
    eff = _eff(comm_bw_frac=0.12, comm_large_bw_frac=COMM_LARGE_MESSAGE_BW_FRAC, comm_half_s=145e-6)
    x = np.logspace(-7, -1, 40)
    per_byte = collective_transfer_s(x, 1.0, eff) / x
    assert np.all(np.diff(per_byte) < 0)
    assert per_byte[0] == pytest.approx(1 / 0.12, rel=1e-3) and per_byte[-1] == pytest.approx(1 / 0.82, rel=0.01)


def test_bad_half_size_is_refused():
    with pytest.raises(InvalidInputError, match="comm_half_s"):
        _eff(comm_half_s=-1.0)
    with pytest.raises(InvalidInputError, match="comm_large_bw_frac"):
        _eff(comm_large_bw_frac=1.5)


def test_bytes_per_kind_by_hand():
    arch = architecture_from_config(TINY_DENSE)  # hidden 1024, 2 layers
    link = 100.0  # GB/s
    # TP4 all-reduce, 10 tokens: 2 x 3/4 x 10 x 1024 x 2 B = 30,720 B per all-reduce, 2 per layer x 2 layers
    t, calls = comm_terms(arch, 10.0, tp=4, pp=1, link_gb_s=link, expert_parallel=False)
    assert calls == 4 and t == pytest.approx(4 * 30_720 / 100e9)
    # PP2 without TP: a stage sends the micro-batch's activations (10 x 1024 x 2 B = 20,480 B) to the next stage,
    # (pp-1)/pp = 1/2 of a send per stage step: 10,240 B and 0.5 calls
    t, calls = comm_terms(arch, 10.0, tp=1, pp=2, link_gb_s=link, expert_parallel=False)
    assert calls == pytest.approx(0.5) and t == pytest.approx(10_240 / 100e9)
    # nothing at tp = pp = 1
    t, calls = comm_terms(arch, 10.0, tp=1, pp=1, link_gb_s=link, expert_parallel=False)
    assert float(t) == 0.0 and float(calls) == 0.0


def test_all_to_all_only_under_attention_dp_bytes_by_hand():
    arch = architecture_from_config(TINY_MOE)  # hidden 1024, 2 MoE layers, top-2
    # EP4 inside a TP4 group (no attention DP) over 10 tokens: no all-to-all (every GPU holds every token; the MoE
    # output is all-reduced as under TP): all-reduce 2 x 3/4 x 10 x 1024 x 2 = 30,720 B, 2 per layer: 4 calls
    t, calls = comm_terms(arch, 10.0, tp=4, pp=1, link_gb_s=100.0, expert_parallel=True)
    assert calls == 4 and t == pytest.approx(4 * 30_720 / 100e9)
    t_tp, calls_tp = comm_terms(arch, 10.0, tp=4, pp=1, link_gb_s=100.0, expert_parallel=False)
    assert (float(t), float(calls)) == (float(t_tp), float(calls_tp))  # the collectives of tensor parallelism
    # attention DP: no all-reduce; each GPU dispatches its own 10/4 tokens: 3/4 x 2.5 x 2 x 1024 x 2 = 7,680 B
    t, calls = comm_terms(arch, 10.0, tp=4, pp=1, link_gb_s=100.0, expert_parallel=True, attn_dp=True)
    assert calls == 4 and t == pytest.approx(4 * 7_680 / 100e9)


def test_profile_columns_reach_the_efficiency(real_catalog):
    prof = real_catalog.efficiency_for("vllm", real_catalog.gpu("H100-SXM"))
    eff = efficiency_of(prof)
    assert eff.comm_large_bw_frac == prof.comm_large_bw_frac == COMM_LARGE_MESSAGE_BW_FRAC
    assert eff.comm_half_s == pytest.approx(prof.comm_half_us / 1e6)
    # a profile written before these columns: every message at comm_bw_frac, as the former model charged it
    old = efficiency_of(dataclasses.replace(prof, comm_large_bw_frac=None, comm_half_us=None))
    assert old.comm_half_s == math.inf and old.comm_large_bw_frac == 1.0
    assert collective_transfer_s(1e-3, 1.0, old) == pytest.approx(1e-3 / prof.comm_bw_frac)


def test_prefill_all_reduce_is_charged_near_the_large_message_rate(real_catalog):
    """Llama-3.3-70B-sized TP8 all-reduce of an 8,192-token prefill: 2 x 7/8 x 8192 x 8192 x 2 B = 234.9 MB per GPU,
    522 us at 450 GB/s. With the committed vLLM profile it costs well under the one-bandwidth charge at
    comm_bw_frac, and above the large-message rate."""
    eff = efficiency_of(real_catalog.efficiency_for("vllm", real_catalog.gpu("H100-SXM")))
    x = 2 * 7 / 8 * 8192 * 8192 * 2 / 450e9
    t = float(collective_transfer_s(x, 1.0, eff))
    assert x / COMM_LARGE_MESSAGE_BW_FRAC < t < 0.5 * x / eff.comm_bw_frac
