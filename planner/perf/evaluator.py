"""The one replica evaluator: n configurations of one model, evaluated at once with numpy.

A configuration (`Candidate`) is a GPU, an engine, a weight precision, a KV-cache dtype, a
parallel layout inside the replica (`Layout`: tensor x pipeline x data parallel, expert
parallelism, or llama.cpp's sequential layer split) and an efficiency profile. `evaluate`
returns, for every configuration, the memory fit under the engine's policies, the largest
concurrency whose KV cache fits, and at the operating concurrency the TTFT, TPOT and
throughput with their calibrated range (both ends capped at the 100 %-efficiency roofline).
`step_time_fn` gives the same configurations' step time as a function of the running batch
and the prompt tokens a step carries, which the queueing model (`planner.perf.queueing`)
takes to turn a request rate into latency percentiles.

`estimate()` is a one-element call, the sweep and the plan optimizer call it on thousands.
The engine policies come from data/engines.csv (never from code):
- `kv_reservation`: `paged` engines hold a sequence's prompt plus half its output on average
  (blocks allocated as tokens arrive: W. Kwon et al., "PagedAttention", SOSP 2023; SGLang's
  token pool, arXiv:2312.07104); `full_sequence` engines reserve prompt plus the full output
  at admission (TensorRT-LLM's GUARANTEED_NO_EVICT scheduler, llama.cpp's per-slot context).
- `kv_memory_basis`: `total` (a fraction of the GPU, vLLM --gpu-memory-utilization) or `free`
  (a fraction of what the weights leave, TensorRT-LLM free_gpu_memory_fraction).
- `int8_matmul_precisions`: precision kinds or ids whose matmuls run on int8 units (llama.cpp MMQ).
- `layouts`: which of tp, pp, dp, ep, adp the engine runs, or `layer` (llama.cpp --split-mode layer:
  whole layers per GPU, run one after another for the whole batch, so more GPUs add memory,
  not speed). `adp`: attention data parallelism with expert parallelism for MoE models (SGLang
  --enable-dp-attention, vLLM --data-parallel-size with --enable-expert-parallel, TensorRT-LLM
  enable_attention_dp): see `Layout.attn_dp` and docs/moe_layouts.md.
- `fp8_checkpoint_kv_dtype`: the KV dtype the engine uses by default for an fp8 checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner import units
from planner.data.catalog import Catalog, EfficiencyProfile, Engine, Gpu, KvDtype, Precision
from planner.errors import InvalidInputError
from planner.model.architecture import Architecture, kv_bytes_per_sequence
from planner.model.quantization import WeightFormat, check_compatible, compute_tflops, weight_format
from planner.perf.performance import Efficiency, decode_terms
from planner.perf.serving import PointTerms, chunk_step_tokens, eager_launches, point_terms, prefill_graph_max_tokens
from planner.perf.step_work import activation_bytes_per_token

MAX_GPUS = 4096
LAYOUT_GROUPS = ((False, False), (True, False), (True, True))  # (ep, attn_dp) pairs a layout can have
# Perfect efficiency and no fixed costs: the bound no prediction (nor a range end) may beat.
ROOFLINE = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                      comm_latency_s=0.0, moe_mbu_frac=1.0, comm_bw_frac=1.0, expert_overhead_s=0.0,
                      overhead_overlap_frac=0.0, layer_overhead_s=0.0)


@dataclass(frozen=True)
class Layout:
    """How one replica's GPUs are used: `dp` engine instances, each `tp x pp` GPUs.

    `layer_split`: the pp stages run one after another for the whole batch (llama.cpp), not
    as a pipeline of micro-batches. `ep`: MoE experts sharded over the tp group.
    `attn_dp` (with `ep`): attention data-parallel over the tp group. Each of its GPUs holds the attention
    and dense weights whole and runs them for its own 1/tp of the instance's sequences, with their KV cache
    (neither replicated nor split by head); the routed experts are sharded over the group (EP) and reached
    by an all-to-all dispatch and combine per MoE layer. No all-reduce. The DeepSeek serving layout: an MLA
    model's single latent KV head would otherwise be replicated on every tensor-parallel rank.
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: bool = False
    layer_split: bool = False
    attn_dp: bool = False

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def instance_gpus(self) -> int:
        return self.tp * self.pp

    @property
    def label(self) -> str:
        if self.layer_split and self.pp > 1:
            parts = [f"layer split over {self.pp}"]
        elif self.attn_dp:
            parts = [f"attention DP{self.tp}", f"EP{self.tp}"] + ([f"PP{self.pp}"] if self.pp > 1 else [])
        else:
            parts = [f"TP{self.tp}"] + ([f"PP{self.pp}"] if self.pp > 1 else [])
        if self.ep and not self.attn_dp:
            parts.append("EP")
        if self.dp > 1:
            parts.append(f"DP{self.dp}")
        return " x ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "ep": self.ep, "layer_split": self.layer_split,
                "attn_dp": self.attn_dp, "label": self.label}


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layout_problem(engine: Engine, arch: Architecture, gpu: Gpu, layout: Layout) -> str | None:
    """Why the engine cannot run this layout for this model on this GPU (None: it can)."""
    return _problem(tuple(engine.layouts), engine.engine_id, arch.n_attention_heads, arch.n_layers, arch.is_moe,
                    gpu.max_gpus_per_node, layout)


