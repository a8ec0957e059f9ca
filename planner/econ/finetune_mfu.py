"""Training FLOPs per token and the model-FLOPs utilisation (MFU) fitted on published fine-tuning and
training measurements (data/finetune_references.csv -> data/finetune_mfu.csv).

FLOPs per trained token, with N the active parameters in matrix products (MoE: top-k experts only):
  full:        6N (forward 2N, backward 4N) [1]
  lora/qlora:  2N forward + 2N backward activation gradients through the frozen base (no weight gradients)
               + 6 x the adapter parameters a token passes through [2]
  attention:   3 x the forward score and value products at the mean causal context (s + 1) / 2 (the
               backward pass costs twice the forward), as in PaLM's MFU accounting [3] but causal
  qlora:       + dequantisation of every NF4 weight in each of the 2 passes (3 with checkpointing), about
               2 elementwise operations per weight per micro-batch, spread over its tokens.
MFU = model FLOPs / (GPU-seconds x dense bf16 peak); the recompute of gradient checkpointing is not model
work, so the fitted MFU of each source carries its own checkpointing choice.

The fit is log-additive: log MFU = a[method] + b[GPU class] by least squares over the references, GPU class
= "<category>-<generation>" (e.g. datacenter-hopper). A class without references falls back to the mean
b of its category, then to the mean of all classes ("*"). Whole sources can be held out of the fit.

[1] J. Kaplan et al., "Scaling Laws for Neural Language Models", arXiv:2001.08361, 2020 (Sec. 2.1)
[2] E. Hu et al., "LoRA", arXiv:2106.09685; frozen weights need no weight gradient (2 of the 4N backward FLOPs)
[3] A. Chowdhery et al., "PaLM", arXiv:2204.02311, 2022 (Appendix B)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from planner import units
from planner.data._csvschema import read_records
from planner.data.catalog import DATA_DIR, Catalog
from planner.data.columns import Count, Date, Frac, Names, NamesOrEmpty, NonNegative, OneOf, Positive, Url, columns
from planner.data.records import Gpu
from planner.econ.finetune_memory import METHODS, lora_adapter_params
from planner.errors import InvalidInputError
from planner.model.architecture import Architecture

REFERENCES_FILE = "finetune_references.csv"
MFU_FILE = "finetune_mfu.csv"
DEQUANT_OPS_PER_WEIGHT = 2  # table lookup + multiply by the block scale (NF4 dequantisation, QLoRA Sec. 3)

Method = Annotated[str, OneOf(METHODS)]


@dataclass(frozen=True)
class Reference:
    """One published training or fine-tuning measurement (a row of data/finetune_references.csv)."""

    reference_id: str
    source_id: str
    method: Method
    model_id: str
    gpu_id: str
    num_gpus: Count
    seq_len_tokens: Count
    micro_batch: Count | None
    lora_rank: Count | None
    gradient_checkpointing: Annotated[str, OneOf(("true", "false", "unknown"))]
    published_gpu_hours: Positive | None
    published_tokens_trained: Positive | None
    published_tokens_per_s: Positive | None
    source_url: Url
    source_accessed: Date
    notes: str | None

    @property
    def tokens_per_gpu_s(self) -> float:
        """Trained tokens per GPU-second: tokens / GPU-hours / 3600, or tokens/s over the GPUs."""
        if self.published_tokens_per_s is not None:
            return self.published_tokens_per_s / self.num_gpus
        return self.published_tokens_trained / (self.published_gpu_hours * units.S_PER_HOUR)


REFERENCE_SCHEMA = columns(Reference)  # the columns of data/finetune_references.csv


@dataclass(frozen=True)
class MfuRow:
    """One fitted MFU (a row of data/finetune_mfu.csv)."""

    method: Method
    gpu_class: str
    mfu_frac: Frac
    n_points: NonNegative
    fit_rmse_log: NonNegative
    reference_ids: Names
    held_out_sources: NamesOrEmpty
    fitted_from: str
    fitted_on: Date
    notes: str | None


def gpu_class(gpu: Gpu) -> str:
    """The fit's hardware class: category and generation, e.g. datacenter-hopper, consumer-ada."""
    return f"{gpu.category.lower()}-{gpu.generation.lower()}"


