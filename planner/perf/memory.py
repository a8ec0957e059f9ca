"""Memory fit: weights + KV cache + runtime overhead per GPU under tensor and pipeline parallelism.

Weights split evenly over the `tp x pp` GPUs of a replica (vLLM shards every linear layer,
the vocabulary embedding and, under expert parallelism, whole experts; norms are
replicated but negligible). The KV cache splits over pipeline stages by layer and over
tensor-parallel ranks by KV head, but a rank never holds less than one head: with more
ranks than KV heads the heads are replicated, and MLA's single latent "head" is
replicated on every rank [1]. The engine may use `memory_utilization_frac` of the GPU
memory (vLLM `--gpu-memory-utilization`), minus a runtime allowance for activations,
CUDA graphs and communication buffers.

[1] vLLM source, `vllm/model_executor/layers/linear.py` (QKVParallelLinear replicates KV
    heads when tp > num_kv_heads) and the MLA backend (latent cache on every TP rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner import units
from planner.errors import require_frac, require_non_negative, require_positive, require_positive_int


def kv_shard_factor(n_kv_heads: int, tp: int) -> int:
    """How many ways tensor parallelism splits the KV cache: min(tp, kv_heads); 1 for MLA."""
    require_positive_int(n_kv_heads=n_kv_heads, tp=tp)
    return min(tp, n_kv_heads)


@dataclass(frozen=True)
class MemoryFit:
    """Per-GPU memory budget of one replica at a concurrency."""

    weights_gb_per_gpu: float
    kv_gb_per_gpu: float
    kv_gb_per_sequence_per_gpu: float
    overhead_gb_per_gpu: float
    budget_gb_per_gpu: float
    free_gb_per_gpu: float  # negative when it does not fit
    max_concurrency: int  # largest number of sequences whose KV fits beside the weights (0 = none)
    fits: bool


def memory_fit(*, weights_bytes_total: float, kv_bytes_per_sequence: float, concurrency: int, tp: int, pp: int,
               n_kv_heads: int, usable_memory_gb: float, memory_utilization_frac: float,
               runtime_overhead_gb: float, max_num_seqs: int) -> MemoryFit:
    """Check that weights, KV for `concurrency` sequences and the runtime allowance fit on each GPU.

    per-GPU need = weights / (tp x pp)
                 + concurrency x KV per sequence / (pp x min(tp, kv_heads))
                 + runtime allowance
    budget       = usable memory x utilisation fraction
    """
    require_positive(weights_bytes_total=weights_bytes_total, usable_memory_gb=usable_memory_gb)
    require_non_negative(kv_bytes_per_sequence=kv_bytes_per_sequence, runtime_overhead_gb=runtime_overhead_gb)
    require_positive_int(tp=tp, pp=pp, n_kv_heads=n_kv_heads, max_num_seqs=max_num_seqs)
    require_frac(memory_utilization_frac=memory_utilization_frac)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
        require_positive_int(concurrency=concurrency)
    weights_gb = weights_bytes_total / (tp * pp) / units.GB
    kv_seq_gb = kv_bytes_per_sequence / (pp * kv_shard_factor(n_kv_heads, tp)) / units.GB
    budget = usable_memory_gb * memory_utilization_frac
    room = budget - weights_gb - runtime_overhead_gb
    if kv_seq_gb > 0:
        max_conc = int(min(max_num_seqs, max(0, math.floor(room / kv_seq_gb)))) if room > 0 else 0
    else:
        max_conc = max_num_seqs if room > 0 else 0
    kv_gb = concurrency * kv_seq_gb
    free = room - kv_gb
    return MemoryFit(weights_gb, kv_gb, kv_seq_gb, runtime_overhead_gb, budget, free, max_conc,
                     fits=free >= 0 and concurrency <= max(max_conc, 0) and room > 0)


def max_concurrency_array(*, weights_gb_per_gpu: np.ndarray, kv_gb_per_sequence_per_gpu: np.ndarray,
                          budget_gb_per_gpu: np.ndarray, runtime_overhead_gb: np.ndarray,
                          max_num_seqs: np.ndarray) -> np.ndarray:
    """Vectorised `memory_fit(...).max_concurrency` for sweeps (same formula, arrays in, ints out)."""
    room = budget_gb_per_gpu - weights_gb_per_gpu - runtime_overhead_gb
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(kv_gb_per_sequence_per_gpu > 0, np.floor(room / kv_gb_per_sequence_per_gpu), max_num_seqs)
    return np.where(room > 0, np.clip(n, 0, max_num_seqs), 0).astype(int)