def _problem(allowed_layouts: tuple[str, ...], engine_id: str, heads: int, layers: int, moe: bool, per_node: int,
             layout: Layout) -> str | None:
    allowed = set(allowed_layouts)
    if layout.gpus > MAX_GPUS:
        return f"more than {MAX_GPUS} GPUs"
    if layout.layer_split != ("layer" in allowed) and layout.pp > 1:
        return (f"{engine_id} splits layers sequentially" if "layer" in allowed
                else f"{engine_id} pipelines, it does not split layers sequentially")
    if layout.tp > 1 and "tp" not in allowed:
        return f"{engine_id} has no tensor parallelism"
    if layout.pp > 1 and not ({"pp", "layer"} & allowed):
        return f"{engine_id} has no pipeline parallelism"
    if layout.dp > 1 and "dp" not in allowed:
        return f"{engine_id} has no data-parallel replicas"
    if layout.ep and ("ep" not in allowed or not moe):
        return "expert parallelism needs an MoE model and an engine that shards experts"
    if layout.ep and layout.tp < 2:
        return "expert parallelism needs at least 2 GPUs in the tensor-parallel group"
    if layout.attn_dp and ("adp" not in allowed or not moe):
        return "attention data parallelism needs an MoE model and an engine that runs it (engines.csv adp)"
    if layout.attn_dp and not layout.ep:
        return "attention data parallelism shards the experts: it needs expert parallelism"
    if heads % layout.tp and not layout.attn_dp:
        return f"tp {layout.tp} does not divide the {heads} attention heads"
    if layout.tp > per_node:
        return f"tp {layout.tp} spans more than one {per_node}-GPU node"
    if layout.pp > layers:
        return f"pp {layout.pp} exceeds the {layers} layers"
    return None


def layouts_for(engine: Engine, arch: Architecture, gpu: Gpu, num_gpus: int) -> list[Layout]:
    """Every layout the engine can run on exactly `num_gpus` GPUs (tp x pp x dp = num_gpus; for an MoE model with
    and without EP, and attention-DP + EP where the engine runs it)."""
    return list(_layouts(tuple(engine.layouts), engine.engine_id, arch.n_attention_heads, arch.n_layers, arch.is_moe,
                         gpu.max_gpus_per_node, num_gpus))


@functools.lru_cache(maxsize=4096)
def _layouts(allowed: tuple[str, ...], engine_id: str, heads: int, layers: int, moe: bool, per_node: int,
             num_gpus: int) -> tuple[Layout, ...]:
    layer = "layer" in allowed
    out = []
    for dp in _divisors(num_gpus):
        rest = num_gpus // dp
        for tp in _divisors(rest):
            pp = rest // tp
            for ep, adp in LAYOUT_GROUPS:
                cand = Layout(tp, pp, dp, ep, layer, adp)
                if _problem(allowed, engine_id, heads, layers, moe, per_node, cand) is None:
                    out.append(cand)
    return tuple(out)


def default_layout(engine: Engine, arch: Architecture, gpu: Gpu, num_gpus: int, *, tp: int | None = None,
                   pp: int | None = None, dp: int | None = None, ep: bool = False, attn_dp: bool = False) -> Layout:
    """The layout used when the user fixes some or none of tp, pp, dp: the fixed ones as given; otherwise one
    instance over all GPUs, tensor parallel inside a node (the largest size dividing the heads; with `attn_dp`
    the largest that fits a node: attention is not split by head), pipeline stages across nodes; llama.cpp
    splits layers. `attn_dp` implies `ep`. InvalidInputError when the fixed values do not multiply out."""
    layer = "layer" in engine.layouts
    dp = dp or 1
    if num_gpus % dp:
        raise InvalidInputError(f"dp ({dp}) must divide num_gpus ({num_gpus})")
    rest = num_gpus // dp
    if tp is not None and pp is not None:
        if tp * pp != rest:
            raise InvalidInputError(f"tp x pp x dp ({tp} x {pp} x {dp}) must equal num_gpus ({num_gpus})")
    elif tp is not None:
        if rest % tp:
            raise InvalidInputError(f"tp ({tp}) must divide num_gpus / dp ({rest})")
        pp = rest // tp
    elif pp is not None:
        if rest % pp:
            raise InvalidInputError(f"pp ({pp}) must divide num_gpus / dp ({rest})")
        tp = rest // pp
    elif layer:
        tp, pp = 1, rest
    else:
        tp = max(c for c in _divisors(rest) if c <= gpu.max_gpus_per_node
                 and (attn_dp or arch.n_attention_heads % c == 0))
        pp = rest // tp
    return Layout(tp, pp, dp, ep or attn_dp, layer, attn_dp)


@dataclass(frozen=True)
class Candidate:
    """One resolved configuration of a replica."""

    gpu: Gpu
    engine: Engine
    precision: Precision
    kv: KvDtype
    fmt: WeightFormat
    layout: Layout
    profile: EfficiencyProfile
    max_num_seqs: int  # the engine's batch limit, or the user's

    @property
    def num_gpus(self) -> int:
        return self.layout.gpus


def default_kv_dtype_id(engine: Engine, precision: Precision, gpu: Gpu) -> str:
    """The KV dtype an engine uses unless told otherwise: fp16 on llama.cpp, bf16 elsewhere, and the engine's
    `fp8_checkpoint_kv_dtype` for an fp8 checkpoint on a GPU with fp8 units (TensorRT-LLM)."""
    if engine.fp8_checkpoint_kv_dtype and precision.precision_id == "fp8" and gpu.supports("fp8"):
        return engine.fp8_checkpoint_kv_dtype
    return "fp16" if engine.engine_id == "llama.cpp" else "bf16"