def attention_flops_per_token(arch: Architecture, seq_len_tokens: int) -> float:
    """Forward attention score + value FLOPs per token at the mean causal context (s + 1) / 2."""
    mean_ctx = (seq_len_tokens + 1) / 2.0
    full_ctx = min(mean_ctx, arch.attn_ctx_cap_tokens) if arch.attn_ctx_cap_tokens else mean_ctx
    flops = arch.prefill_attn_flops_per_ctx_token_full * full_ctx
    for g in arch.window_groups:
        w = float(g.window_tokens)
        # mean over positions 1..s of min(position, w)
        ctx = mean_ctx if seq_len_tokens <= w else w - w * (w - 1) / (2.0 * seq_len_tokens)
        flops += g.attn_flops_per_ctx_token * ctx
    return flops + arch.fixed_flops_per_token


def training_flops_per_token(arch: Architecture, *, method: str, seq_len_tokens: int, lora_rank: int | None,
                             micro_batch: int | None, gradient_checkpointing: bool) -> float:
    """Model FLOPs per trained token (see the module note); QLoRA adds its dequantisation operations."""
    n = arch.active_compute_params
    attention = 3 * attention_flops_per_token(arch, seq_len_tokens)
    if method == "full":
        return 6 * n + attention
    adapter = lora_adapter_params(arch, lora_rank or 1).active
    flops = (2 * n  # forward through the frozen base
             + 2 * n  # backward: activation gradients only
             + 6 * adapter  # adapter forward, activation and weight gradients
             + attention)
    if method == "qlora":
        passes = 3 if gradient_checkpointing else 2
        quantized = arch.total_params - arch.embedding_params - arch.lm_head_params
        tokens_per_batch = float(seq_len_tokens) * (micro_batch or 1)
        flops += passes * DEQUANT_OPS_PER_WEIGHT * quantized / tokens_per_batch
    return flops


def load_references(catalog: Catalog, path: str | Path = DATA_DIR / REFERENCES_FILE) -> tuple[Reference, ...]:
    """Read and check data/finetune_references.csv: schema, methods, catalog model/GPU ids, one figure per row."""
    table = read_records(path, Reference, id_column="reference_id")
    for row, ref in table.numbered():
        for column, known in (("model_id", catalog.models), ("gpu_id", catalog.gpus)):
            if getattr(ref, column) not in known:
                raise table.error(row, column, getattr(ref, column), "not a catalog id")
        by_hours = ref.published_gpu_hours is not None and ref.published_tokens_trained is not None
        by_rate = ref.published_tokens_per_s is not None
        if by_hours == by_rate or (not by_hours and (ref.published_gpu_hours or ref.published_tokens_trained)):
            raise table.error(row, "published_tokens_per_s", ref.published_tokens_per_s,
                              "give either published_tokens_per_s or published_gpu_hours with published_tokens_trained")
        if ref.method != "full" and ref.lora_rank is None:
            raise table.error(row, "lora_rank", None, "required for lora and qlora rows")
    return table.records


def implied_mfu(catalog: Catalog, ref: Reference) -> float:
    """The MFU a reference implies: model FLOPs per token x tokens per GPU-second / dense bf16 peak."""
    arch = catalog.models[ref.model_id].arch
    flops = training_flops_per_token(arch, method=ref.method, seq_len_tokens=ref.seq_len_tokens,
                                     lora_rank=ref.lora_rank, micro_batch=ref.micro_batch,
                                     gradient_checkpointing=ref.gradient_checkpointing == "true")
    return flops * ref.tokens_per_gpu_s / (catalog.gpus[ref.gpu_id].bf16_dense_tflops * units.TERA)


