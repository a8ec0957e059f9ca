"""Fine-tuning memory, FLOPs, the MFU fit on published references, costs, bad inputs and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from planner.cli import main
from planner.data.catalog import DATA_DIR
from planner.econ.finetune import FinetuneRequest, finetune, finetune_usd_per_month, require_fit
from planner.econ.finetune_memory import lora_adapter_params, memory_breakdown
from planner.econ.finetune_mfu import (
    REFERENCE_SCHEMA,
    fit_mfu,
    implied_mfu,
    load_mfu,
    load_references,
    training_flops_per_token,
)
from planner.errors import CatalogError, DoesNotFitError, InvalidInputError
from planner.model.architecture import architecture_from_config

# A tiny Llama-style decoder: hidden 64, 2 layers, 4 heads of 16, 2 KV heads, MLP 128, vocab 100, untied.
TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128, "vocab_size": 100,
        "tie_word_embeddings": False}
# per layer: q 64x64 + k 64x32 + v 64x32 + o 64x64 = 12,288; MLP 3 x 64 x 128 = 24,576; norms 2 x 64 = 128
# total = embedding 6,400 + LM head 6,400 + 2 x 36,992 + final norm 64 = 86,848
TINY_PARAMS = 6400 + 6400 + 2 * (12288 + 24576 + 128) + 64
GB = 1e9


@pytest.fixture
def tiny():
    return architecture_from_config(TINY)


def _mem(arch, **kw):
    args = dict(method="full", optimizer="adamw", lora_rank=4, num_gpus=1, seq_len_tokens=8, micro_batch=1,
                gradient_checkpointing=False, runtime_overhead_gb=0.0)
    args.update(kw)
    return memory_breakdown(arch, **args)


def test_tiny_config_parameter_count(tiny):
    assert tiny.total_params == pytest.approx(TINY_PARAMS)


def test_full_adamw_memory_by_hand(tiny):
    m = _mem(tiny)
    assert m.weights_gb * GB == pytest.approx(86848 * 2)  # bf16
    assert m.gradients_gb * GB == pytest.approx(86848 * 2)  # bf16
    assert m.master_weights_gb * GB == pytest.approx(86848 * 4)  # fp32 master
    assert m.optimizer_gb * GB == pytest.approx(86848 * 8)  # two fp32 moments
    # activations: 34 x s 8 x b 1 x h 64 x 2 layers = 34,816; fp32 logits 4 x 8 x 100 = 3,200
    assert m.activations_gb * GB == pytest.approx(34816 + 3200)
    assert m.total_gb * GB == pytest.approx(173696 * 2 + 347392 + 694784 + 38016)


def test_checkpointing_keeps_layer_inputs_only(tiny):
    # 2 x 8 x 64 x 2 layers = 2,048 inputs + 34 x 8 x 64 = 17,408 for the layer recomputed + 3,200 logits
    assert _mem(tiny, gradient_checkpointing=True).activations_gb * GB == pytest.approx(2048 + 17408 + 3200)


def test_lora_adapter_by_hand(tiny):
    # rank 4, per layer: q 4(64+64) + k 4(64+32) + v 4(64+32) + o 4(64+64) + gate/up/down 3 x 4(64+128) = 4,096
    assert lora_adapter_params(tiny, 4).total == pytest.approx(2 * 4096)
    m = _mem(tiny, method="lora")
    assert m.weights_gb * GB == pytest.approx(86848 * 2)  # frozen bf16 base
    assert m.adapter_gb * GB == pytest.approx(8192 * 4)  # fp32 adapter
    assert m.gradients_gb * GB == pytest.approx(8192 * 4)
    assert m.optimizer_gb * GB == pytest.approx(8192 * 8)
    assert m.master_weights_gb == 0


def test_qlora_base_is_nf4_with_bf16_embeddings(tiny):
    # (86,848 - 12,800 embedding and head) x (4 + 8/64 + 32/(64 x 256)) bits / 8 + 12,800 x 2 bytes
    expected = 74048 * (4 + 0.125 + 0.001953125) / 8 + 12800 * 2
    assert _mem(tiny, method="qlora").weights_gb * GB == pytest.approx(expected)


def test_fsdp_shards_states_but_not_activations(tiny):
    one, two = _mem(tiny), _mem(tiny, num_gpus=2)
    assert two.optimizer_gb == pytest.approx(one.optimizer_gb / 2)
    assert two.master_weights_gb == pytest.approx(one.master_weights_gb / 2)
    assert two.activations_gb == pytest.approx(one.activations_gb)
    # 2 gathered layers x (86,848 - 12,800) / 2 layers x 2 bytes
    assert two.overhead_gb * GB == pytest.approx(2 * 37024 * 2)


def test_flops_per_token_by_hand(tiny):
    # N = 80,448 (every matrix but the embedding); attention 2 layers x 2 x 4 heads x (16 + 16) = 512 FLOPs
    # per context token, mean causal context (8 + 1) / 2 = 4.5, x 3 for forward + backward
    attention = 512 * 4.5 * 3
    assert training_flops_per_token(tiny, method="full", seq_len_tokens=8, lora_rank=None, micro_batch=1,
                                    gradient_checkpointing=False) == pytest.approx(6 * 80448 + attention)
    # LoRA: 4N through the frozen base + 6 x 8,192 adapter parameters
    assert training_flops_per_token(tiny, method="lora", seq_len_tokens=8, lora_rank=4, micro_batch=1,
                                    gradient_checkpointing=False) == pytest.approx(4 * 80448 + 6 * 8192 + attention)


def test_llama31_8b_rank16_adapter(real_catalog):
    # per layer 16 x [(4096+4096) x 2 (q, o) + (4096+1024) x 2 (k, v) + (4096+14336) x 3] = 1,310,720; x 32 layers
    arch = real_catalog.model("llama-3.1-8b").arch
    assert lora_adapter_params(arch, 16).total == pytest.approx(32 * 1_310_720)


# --- published references ----------------------------------------------------------------------------------

def test_shipped_fit_holds_out_the_llama31_card_and_matches_a_refit(real_catalog):
    table = load_mfu()
    refs = load_references(real_catalog)
    row = table[("full", "datacenter-hopper")]
    assert row.held_out_sources == ("meta-llama3.1-card",)
    assert not any(i.startswith("llama3.1-") for i in row.reference_ids)
    refit = {(r.method, r.gpu_class): r.mfu_frac
             for r in fit_mfu(real_catalog, refs, held_out_sources=("meta-llama3.1-card",))}
    assert set(refit) == set(table)
    for key, mfu in refit.items():
        assert table[key].mfu_frac == pytest.approx(mfu, rel=1e-3)


def test_llama31_70b_model_card_gpu_hours_within_35_percent(real_catalog):
    # Meta's card: 7.0M H100-80GB GPU-hours for ~15T tokens at 8K sequences (held out of the fit)
    est = finetune(real_catalog, FinetuneRequest("llama-3.1-70b", "H100-SXM", method="full", dataset_tokens=15e12,
                                                 seq_len_tokens=8192, num_gpus=16384))
    assert est.gpu_hours == pytest.approx(7.0e6, rel=0.35)


def test_every_reference_implies_a_physical_mfu(real_catalog):
    for ref in load_references(real_catalog):
        assert 0.05 < implied_mfu(real_catalog, ref) <= 1.0, ref.reference_id


def test_reference_file_errors_name_row_and_column(real_catalog, tmp_path: Path):
    text = (DATA_DIR / "finetune_references.csv").read_text().splitlines()
    bad = text[1].replace(",full,", ",fullx,", 1)
    path = tmp_path / "finetune_references.csv"
    path.write_text("\n".join([text[0], bad]) + "\n")
    with pytest.raises(CatalogError, match=r"finetune_references.csv, row 2, column 'method'.*fullx"):
        load_references(real_catalog, path)
    path.write_text(",".join(REFERENCE_SCHEMA) + ",extra\n")
    with pytest.raises(CatalogError, match="unknown column"):
        load_references(real_catalog, path)


# --- fit verdicts the issue names --------------------------------------------------------------------------

def test_qlora_70b_fits_one_80gb_gpu_not_a_24gb_one(real_catalog):
    assert finetune(real_catalog, FinetuneRequest("llama-3.1-70b", "H100-SXM", method="qlora")).fits
    small = finetune(real_catalog, FinetuneRequest("llama-3.1-70b", "A10", method="qlora"))
    assert not small.fits and small.shortfall_gb_per_gpu > 0
    assert "does not fit" in small.fit_message and small.suggestions


def test_full_adamw_8b_needs_sharding(real_catalog):
    one = finetune(real_catalog, FinetuneRequest("llama-3.1-8b", "H100-SXM", method="full"))
    # 8.03B x 16 bytes = 128 GB of weights, gradients, master weights and moments before activations
    assert not one.fits and one.memory_gb_per_gpu > 128
    with pytest.raises(DoesNotFitError, match="GB short"):
        require_fit(one)
    eight = finetune(real_catalog, FinetuneRequest("llama-3.1-8b", "H100-SXM", method="full", num_gpus=8))
    assert eight.fits and eight.memory_gb_per_gpu < one.memory_gb_per_gpu


def test_memory_orders_methods_and_time_scales_with_tokens(real_catalog):
    base = FinetuneRequest("llama-3.1-8b", "H100-SXM", method="full", num_gpus=8)
    full, lora, qlora = (finetune(real_catalog, dataclasses.replace(base, method=m)) for m in ("full", "lora", "qlora"))
    assert qlora.memory_gb_per_gpu < lora.memory_gb_per_gpu < full.memory_gb_per_gpu
    twice = finetune(real_catalog, dataclasses.replace(base, epochs=2.0))
    assert twice.gpu_hours == pytest.approx(2 * full.gpu_hours)
    assert full.wall_clock_hours == pytest.approx(full.gpu_hours / 8)


def test_costs_and_monthly_tco(real_catalog):
    est = finetune(real_catalog, FinetuneRequest("llama-3.1-8b", "H100-SXM", method="lora"))
    od = est.costs["on_demand"]
    assert od.available and od.total_usd == pytest.approx(od.usd_per_gpu_hour * est.gpu_hours)
    # 12 runs a year: one run's cost per month
    assert finetune_usd_per_month(est, "on_demand", 12) == pytest.approx(od.total_usd)
    assert finetune_usd_per_month(est, "owned", 0) == 0
    with pytest.raises(InvalidInputError, match="tier"):
        finetune_usd_per_month(est, "monthly", 1)
    unfit = finetune(real_catalog, FinetuneRequest("llama-3.1-8b", "H100-SXM", method="full"))
    with pytest.raises(DoesNotFitError):
        finetune_usd_per_month(unfit, "on_demand", 4)


@pytest.mark.parametrize(("change", "match"), [
    ({"dataset_tokens": 0}, "dataset_tokens"), ({"epochs": -1.0}, "epochs"), ({"epochs": 0}, "epochs"),
    ({"method": "prefix"}, "method must be one of"), ({"lora_rank": 8192}, "lora_rank must be <= the model's hidden"),
    ({"dataset_tokens": math.nan}, "dataset_tokens"), ({"dataset_tokens": 10**400}, "dataset_tokens"),
    ({"epochs": math.inf}, "epochs"), ({"num_gpus": 0}, "num_gpus"), ({"micro_batch": 1.5}, "micro_batch"),
    ({"seq_len_tokens": 10**9}, "seq_len_tokens"), ({"optimizer": "sgd"}, "optimizer"),
])
def test_bad_inputs_get_one_clear_message(real_catalog, change, match):
    req = dataclasses.replace(FinetuneRequest("llama-3.1-8b", "H100-SXM", method="lora"), **change)
    with pytest.raises(InvalidInputError, match=match) as info:
        finetune(real_catalog, req)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


# --- CLI ------------------------------------------------------------------------------------------------------

def _cli(capsys, *argv):
    code = main(["finetune", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_fields_and_exit_codes(capsys):
    code, out, err = _cli(capsys, "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--method", "qlora",
                          "--dataset-tokens", "1e8", "--json")
    data = json.loads(out)
    assert code == 0 and err == ""
    assert {"fits", "memory_gb_per_gpu", "memory_breakdown_gb_per_gpu", "gpu_hours", "wall_clock_hours",
            "cost_usd", "tokens_total", "flops_total"} <= set(data)
    assert set(data["cost_usd"]) == {"on_demand", "spot", "reserved_1y", "reserved_3y", "owned"}


def test_cli_does_not_fit_prints_json_and_exits_3(capsys):
    code, out, err = _cli(capsys, "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--method", "full",
                          "--dataset-tokens", "1e8", "--json")
    assert code == 3 and json.loads(out)["fits"] is False and err.count("\n") == 1 and "GB short" in err


@pytest.mark.parametrize("argv", [
    ("--method", "fullx", "--dataset-tokens", "1e8"), ("--method", "lora", "--dataset-tokens", "0"),
    ("--method", "lora", "--dataset-tokens", "1e8", "--epochs", "-1"),
    ("--method", "lora", "--dataset-tokens", "1e8", "--lora-rank", "100000"),
    ("--method", "lora", "--dataset-tokens", "nan"), ("--method", "lora", "--dataset-tokens", "1" + "0" * 400),
    ("--method", "qlora", "--dataset-tokens", "1e8", "--seq-len", "1" + "0" * 400),
])
def test_cli_bad_input_exits_2_with_one_line(capsys, argv):
    code, out, err = _cli(capsys, "--model", "llama-3.1-8b", "--gpu", "H100-SXM", *argv)
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1


def test_cli_text_output(capsys):
    code, out, _ = _cli(capsys, "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--method", "lora",
                        "--dataset-tokens", "1e8")
    assert code == 0 and "GPU-hours" in out and "cost on_demand" in out