def serves_gguf(engine: Engine) -> bool:
    """Whether the engine loads GGUF files (a `gguf` precision kind in engines.csv: llama.cpp), whose tensor types
    differ from the Hugging Face checkpoint's (`quantization.weight_format`)."""
    return "gguf" in engine.precision_kinds


def int8_matmuls(engine: Engine, precision: Precision) -> bool:
    """Whether the engine runs this precision's matmuls on int8 units (engines.csv int8_matmul_precisions)."""
    listed = engine.int8_matmul_precisions or ()
    return precision.kind in listed or precision.precision_id in listed


GEMM_FORMATS = ("fp8", "fp4", "int8")  # formats with their own MFU scale on a profile; 16-bit float is the reference
SCALE_FIELD = {"fp8": "mfu_fp8_scale", "fp4": "mfu_fp4_scale", "int8": "mfu_int8_scale"}  # EfficiencyProfile fields


def gemm_format(engine: Engine, precision: Precision, fmt: WeightFormat, gpu: Gpu) -> str:
    """The format the matmuls run in, as the per-format MFU scales key it: "int8" where the engine runs the
    precision on int8 units (llama.cpp MMQ; its MXFP4 kernel is "fp4"), else the weight format's compute format
    when it is 8- or 4-bit ("fp8", "fp4", "int8"), else "16bit" (bf16 / fp16, also weight-only formats that are
    dequantized, and formats the GPU lacks, which run at bf16)."""
    if int8_matmuls(engine, precision) and gpu.int8_dense_tops:
        return "fp4" if precision.compute_format == "fp4" else "int8"
    return fmt.compute_format if fmt.compute_format in GEMM_FORMATS else "16bit"


def gemm_format_of(c: Candidate) -> str:
    return gemm_format(c.engine, c.precision, c.fmt, c.gpu)


def mfu_scale(prof: EfficiencyProfile, gemm: str) -> float:
    """The profile's MFU scale for a GEMM format (1 for 16-bit float, and where the profile has none)."""
    value = getattr(prof, SCALE_FIELD[gemm]) if gemm in SCALE_FIELD else None
    return 1.0 if value is None else float(value)


def tflops_of(c: Candidate) -> float:
    """Per-GPU rate the matmuls run at: the format's dense tensor peak (int8 where the engine uses int8 units)
    times the share of it that measured large GEMMs reach on this GPU relative to the reference GPU the fitted
    efficiencies are calibrated on (`Gpu.rate_factor`, data/gemm_attainable.csv; 1 without a row). The one place
    a format's compute rate is taken from the GPU."""
    if int8_matmuls(c.engine, c.precision) and c.gpu.int8_dense_tops:
        return c.gpu.int8_dense_tops * c.gpu.rate_factor("int8")
    ran = c.fmt.compute_format if c.gpu.supports(c.fmt.compute_format) else "bf16"  # compute_tflops' fallback
    return compute_tflops(c.gpu, c.fmt) * c.gpu.rate_factor(ran)


def held_tokens(reservation: Any, input_tokens: Any, output_tokens: Any) -> Any:
    """KV tokens one running sequence holds: prompt + full output (full_sequence) or + half of it (paged)."""
    full = np.asarray(reservation) == "full_sequence"
    return np.where(full, np.asarray(input_tokens, float) + output_tokens, np.asarray(input_tokens, float)
                    + np.asarray(output_tokens, float) / 2.0)