def fit_mfu(catalog: Catalog, references: tuple[Reference, ...], *, held_out_sources: tuple[str, ...] = (),
            fitted_on: dt.date | None = None) -> tuple[MfuRow, ...]:
    """Least-squares fit of log MFU = a[method] + b[class]; rows for every method x (fitted class, category
    fallback "<category>-*", "*"). InvalidInputError if a method has no reference left after holding out."""
    used = [r for r in references if r.source_id not in held_out_sources]
    methods = [m for m in METHODS if any(r.method == m for r in used)]
    missing = [m for m in METHODS if m not in methods]
    if missing:
        raise InvalidInputError(f"no reference left for method {missing[0]} after holding out "
                                f"{', '.join(held_out_sources) or 'nothing'}")
    classes = sorted({gpu_class(catalog.gpus[r.gpu_id]) for r in used})
    design = np.zeros((len(used), len(methods) + len(classes)))
    y = np.array([math.log(implied_mfu(catalog, r)) for r in used])
    for i, r in enumerate(used):
        design[i, methods.index(r.method)] = 1.0
        design[i, len(methods) + classes.index(gpu_class(catalog.gpus[r.gpu_id]))] = 1.0
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    rmse = float(np.sqrt(np.mean(residuals ** 2)))
    a = dict(zip(methods, coef[:len(methods)], strict=True))
    b = dict(zip(classes, coef[len(methods):], strict=True))
    groups: dict[str, float] = dict(b)
    for category in sorted({c.split("-", 1)[0] for c in classes}):
        groups[f"{category}-*"] = float(np.mean([v for c, v in b.items() if c.split("-", 1)[0] == category]))
    groups["*"] = float(np.mean(list(b.values())))
    ids = tuple(r.reference_id for r in used)
    day = fitted_on or dt.date.today()
    rows = []
    for m in methods:
        for cls, offset in groups.items():
            n = sum(1 for r in used if r.method == m and gpu_class(catalog.gpus[r.gpu_id]) == cls)
            rows.append(MfuRow(m, cls, min(math.exp(a[m] + offset), 1.0), float(n), rmse, ids, held_out_sources,
                               REFERENCES_FILE, day, "fallback" if n == 0 else None))
    return tuple(rows)


def mfu_csv_text(rows: tuple[MfuRow, ...]) -> str:
    """The fitted rows as data/finetune_mfu.csv text (values rounded to 4 significant digits)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns(MfuRow)))
    for r in rows:
        writer.writerow([r.method, r.gpu_class, f"{r.mfu_frac:.4g}", f"{r.n_points:g}", f"{r.fit_rmse_log:.4g}",
                         ";".join(r.reference_ids), ";".join(r.held_out_sources), r.fitted_from,
                         r.fitted_on.isoformat(), r.notes or ""])
    return buf.getvalue()


def load_mfu(path: str | Path = DATA_DIR / MFU_FILE) -> dict[tuple[str, str], MfuRow]:
    """Read and check data/finetune_mfu.csv, keyed by (method, gpu_class)."""
    rows = read_records(path, MfuRow)
    table: dict[tuple[str, str], MfuRow] = {}
    for row, mfu in rows.numbered():
        key = (mfu.method, mfu.gpu_class)
        if key in table:
            raise rows.error(row, "gpu_class", mfu.gpu_class, "duplicate method x gpu_class")
        table[key] = mfu
    for method in METHODS:
        if (method, "*") not in table:
            raise rows.error(None, "gpu_class", "*", f"missing the '*' row of method {method}")
    return table


def mfu_for(table: dict[tuple[str, str], MfuRow], method: str, gpu: Gpu) -> MfuRow:
    """The fitted MFU of a method on a GPU: its class, else its category's mean, else '*'."""
    cls = gpu_class(gpu)
    for key in (cls, f"{gpu.category.lower()}-*", "*"):
        if (method, key) in table:
            return table[(method, key)]
    raise InvalidInputError(f"no fitted MFU for method {method}")
