"""Speculative decoding (MTP heads, EAGLE-3 heads): tokens per verify step, the step's work, TPOT and throughput.

A draft proposes `k` tokens one after another (a chain, no tree); the target model then runs
one verify step over the last accepted token plus the k drafts (k + 1 query tokens per
sequence) and keeps the longest prefix it agrees with plus one token of its own. With a
per-position acceptance probability alpha, independent across positions, the expected tokens
one verify step produces is [1, section 3.1]

    E[tokens per step] = (1 - alpha^(k+1)) / (1 - alpha)          (k + 1 when alpha = 1)

One speculative cycle of a batch of B sequences costs

    step_spec = verify step (B sequences, B x (k+1) query tokens)  +  k x draft pass (B tokens)

- the verify step reads the weights once for all B x (k+1) tokens (an MoE layer touches the
  experts those tokens route to, more than for B tokens), computes B x (k+1) tokens of GEMMs
  and attention, and reads each sequence's KV cache once: `evaluator.step_time_fn` with
  `query_tokens_per_seq = k + 1` (`performance.decode_terms`);
- a draft pass of an MTP module [2] or an EAGLE-3 head [3] is about one decoder layer plus
  the LM head run on B tokens: `draft_pass_frac` of a plain decode step of the same batch.

so TPOT = step_spec / E and output throughput = B x E / step_spec. At small batch the verify
step costs about what a plain step does (weights dominate) and speculation wins nearly E-fold;
at large batch the step is compute-bound, the verify step costs about (k + 1) plain steps, and
speculation loses. `speculative_decode` reports both sides; callers keep the plain figures
where speculation loses (`SpeculativeDecode.helps`).

Acceptance is a sourced input (data/speculative.csv: per-position acceptance or mean tokens
per verify step, as each source states), or the user's. Sources give acceptance at a few draft
lengths; `acceptance_at` converts each row to a per-position alpha (`acceptance_from_tokens`)
and interpolates linearly in k between the measured lengths (constant beyond them), because
alpha falls with the draft position (an MTP module reused autoregressively, [4]).

[1] Y. Leviathan, M. Kalman, Y. Matias, "Fast Inference from Transformers via Speculative Decoding",
    ICML 2023, arXiv:2211.17192 (equation 1: expected tokens per step of a chain of gamma drafts).
[2] DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv:2412.19437, sections 2.2 and 5.4.3 (one MTP module:
    a Transformer block plus a projection, sharing the embedding and output head; 85-90 % second-token
    acceptance, 1.8x TPS).
[3] Y. Li, F. Wei, C. Zhang, H. Zhang, "EAGLE-3: Scaling up Inference Acceleration of Large Language Models
    via Training-Time Test", arXiv:2503.01840 (a one-layer draft head fed the target's hidden states).
[4] nebius/MTP-DeepSeek-V3-0324 model card, huggingface.co (the original MTP module reused for 7 draft
    positions: 3.20 tokens per step at temperature 0).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from planner.data._csvschema import read_records
from planner.data.catalog import DATA_DIR
from planner.data.columns import Names, NonNegative, OneOf, PastDate, Positive, Url, Whole
from planner.errors import InvalidInputError, brief
from planner.model.architecture import Architecture
from planner.perf import evaluator

METHODS = ("off", "mtp", "eagle3")
ACCEPTANCE_BASES = ("per_position_frac", "mean_tokens_per_step")
MAX_DRAFT_TOKENS = 16  # engines' draft lengths in use are 1-8 (vLLM num_speculative_tokens, SGLang num-steps)
# Engines that run MTP and EAGLE-3 drafts: vLLM speculative_config (docs.vllm.ai/en/latest/features/
# speculative_decoding/), SGLang --speculative-algorithm (docs.sglang.io/advanced_features/speculative_decoding),
# TensorRT-LLM MTPDecodingConfig / Eagle3DecodingConfig (nvidia.github.io/TensorRT-LLM/features/
# speculative-decoding.html). llama.cpp's server speculates with a separate draft GGUF, not modelled here.
ENGINES = ("vllm", "sglang", "trtllm")
SPECULATIVE_CSV = DATA_DIR / "speculative.csv"


@dataclass(frozen=True)
class AcceptanceRow:
    """One sourced acceptance measurement of a draft method on a model (one row of data/speculative.csv; the
    annotations are its columns, read by `_csvschema.read_records`)."""

    row_id: str
    method: Annotated[str, OneOf(METHODS[1:])]  # mtp | eagle3
    applies_to: Names  # catalog model ids the measurement stands for
    measured_on: str
    engine: str
    draft_tokens: Annotated[int, Whole(le=MAX_DRAFT_TOKENS)]
    acceptance_basis: Annotated[str, OneOf(ACCEPTANCE_BASES)]
    acceptance_value: Positive  # a fraction (per_position_frac) or tokens in (1, k + 1] (mean_tokens_per_step)
    workload: str
    temperature: NonNegative | None
    draft_model: str | None  # the draft head's repository (EAGLE-3); None for a built-in MTP module
    source_url: Url
    source_accessed: PastDate
    notes: str | None

    @property
    def acceptance_frac(self) -> float:
        """Per-position acceptance alpha of this row (converted from tokens per step where the source gives those)."""
        if self.acceptance_basis == "per_position_frac":
            return self.acceptance_value
        return acceptance_from_tokens(self.acceptance_value, self.draft_tokens)


def tokens_per_step(acceptance_frac: Any, draft_tokens: Any) -> Any:
    """Expected tokens one verify step produces: (1 - alpha^(k+1)) / (1 - alpha), k + 1 at alpha = 1 [1].

    The accepted prefix of k drafts (each accepted with probability alpha given the previous ones
    were) plus the token the target model samples itself. Broadcasts over arrays.
    """
    a = np.asarray(acceptance_frac, dtype=float)
    k = np.asarray(draft_tokens, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = (1.0 - a ** (k + 1.0)) / (1.0 - a)
    return np.where(a >= 1.0, k + 1.0, geometric)


def acceptance_from_tokens(mean_tokens_per_step: float, draft_tokens: int) -> float:
    """The per-position acceptance alpha whose chain of `draft_tokens` drafts yields `mean_tokens_per_step`.

    Inverts `tokens_per_step` (strictly increasing in alpha from 1 at alpha = 0 to k + 1 at alpha = 1)
    by bisection. InvalidInputError unless 1 < tokens <= k + 1.
    """
    k = int(draft_tokens)
    if not 1.0 < mean_tokens_per_step <= k + 1.0:
        raise InvalidInputError(f"mean tokens per step must be in (1, {k + 1}] for {k} draft tokens, got "
                                f"{brief(mean_tokens_per_step)}")
    low, high = 0.0, 1.0
    for _ in range(60):  # 2^-60: far below any measurement's precision
        mid = (low + high) / 2.0
        if float(tokens_per_step(mid, k)) < mean_tokens_per_step:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def draft_pass_frac(arch: Architecture) -> float:
    """Share of a plain decode step's work one draft pass costs: one mean decoder layer plus the LM head.

    An MTP module is one Transformer block (DeepSeek-V3: an MoE block like the main layers) plus a
    projection, sharing the output head [2]; an EAGLE-3 head is one decoder layer plus an LM head [3].
    Both are charged as the model's mean layer (active parameters) plus a full-vocabulary head, as a
    fraction of the model's active compute parameters, so the draft pass scales with the batch the
    same way the main step does. The projection and a reduced draft vocabulary (EAGLE-3 heads often
    keep 32k tokens) are ignored: the head is charged at the full vocabulary, an upper bound.
    """
    head = float(arch.vocab_size) * float(arch.hidden_size)  # the LM head (tied or not) as one GEMM
    body = arch.active_compute_params - arch.lm_head_params  # decoder layers, without the head
    draft = body / arch.n_layers + head
    return draft / (body + head)


@dataclass(frozen=True)
class SpeculativeSetting:
    """A resolved request: method, draft length and per-position acceptance, with where the acceptance came from."""

    method: str
    draft_tokens: int
    acceptance_frac: float
    acceptance_source: str  # "data/speculative.csv rows ..." or "given"
    draft_model: str | None = None

    @property
    def tokens_per_step(self) -> float:
        return float(tokens_per_step(self.acceptance_frac, self.draft_tokens))


@dataclass(frozen=True)
class SpeculativeDecode:
    """Per-configuration speculative figures beside the plain ones (arrays or floats)."""

    tokens_per_step: Any
    step_s: Any  # one speculative cycle: verify + k draft passes
    tpot_s: Any  # step_s / tokens_per_step
    output_tokens_per_s: Any  # batch x tokens_per_step / step_s (one instance)
    plain_step_s: Any
    plain_output_tokens_per_s: Any
    speedup_factor: Any  # plain TPOT / speculative TPOT (> 1: speculation helps)

    @property
    def helps(self) -> Any:
        return np.asarray(self.speedup_factor) > 1.0


def speculative_decode(*, batch: Any, plain_step_s: Any, verify_step_s: Any, draft_pass_s: Any,
                       draft_tokens: int, acceptance_frac: float) -> SpeculativeDecode:
    """TPOT and throughput of speculative decoding from the step times the evaluator gives.

    `plain_step_s`: a decode step of `batch` sequences, one token each; `verify_step_s`: the same
    batch with draft_tokens + 1 query tokens per sequence; `draft_pass_s`: one draft pass over the
    batch. step = verify + k x draft; TPOT = step / E[tokens per step]; throughput = batch x E / step.
    """
    check_setting(draft_tokens=draft_tokens, acceptance_frac=acceptance_frac)
    e = tokens_per_step(acceptance_frac, draft_tokens)
    b = np.asarray(batch, dtype=float)
    plain = np.asarray(plain_step_s, dtype=float)
    step = np.asarray(verify_step_s, dtype=float) + draft_tokens * np.asarray(draft_pass_s, dtype=float)
    tpot = step / e
    return SpeculativeDecode(tokens_per_step=e, step_s=step, tpot_s=tpot, output_tokens_per_s=b / tpot,
                             plain_step_s=plain, plain_output_tokens_per_s=b / plain, speedup_factor=plain / tpot)


def check_setting(*, draft_tokens: object, acceptance_frac: object) -> None:
    """InvalidInputError unless 1 <= draft_tokens <= MAX_DRAFT_TOKENS (an int) and 0 < acceptance_frac <= 1."""
    if isinstance(draft_tokens, bool) or not isinstance(draft_tokens, (int, np.integer)) \
            or not 1 <= int(draft_tokens) <= MAX_DRAFT_TOKENS:
        raise InvalidInputError(f"draft_tokens must be an integer in [1, {MAX_DRAFT_TOKENS}], got "
                                f"{brief(draft_tokens)}")
    if isinstance(acceptance_frac, bool) or not isinstance(acceptance_frac, (int, float, np.floating)) \
            or not np.isfinite(acceptance_frac) or not 0.0 < float(acceptance_frac) <= 1.0:
        raise InvalidInputError(f"acceptance_frac must be finite and in (0, 1], got {brief(acceptance_frac)}")


def load_acceptance(path: str | Path = SPECULATIVE_CSV) -> tuple[AcceptanceRow, ...]:
    """data/speculative.csv, checked against `AcceptanceRow`'s columns; CatalogError on a bad cell, or an
    acceptance value outside what its basis allows."""
    table = read_records(path, AcceptanceRow, name=Path(path).name, id_column="row_id")
    for number, row in table.numbered():
        value, k = row.acceptance_value, row.draft_tokens
        per_position = row.acceptance_basis == "per_position_frac"
        if (per_position and not value <= 1.0) or (not per_position and not 1.0 < value <= k + 1):
            raise table.error(number, "acceptance_value", value,
                              "must be in (0, 1]" if per_position else f"must be in (1, {k + 1}] (draft tokens + 1)")
    return table.records


def rows_for(rows: Sequence[AcceptanceRow], model_id: str, method: str) -> list[AcceptanceRow]:
    """The measurements of `method` that stand for `model_id`."""
    return [r for r in rows if r.method == method and model_id in r.applies_to]


def acceptance_at(rows: Sequence[AcceptanceRow], draft_tokens: int) -> float:
    """Per-position acceptance at `draft_tokens`: each measured draft length's mean alpha over its rows
    (workloads, temperatures), interpolated linearly in k between measured lengths, constant beyond."""
    by_k: dict[int, list[float]] = {}
    for r in rows:
        by_k.setdefault(r.draft_tokens, []).append(r.acceptance_frac)
    ks = sorted(by_k)
    alphas = [float(np.mean(by_k[k])) for k in ks]
    return float(np.interp(draft_tokens, ks, alphas))


def ships(arch: Architecture, method: str, rows: Sequence[AcceptanceRow], model_id: str) -> bool:
    """Whether the model has the draft: MTP layers in its config (num_nextn_predict_layers and the like), or a
    published EAGLE-3 head listed in data/speculative.csv."""
    if method == "mtp":
        return arch.n_mtp_layers > 0
    return bool(rows_for(rows, model_id, method))


def resolve(arch: Architecture, model_id: str, method: str, rows: Sequence[AcceptanceRow], *,
            draft_tokens: int | None = None, acceptance_frac: float | None = None) -> SpeculativeSetting | None:
    """The speculative setting for a model (None when `method` is "off").

    Defaults: the shortest draft length the sources measured, and the acceptance they give at the
    draft length used (`acceptance_at`). InvalidInputError (one line) for an unknown method, a
    method the model does not ship, or a model with no sourced acceptance when none is given.
    """
    if method not in METHODS:
        raise InvalidInputError(f"speculative must be one of {', '.join(METHODS)}, got {brief(method)}")
    if method == "off":
        if draft_tokens is not None or acceptance_frac is not None:
            raise InvalidInputError("speculative_draft_tokens and speculative_acceptance_frac (--draft-tokens, "
                                    "--acceptance-frac) need speculative mtp or eagle3; it is off")
        return None
    sourced = rows_for(rows, model_id, method)
    if not ships(arch, method, rows, model_id):
        what = ("no MTP layers in its config (num_nextn_predict_layers)" if method == "mtp"
                else "no published EAGLE-3 head in data/speculative.csv")
        raise InvalidInputError(f"{model_id} does not ship {method}: {what}")
    if draft_tokens is None:
        draft_tokens = min((r.draft_tokens for r in sourced), default=1)
    if acceptance_frac is None:
        if not sourced:
            raise InvalidInputError(f"no sourced {method} acceptance for {model_id} in data/speculative.csv; give "
                                    f"speculative_acceptance_frac (--acceptance-frac: the per-position acceptance "
                                    f"you measured)")
        check_setting(draft_tokens=draft_tokens, acceptance_frac=0.5)
        acceptance_frac = acceptance_at(sourced, draft_tokens)
        source = "data/speculative.csv: " + ", ".join(r.row_id for r in sourced)
    else:
        source = "given"
    check_setting(draft_tokens=draft_tokens, acceptance_frac=acceptance_frac)
    draft_model = next((r.draft_model for r in sourced if r.draft_model), None)
    return SpeculativeSetting(method, int(draft_tokens), float(acceptance_frac), source, draft_model)


@functools.lru_cache(maxsize=4)
def shipped_rows(path: str = str(SPECULATIVE_CSV)) -> tuple[AcceptanceRow, ...]:
    """data/speculative.csv loaded once per process (the shipped file does not change while it runs)."""
    return load_acceptance(path)


def check_engine(engine_id: str) -> None:
    """InvalidInputError unless the engine runs MTP / EAGLE-3 drafts (ENGINES)."""
    if engine_id not in ENGINES:
        raise InvalidInputError(f"speculative decoding is modelled for {', '.join(ENGINES)}; the engine is "
                                f"{engine_id}")


def decode_with(arch: Architecture, cands: Sequence[evaluator.Candidate] | evaluator.CandidateSet,
                setting: SpeculativeSetting, *, concurrency: Any, input_tokens: float,
                output_tokens: float) -> SpeculativeDecode:
    """Speculative and plain decode of each candidate's instance at `concurrency` sequences (decode-only steps
    of the evaluator's step model, central efficiency): the verify step with draft_tokens + 1 query tokens
    per sequence, k draft passes of `draft_pass_frac` x the plain step."""
    kw = dict(input_tokens=input_tokens, output_tokens=output_tokens)
    plain_fn = evaluator.step_time_fn(arch, cands, **kw)
    verify_fn = evaluator.step_time_fn(arch, cands, query_tokens_per_seq=setting.draft_tokens + 1.0, **kw)
    batch = np.asarray(concurrency, dtype=float)
    plain = plain_fn(batch, np.zeros_like(batch))
    verify = verify_fn(batch, np.zeros_like(batch))
    return speculative_decode(batch=batch, plain_step_s=plain, verify_step_s=verify,
                              draft_pass_s=draft_pass_frac(arch) * plain, draft_tokens=setting.draft_tokens,
                              acceptance_frac=setting.acceptance_frac)


def step_time_fn(arch: Architecture, cands: Sequence[evaluator.Candidate] | evaluator.CandidateSet,
                 setting: SpeculativeSetting | None, *, input_tokens: float, output_tokens: float,
                 efficiency: str = "central") -> evaluator.StepFn:
    """`evaluator.step_time_fn` per output token with speculative decoding where it helps (the plain one for None).

    The queueing model takes a step as one token per running sequence. With speculation a cycle
    yields E tokens per sequence, so the decode part of a step becomes min(plain, (verify + k x
    draft) / E) per token, at each batch; the prompt tokens riding along (chunked prefill) keep
    their plain cost: step(b, p) = plain(b, p) - plain(b, 0) + min(plain(b, 0), spec(b) / E).
    """
    kw = dict(input_tokens=input_tokens, output_tokens=output_tokens, efficiency=efficiency)
    plain_fn = evaluator.step_time_fn(arch, cands, **kw)
    if setting is None:
        return plain_fn
    verify_fn = evaluator.step_time_fn(arch, cands, query_tokens_per_seq=setting.draft_tokens + 1.0, **kw)
    frac, k, e = draft_pass_frac(arch), setting.draft_tokens, setting.tokens_per_step

    def step_s(decode_batch: np.ndarray, prefill_tokens: np.ndarray) -> np.ndarray:
        zero = np.zeros_like(np.asarray(prefill_tokens, dtype=float))
        plain = plain_fn(decode_batch, prefill_tokens)
        decode_only = plain_fn(decode_batch, zero)
        spec = (verify_fn(decode_batch, zero) + k * frac * decode_only) / e
        return plain - decode_only + np.minimum(decode_only, spec)

    return step_s


__all__ = ["ACCEPTANCE_BASES", "ENGINES", "MAX_DRAFT_TOKENS", "METHODS", "AcceptanceRow", "SpeculativeDecode",
           "SpeculativeSetting", "acceptance_at", "acceptance_from_tokens", "check_engine", "check_setting",
           "decode_with", "draft_pass_frac", "load_acceptance", "resolve", "rows_for", "shipped_rows", "ships",
           "speculative_decode", "step_time_fn", "tokens_per_step"]