@dataclass(frozen=True)
class CandidateSet:
    """Many candidates that share a few base configurations and differ in layout (and batch limit): the
    form a search builds without one Python object per configuration. `bases[i]`'s layout is ignored."""

    bases: Sequence[Candidate]
    base_index: np.ndarray  # (n,) index into bases
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    ep: np.ndarray
    layer_split: np.ndarray
    max_num_seqs: np.ndarray
    attn_dp: np.ndarray  # (n,) bool: attention data-parallel over the tp group (Layout.attn_dp)

    def __len__(self) -> int:
        return len(self.base_index)

    def candidate(self, i: int) -> Candidate:
        """The i-th configuration as a Candidate."""
        from dataclasses import replace

        lay = Layout(int(self.tp[i]), int(self.pp[i]), int(self.dp[i]), bool(self.ep[i]), bool(self.layer_split[i]),
                     bool(self.attn_dp[i]))
        return replace(self.bases[int(self.base_index[i])], layout=lay, max_num_seqs=int(self.max_num_seqs[i]))

    @classmethod
    def of(cls, cands: Sequence[Candidate]) -> CandidateSet:
        n = len(cands)
        i = lambda values, dtype=float: np.fromiter(values, dtype=dtype, count=n)  # noqa: E731
        return cls(list(cands), np.arange(n), i(c.layout.tp for c in cands), i(c.layout.pp for c in cands),
                   i(c.layout.dp for c in cands), i((c.layout.ep for c in cands), bool),
                   i((c.layout.layer_split for c in cands), bool), i(c.max_num_seqs for c in cands),
                   i((c.layout.attn_dp for c in cands), bool))

    @classmethod
    def expand(cls, bases: Sequence[Candidate], layouts_of: Callable[[Candidate], Sequence[Layout]],
               max_num_seqs_options: Sequence[int | None] = (None,)) -> CandidateSet:
        """Every base x each of its layouts x each batch limit (None: the base's own).

        `layouts_of` must depend on a base only through its engine and its GPU's node size (it is called
        once per such pair).
        """
        per_key: dict[tuple, np.ndarray] = {}
        key_of = [(b.engine.engine_id, b.gpu.max_gpus_per_node) for b in bases]
        for b, key in zip(bases, key_of, strict=True):
            if key not in per_key:
                lays = layouts_of(b)
                per_key[key] = np.array([(lay.tp, lay.pp, lay.dp, lay.ep, lay.layer_split, lay.attn_dp)
                                         for lay in lays], dtype=float).reshape(-1, 6)
        counts = np.array([len(per_key[k]) for k in key_of], dtype=int)
        base_index = np.repeat(np.arange(len(bases)), counts)
        rows = np.concatenate([per_key[k] for k in key_of]) if len(bases) else np.zeros((0, 6))
        own = np.array([b.max_num_seqs for b in bases], dtype=float)[base_index] if len(bases) else np.zeros(0)
        m = len(max_num_seqs_options)
        seqs = np.concatenate([own if opt is None else np.full(len(own), float(opt)) for opt in max_num_seqs_options])
        rows = np.tile(rows, (m, 1))
        base_index = np.tile(base_index, m)
        return cls(list(bases), base_index, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3].astype(bool),
                   rows[:, 4].astype(bool), seqs, rows[:, 5].astype(bool))

    def labels(self) -> np.ndarray:
        """Each configuration's layout label (e.g. "TP2 x DP4")."""
        keys = np.stack([self.tp, self.pp, self.dp, self.ep, self.layer_split, self.attn_dp], axis=1).astype(int)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        names = np.array([Layout(int(a), int(b), int(c), bool(d), bool(e), bool(f)).label
                          for a, b, c, d, e, f in uniq], dtype=object)
        return names[inverse.reshape(-1)]

    def take(self, keep: np.ndarray) -> CandidateSet:
        return CandidateSet(self.bases, self.base_index[keep], self.tp[keep], self.pp[keep], self.dp[keep],
                            self.ep[keep], self.layer_split[keep], self.max_num_seqs[keep], self.attn_dp[keep])


def _as_set(cands: Sequence[Candidate] | CandidateSet) -> CandidateSet:
    return cands if isinstance(cands, CandidateSet) else CandidateSet.of(cands)


@dataclass(frozen=True)
class _Table:
    """Per-candidate constants as arrays."""

    n: int
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    ep: np.ndarray
    layer: np.ndarray
    adp: np.ndarray
    kv_bytes: np.ndarray
    expert_b: np.ndarray
    dense_b: np.ndarray
    embed_b: np.ndarray
    mla_b: np.ndarray  # MLA latent projections' bytes per param (WeightFormat.mla_proj_bytes_per_param, else dense)
    mla_slow: np.ndarray  # WeightFormat.mla_proj_slowdown
    bmm_slow: np.ndarray  # WeightFormat.attn_bmm_slowdown
    dense_slow: np.ndarray  # WeightFormat.dense_gemm_slowdown
    gemm_rows: np.ndarray  # WeightFormat.gemm_min_rows
    act_b: np.ndarray  # WeightFormat.activation_bytes_per_elem
    usable_gb: np.ndarray
    util: np.ndarray
    overhead_gb: np.ndarray
    free_basis: np.ndarray
    reservation: np.ndarray
    max_seqs: np.ndarray
    bandwidth: np.ndarray
    tflops: np.ndarray
    link: np.ndarray
    budget_tokens: np.ndarray
    eff: Efficiency
    range_low: np.ndarray
    range_high: np.ndarray
    graph_tokens: np.ndarray  # the largest context step the engine's current release graphs (serving.
    graph_tokens_mla: np.ndarray  # prefill_graph_max_tokens), for other and for MLA models

    @classmethod
    def of(cls, cands: Sequence[Candidate] | CandidateSet) -> _Table:
        cs = _as_set(cands)
        bases = cs.bases
        f = lambda values: np.fromiter(values, dtype=float, count=len(bases))[cs.base_index]  # noqa: E731
        b = lambda values: np.fromiter(values, dtype=bool, count=len(bases))[cs.base_index]  # noqa: E731
        eff = np.array([_eff_row(c.profile, gemm_format_of(c)) for c in bases],
                       dtype=float).reshape(len(bases), -1)[cs.base_index]
        return cls(
            n=len(cs), tp=cs.tp, pp=cs.pp, dp=cs.dp, ep=cs.ep, layer=cs.layer_split, adp=cs.attn_dp,
            kv_bytes=f(c.kv.bytes_per_elem for c in bases), expert_b=f(c.fmt.expert_bytes_per_param for c in bases),
            dense_b=f(c.fmt.dense_bytes_per_param for c in bases),
            embed_b=f(c.fmt.embed_bytes_per_param for c in bases),
            mla_b=f(c.fmt.dense_bytes_per_param if c.fmt.mla_proj_bytes_per_param is None
                    else c.fmt.mla_proj_bytes_per_param for c in bases),
            mla_slow=f(c.fmt.mla_proj_slowdown for c in bases), bmm_slow=f(c.fmt.attn_bmm_slowdown for c in bases),
            dense_slow=f(c.fmt.dense_gemm_slowdown for c in bases),
            gemm_rows=f(c.fmt.gemm_min_rows for c in bases),
            act_b=f(c.fmt.activation_bytes_per_elem for c in bases),
            usable_gb=f(c.gpu.usable_memory_gb for c in bases),
            util=f(c.engine.memory_utilization_frac for c in bases),
            overhead_gb=f(c.engine.runtime_overhead_gb for c in bases),
            free_basis=b(c.engine.kv_memory_basis == "free" for c in bases),
            reservation=np.array([c.engine.kv_reservation for c in bases], dtype=object)[cs.base_index],
            # the batch limit is each engine rank's: an attention-DP group of tp ranks runs tp x it
            max_seqs=np.where(cs.attn_dp, cs.max_num_seqs * cs.tp, cs.max_num_seqs),
            bandwidth=f(c.gpu.memory_bandwidth_tb_s for c in bases),
            tflops=f(tflops_of(c) for c in bases), link=f(c.gpu.interconnect_bandwidth_gb_s for c in bases),
            budget_tokens=f(c.engine.max_num_batched_tokens or math.inf for c in bases),
            eff=Efficiency.from_array(eff), range_low=f(c.profile.range_low_factor for c in bases),
            range_high=f(c.profile.range_high_factor for c in bases),
            **_graph_tokens(cs, f))

    def fmt(self, idx: np.ndarray) -> WeightFormat:
        return WeightFormat("mixed", self.expert_b[idx], self.dense_b[idx], self.embed_b[idx], "mixed", True,
                            mla_proj_bytes_per_param=self.mla_b[idx], mla_proj_slowdown=self.mla_slow[idx],
                            attn_bmm_slowdown=self.bmm_slow[idx], activation_bytes_per_elem=self.act_b[idx],
                            dense_gemm_slowdown=self.dense_slow[idx], gemm_min_rows=self.gemm_rows[idx])


