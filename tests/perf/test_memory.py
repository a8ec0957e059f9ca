"""Memory fit per GPU."""

from __future__ import annotations

import math

import pytest

from planner.errors import InvalidInputError
from planner.perf.memory import kv_shard_factor, memory_fit

BASE = dict(weights_bytes_total=140e9, kv_bytes_per_sequence=327_680 * 4096, concurrency=0, tp=4, pp=1,
            n_kv_heads=8, usable_memory_gb=80, memory_utilization_frac=0.9, runtime_overhead_gb=1.5,
            max_num_seqs=1024)


def test_llama70b_bf16_on_4x80gb_by_hand():
    fit = memory_fit(**BASE)
    # weights 140 GB / 4 = 35 GB; budget 80 * 0.9 = 72 GB; room 72 - 35 - 1.5 = 35.5 GB
    # KV per sequence 327,680 B * 4,096 = 1.342 GB, split over 4 ranks = 0.33554 GB -> floor(35.5 / 0.33554) = 105
    assert fit.weights_gb_per_gpu == pytest.approx(35.0)
    assert fit.budget_gb_per_gpu == pytest.approx(72.0)
    assert fit.kv_gb_per_sequence_per_gpu == pytest.approx(0.3355443, rel=1e-6)
    assert fit.max_concurrency == 105
    assert fit.fits


def test_concurrency_beyond_capacity_does_not_fit():
    fit = memory_fit(**{**BASE, "concurrency": 106})
    assert not fit.fits and fit.free_gb_per_gpu < 0


def test_weights_alone_too_big():
    fit = memory_fit(**{**BASE, "tp": 1})
    # 140 GB of weights on one 80 GB GPU
    assert fit.max_concurrency == 0 and not fit.fits


def test_kv_replicated_beyond_kv_heads():
    assert kv_shard_factor(8, 4) == 4
    assert kv_shard_factor(8, 16) == 8
    assert kv_shard_factor(1, 8) == 1  # MLA latent: every rank holds it


def test_max_num_seqs_caps_concurrency():
    fit = memory_fit(**{**BASE, "max_num_seqs": 64})
    assert fit.max_concurrency == 64


@pytest.mark.parametrize("field, value, match", [
    ("weights_bytes_total", 0, "weights_bytes_total"),
    ("weights_bytes_total", math.nan, "weights_bytes_total"),
    ("usable_memory_gb", -80, "usable_memory_gb"),
    ("memory_utilization_frac", 1.3, "memory_utilization_frac"),
    ("memory_utilization_frac", math.inf, "memory_utilization_frac"),
    ("tp", 0, "tp"),
    ("pp", 1.5, "pp"),
    ("concurrency", -1, "concurrency"),
    ("kv_bytes_per_sequence", -5, "kv_bytes_per_sequence"),
])
def test_bad_inputs(field, value, match):
    with pytest.raises(InvalidInputError, match=match):
        memory_fit(**{**BASE, field: value})