def _graph_tokens(cs: CandidateSet, f: Callable) -> dict[str, np.ndarray]:
    """Each candidate's largest CUDA-graphed context step in its engine's current release (`prefill_graph_max_tokens`;
    only SGLang's depends on the layout: none under attention DP or pipeline parallelism)."""
    out = {}
    for name, mla in (("graph_tokens", False), ("graph_tokens_mla", True)):
        plain = f(prefill_graph_max_tokens(c.engine.engine_id, amd=c.gpu.vendor.lower() == "amd", mla=mla)
                  for c in cs.bases)
        split = f(prefill_graph_max_tokens(c.engine.engine_id, amd=c.gpu.vendor.lower() == "amd", mla=mla,
                                           attn_dp=True) for c in cs.bases)
        out[name] = np.where(np.asarray(cs.attn_dp, dtype=bool) | (np.asarray(cs.pp) > 1), split, plain)
    return out


@functools.lru_cache(maxsize=4096)
def _eff_row(profile: EfficiencyProfile, gemm: str = "16bit") -> np.ndarray:
    """A profile's efficiency as an EFFICIENCY_FIELDS array, cached by the profile's value (frozen, hashable)."""
    return efficiency_of(profile, gemm).to_array()


def efficiency_of(prof: EfficiencyProfile, gemm: str = "16bit") -> Efficiency:
    """The performance model's `Efficiency` from a catalog or user profile row, for matmuls in the GEMM format
    `gemm` (`gemm_format`): both MFU fractions times the profile's scale for that format, at most 1 (so no
    prediction beats the roofline). Otherwise unit conversions only."""
    scale = mfu_scale(prof, gemm)
    return Efficiency(mbu_frac=prof.mbu_frac, mfu_decode_frac=min(1.0, prof.mfu_decode_frac * scale),
                      mfu_prefill_frac=min(1.0, prof.mfu_prefill_frac * scale),
                      step_overhead_s=prof.step_overhead_ms / units.MS_PER_S,
                      comm_latency_s=prof.comm_latency_us / units.MILLION, moe_mbu_frac=prof.moe_mbu_frac,
                      comm_bw_frac=1.0 if prof.comm_bw_frac is None else prof.comm_bw_frac,
                      expert_overhead_s=(prof.moe_expert_overhead_us or 0.0) / units.MILLION,
                      overhead_overlap_frac=prof.overhead_overlap_frac or 0.0,
                      layer_overhead_s=(prof.layer_overhead_us or 0.0) / units.MILLION,
                      request_overhead_s=(prof.request_overhead_ms or 0.0) / units.MS_PER_S,
                      comm_large_bw_frac=1.0 if prof.comm_large_bw_frac is None else prof.comm_large_bw_frac,
                      comm_half_s=math.inf if prof.comm_half_us is None else prof.comm_half_us / units.MILLION,
                      eager_launch_s=(prof.eager_launch_us or 0.0) / units.MILLION)


@dataclass(frozen=True)
class Evaluation:
    """Per-configuration results (parallel arrays, length n). Speeds are NaN where `fits` is False.

    Replica figures (`output_tokens_per_s*`) count every data-parallel instance; latencies are one
    request's. `*_low` / `*_high` are the ends of the calibrated range (for latencies: low = fast),
    never beyond the roofline.
    """

    fits: np.ndarray
    max_concurrency: np.ndarray  # per instance: sequences whose KV fits, capped by the batch limit
    concurrency: np.ndarray  # per instance, at the operating point
    held_tokens: np.ndarray  # KV tokens a running sequence holds
    weights_gb_per_gpu: np.ndarray
    kv_gb_per_sequence_per_gpu: np.ndarray
    kv_gb_per_gpu: np.ndarray
    budget_gb_per_gpu: np.ndarray
    free_gb_per_gpu: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    output_tokens_per_s: np.ndarray  # whole replica
    prefill_tokens_per_s: np.ndarray  # one prompt alone
    ttft_s_low: np.ndarray
    ttft_s_high: np.ndarray
    tpot_s_low: np.ndarray
    tpot_s_high: np.ndarray
    output_tokens_per_s_low: np.ndarray
    output_tokens_per_s_high: np.ndarray
    memory_s: np.ndarray  # step components at the operating point (bottleneck)
    compute_s: np.ndarray
    roofline_tpot_s: np.ndarray
    roofline_ttft_s: np.ndarray


def _kv_gb_per_seq_per_gpu(arch: Architecture, t: _Table, held: np.ndarray) -> np.ndarray:
    out = np.empty(t.n)
    for kvb in np.unique(t.kv_bytes):
        m = t.kv_bytes == kvb
        out[m] = kv_bytes_per_sequence(arch, held[m], float(kvb))
    # memory.kv_shard_factor; under attention DP each GPU holds whole sequences, 1/tp of them
    shard = np.where(t.adp, t.tp, np.minimum(t.tp, float(arch.n_kv_heads)))
    return out / (t.pp * shard) / units.GB


def _memory(arch: Architecture, t: _Table, held: np.ndarray) -> tuple[np.ndarray, ...]:
    """(weights, KV per sequence, budget, room: GB per GPU; max concurrency), as memory.memory_fit; under
    attention DP (`t.adp`) the non-expert weights are whole on every GPU, the routed experts split tp x pp ways."""
    fmt = t.fmt(np.arange(t.n))
    total = fmt.total_bytes(arch)
    experts = arch.routed_expert_params * t.expert_b
    weights = np.where(t.adp, (total - experts) / t.pp + experts / (t.tp * t.pp), total / (t.tp * t.pp)) / units.GB
    usable, frac = t.usable_gb, t.util
    free = usable - weights - t.overhead_gb
    # a fraction f of the *free* memory is the budget usable' x 1 with usable' = usable - (1 - f) x free
    usable = np.where(t.free_basis, usable - (1.0 - frac) * np.maximum(free, 0.0), usable)
    budget = usable * np.where(t.free_basis, 1.0, frac)
    room = budget - weights - t.overhead_gb
    kv_seq = _kv_gb_per_seq_per_gpu(arch, t, held)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(kv_seq > 0, np.floor(room / kv_seq), t.max_seqs)
    conc = np.where(room > 0, np.clip(cap, 0, t.max_seqs), 0).astype(int)
    return weights, kv_seq, budget, room, conc


def _terms(arch: Architecture, t: _Table, concurrency: np.ndarray, input_tokens: float,
           output_tokens: float) -> PointTerms:
    """Roofline terms at `concurrency` (per instance), grouped by KV dtype, EP and attention DP (scalars in the step
    model).

    A sequential layer split runs every stage on the whole batch: the same terms as a pipeline whose
    pp micro-batches are each the batch, i.e. pipeline terms at pp x concurrency, producing concurrency
    tokens per cycle.
    """
    c_terms = np.where(t.layer, concurrency * t.pp, concurrency)
    pieces: list[tuple[np.ndarray, PointTerms]] = []
    for kvb in np.unique(t.kv_bytes):
        for ep, adp in LAYOUT_GROUPS:
            idx = np.flatnonzero((t.kv_bytes == kvb) & (t.ep == ep) & (t.adp == adp))
            if idx.size:
                pieces.append((idx, point_terms(
                    arch, t.fmt(idx), concurrency=c_terms[idx], input_tokens=input_tokens,
                    output_tokens=output_tokens, kv_bytes_per_elem=float(kvb), tp=t.tp[idx], pp=t.pp[idx],
                    memory_bandwidth_tb_s=t.bandwidth[idx], compute_tflops=t.tflops[idx],
                    interconnect_bandwidth_gb_s=t.link[idx], expert_parallel=ep,
                    prefill_budget_tokens=t.budget_tokens[idx], attn_dp=adp)))
    if len(pieces) == 1:
        terms = pieces[0][1]
        return PointTerms(concurrency=np.asarray(concurrency, float), input_tokens=terms.input_tokens,
                          step=_eager_step(arch, t, _broadcast(terms.step, t.n), c_terms, input_tokens, output_tokens),
                          prefill=_eager_prefill(arch, t, _broadcast(terms.prefill, t.n), input_tokens))
    step = _merge([p.step for _, p in pieces], [i for i, _ in pieces], t.n)
    prefill = _merge([p.prefill for _, p in pieces], [i for i, _ in pieces], t.n)
    prefill = _eager_prefill(arch, t, prefill, input_tokens)
    step = _eager_step(arch, t, step, c_terms, input_tokens, output_tokens)
    return PointTerms(concurrency=np.asarray(concurrency, float), input_tokens=float(input_tokens), step=step,
                      prefill=prefill)


def _graph_cap(arch: Architecture, t: _Table) -> np.ndarray:
    """Each candidate's largest CUDA-graphed context step for this model (MLA models have their own limit)."""
    return t.graph_tokens_mla if arch.attention == "mla" else t.graph_tokens


def _eager_prefill(arch: Architecture, t: _Table, prefill: Any, input_tokens: float) -> Any:
    """The prefill terms with the kernels each of its steps launches without a CUDA graph (`eager_launches`)."""
    cap = _graph_cap(arch, t)
    steps = np.asarray(prefill.steps, dtype=float)
    return dataclasses.replace(prefill, eager_launches=eager_launches(prefill.launches, input_tokens / steps, cap))


def _eager_chunk(step: Any, step_tokens: Any, graph_cap: Any) -> Any:
    """Step terms whose prompt-chunk step of `step_tokens` tokens (decode tokens and the chunk) launches its kernels
    without a CUDA graph where it is larger than `graph_cap` (`_graph_cap`): the one rule of the estimate's
    steady state (`_eager_step`) and of the queueing model's step function (`step_time_fn`)."""
    return dataclasses.replace(step, eager_launches_chunk=eager_launches(step.launches, step_tokens, graph_cap))


def _eager_step(arch: Architecture, t: _Table, step: Any, concurrency: np.ndarray, input_tokens: float,
                output_tokens: float) -> Any:
    """The steady-state step terms with the kernels its prompt-chunk step launches without a CUDA graph."""
    tokens = chunk_step_tokens(concurrency, input_tokens, output_tokens, t.budget_tokens)
    return _eager_chunk(step, tokens, _graph_cap(arch, t))


def _broadcast(obj: Any, n: int) -> Any:
    values = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in vars(obj).items()}
    return type(obj)(**values)


def _merge(objs: list[Any], idxs: list[np.ndarray], n: int) -> Any:
    fields = vars(objs[0]).keys()
    out = {}
    for k in fields:
        arr = np.empty(n)
        for obj, idx in zip(objs, idxs, strict=True):
            arr[idx] = np.broadcast_to(np.asarray(getattr(obj, k), dtype=float), idx.shape)
        out[k] = arr
    return type(objs[0])(**out)


def point_terms_of(arch: Architecture, cands: Sequence[Candidate] | CandidateSet, *, concurrency: Any,
                   input_tokens: float,
                   output_tokens: float) -> PointTerms:
    """Roofline terms (100 % efficiency) of each candidate's instance at `concurrency` sequences."""
    t = _Table.of(cands)
    conc = np.broadcast_to(np.asarray(concurrency, dtype=float), (t.n,))
    return _terms(arch, t, conc, input_tokens, output_tokens)


def max_concurrency_of(arch: Architecture, cands: Sequence[Candidate] | CandidateSet, *, input_tokens: float,
                       output_tokens: float) -> np.ndarray:
    """Sequences each candidate's instance keeps in flight at most (KV capacity under the engine's policy)."""
    t = _Table.of(cands)
    return _memory(arch, t, held_tokens(t.reservation, input_tokens, output_tokens))[4]


def evaluate(arch: Architecture, cands: Sequence[Candidate] | CandidateSet, *, input_tokens: float,
             output_tokens: float,
             concurrency: Any = None, context_length_tokens: float = math.inf) -> Evaluation:
    """Memory fit and speed of every candidate at `concurrency` sequences per instance (None: the most that fit).

    A candidate fits when at least one sequence (and `concurrency`, when given) fits beside the weights
    and the request is within the model's context.
    """
    t = _Table.of(cands)
    held = held_tokens(t.reservation, input_tokens, output_tokens)
    weights, kv_seq, budget, room, cap = _memory(arch, t, held)
    conc = cap if concurrency is None else np.broadcast_to(np.asarray(concurrency, dtype=int), (t.n,))
    fits = (cap >= 1) & (conc >= 1) & (conc <= cap) & (input_tokens + output_tokens <= context_length_tokens)
    c = np.maximum(conc, 1).astype(float)
    terms = _terms(arch, t, c, input_tokens, output_tokens)
    tpot, memory_s, compute_s, _, _ = terms.step.parts(t.eff)
    prefill = terms.prefill.total_s(t.eff)
    roof_tpot = terms.step.parts(ROOFLINE)[0]
    roof_prefill = terms.prefill.total_s(ROOFLINE)
    nan = np.where(fits, 1.0, np.nan)
    ttft = prefill + tpot + t.eff.request_overhead_s
    lo, hi = t.range_low, t.range_high
    tput = t.dp * c / tpot
    roof_tput = t.dp * c / roof_tpot
    return Evaluation(
        fits=fits, max_concurrency=np.where(fits | (cap >= 1), cap, 0).astype(int), concurrency=conc.astype(int),
        held_tokens=held, weights_gb_per_gpu=weights, kv_gb_per_sequence_per_gpu=kv_seq,
        kv_gb_per_gpu=conc * kv_seq, budget_gb_per_gpu=budget, free_gb_per_gpu=room - conc * kv_seq,
        ttft_s=nan * ttft, tpot_s=nan * tpot, output_tokens_per_s=nan * tput,
        prefill_tokens_per_s=nan * input_tokens / prefill,
        ttft_s_low=nan * np.maximum(ttft / hi, roof_prefill + roof_tpot), ttft_s_high=nan * ttft / lo,
        tpot_s_low=nan * np.maximum(tpot / hi, roof_tpot), tpot_s_high=nan * tpot / lo,
        output_tokens_per_s_low=nan * tput * lo, output_tokens_per_s_high=nan * np.minimum(tput * hi, roof_tput),
        memory_s=memory_s, compute_s=compute_s, roofline_tpot_s=roof_tpot, roofline_ttft_s=roof_prefill + roof_tpot)


StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def step_time_fn(arch: Architecture, cands: Sequence[Candidate] | CandidateSet, *, input_tokens: float,
                 output_tokens: float, efficiency: str = "central", query_tokens_per_seq: float = 1.0,
                 graph_tokens: Sequence[float] | None = None) -> StepFn:
    """step_s(decode_batch, prefill_tokens) -> seconds of one engine step of each candidate's instance.

    `decode_batch` running sequences (at the mean context, prompt + half the output) each produce a
    token while `prefill_tokens` prompt tokens ride along (chunked prefill). Arrays of shape (n,), one
    per candidate; `efficiency`: "central", "low" (slow end of the range) or "high" (fast end).
    `query_tokens_per_seq`: tokens each sequence runs through the step (1: plain decoding; a speculative
    verify step: 1 + draft tokens, `performance.decode_terms`).
    A step that carries prompt tokens and is larger than the engine's largest prefill CUDA graph pays the host time of
    launching its kernels (`_eager_chunk`, the rule `evaluate` applies to its steady-state chunk step).
    `graph_tokens`: each candidate's largest CUDA-graphed context step (a measured row's build,
    `validation.graph_tokens`; None: the engine's current release, `_graph_cap`).
    """
    t = _Table.of(cands)
    scale = {"central": 1.0, "low": 1.0 / t.range_low, "high": 1.0 / t.range_high}[efficiency]
    ctx = input_tokens + output_tokens / 2.0
    groups = []
    eff_rows = t.eff.to_array()
    mult = np.where(t.layer, t.pp, 1.0)
    cap = _graph_cap(arch, t) if graph_tokens is None else np.broadcast_to(np.asarray(graph_tokens, dtype=float),
                                                                           (t.n,))
    for ep, adp in LAYOUT_GROUPS:  # KV dtypes in one group (an array of bytes): fewer calls a step
        idx = np.flatnonzero((t.ep == ep) & (t.adp == adp))
        if idx.size:
            fmt = t.fmt(idx)
            act = activation_bytes_per_token(arch, fmt, tp=t.tp[idx], pp=t.pp[idx], expert_parallel=ep or adp,
                                             attn_dp=adp)  # batch-independent: once, not per call
            groups.append((idx, t.kv_bytes[idx], ep, adp, Efficiency.from_array(eff_rows[idx]), fmt, act, cap[idx]))

    def step_s(decode_batch: np.ndarray, prefill_tokens: np.ndarray) -> np.ndarray:
        b = np.broadcast_to(np.maximum(np.asarray(decode_batch, dtype=float), 1e-9), (t.n,))
        p = np.broadcast_to(np.asarray(prefill_tokens, dtype=float), (t.n,))
        out = np.empty(t.n)
        for idx, kvb, ep, adp, sub, fmt, act, graph_cap in groups:
            terms = decode_terms(arch, fmt, batch=b[idx] * mult[idx], context_tokens=ctx,
                                 kv_bytes_per_elem=kvb, tp=t.tp[idx], pp=t.pp[idx],
                                 memory_bandwidth_tb_s=t.bandwidth[idx], compute_tflops=t.tflops[idx],
                                 interconnect_bandwidth_gb_s=t.link[idx], prefill_tokens=p[idx] * mult[idx],
                                 prefill_context_tokens=input_tokens / 2.0, expert_parallel=ep,
                                 query_tokens_per_seq=query_tokens_per_seq, attn_dp=adp,
                                 activation_bytes_per_token_=act)
            # a step without prompt tokens has chunk_frac 0: it pays no launch time whatever its size
            out[idx] = _eager_chunk(terms, b[idx] + p[idx], graph_cap).parts(sub)[0]
        return out * scale

    return step_s


def candidates(catalog: Catalog, arch: Architecture, native_precision: str, *, gpus: Sequence[Gpu],
               engines: Sequence[Engine], precisions: Sequence[Precision], kv_dtypes: Sequence[KvDtype | None],
               gpu_counts: Sequence[int], layouts: Callable[[Engine, Gpu, int], list[Layout]] | None = None,
               max_num_seqs: int | None = None, profile_id: str | None = None) -> list[Candidate]:
    """Every runnable combination (engine runs the precision, KV dtype and GPU vendor; layout allowed).

    A `None` KV dtype means the engine's default for that precision. `layouts(engine, gpu, n)` lists the
    layouts to try on n GPUs (default: all the engine can run).
    """
    layouts = layouts or (lambda e, g, n: layouts_for(e, arch, g, n))
    profiles: dict[tuple[str, str], EfficiencyProfile] = {}
    out = []
    for gpu in gpus:
        for eng in engines:
            if gpu.vendor.lower() not in eng.vendors:
                continue
            key = (eng.engine_id, gpu.gpu_id)
            if key not in profiles:
                try:
                    profiles[key] = catalog.efficiency_for(eng.engine_id, gpu, profile_id=profile_id)
                except InvalidInputError:
                    continue
            for prec in precisions:
                if eng.engine_id not in prec.engines:
                    continue
                fmt = weight_format(prec, gpu, model_native_precision=native_precision, gguf=serves_gguf(eng))
                seen_kv = set()
                for kv in kv_dtypes:
                    kv = kv or catalog.kv_dtype(default_kv_dtype_id(eng, prec, gpu))
                    if kv.kv_dtype_id in seen_kv:
                        continue
                    seen_kv.add(kv.kv_dtype_id)
                    try:
                        check_compatible(prec, kv, gpu, eng)
                    except InvalidInputError:
                        continue
                    for n in gpu_counts:
                        for lay in layouts(eng, gpu, n):
                            out.append(Candidate(gpu, eng, prec, kv, fmt, lay, profiles[key],
                                                 max_num_seqs or eng.max_num_seqs))
    return out
