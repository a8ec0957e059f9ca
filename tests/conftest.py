"""Shared fixtures: a small inline catalog (function scope, editable) and the real one (session scope)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from planner.data.catalog import DATA_DIR, Catalog, load_catalog

# A two-layer dense model whose parameters are easy to count by hand:
# attention per layer: q, k, v, o = 4 x 1024 x 1024 = 4,194,304; MLP 3 x 1024 x 4096 = 12,582,912;
# norms 2 x 1024; 2 layers -> 33,558,528; final norm 1,024; LM head 1000 x 1024 = 1,024,000;
# embedding 1,024,000. Total 35,607,552; always-read (all but the embedding) 34,583,552.
TINY_DENSE = {
    "model_type": "llama", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 1000,
    "tie_word_embeddings": False, "max_position_embeddings": 8192,
}
# A two-layer MoE: 8 experts of 3 x 1024 x 512 = 1,572,864 params, top-2, router 1024 x 8 = 8,192.
TINY_MOE = {
    "model_type": "mixtral", "hidden_size": 1024, "intermediate_size": 512, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128, "vocab_size": 1000,
    "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
    "max_position_embeddings": 8192,
}

MODELS_HEADER = ("model_id,aliases,name,family,developer,developer_country,release_date,config_file,architecture,"
                 "license_id,openness,context_length_tokens,languages,languages_count,native_precision,"
                 "published_total_params_b,published_active_params_b,strengths,source_url,source_accessed,notes")
LICENSES_HEADER = ("license_id,name,spdx_id,commercial_use,mau_limit,attribution_required,naming_requirement,"
                   "acceptable_use_policy,research_only,osi_approved,summary,source_url,source_accessed")
GPUS_HEADER = ("gpu_id,aliases,name,vendor,generation,category,memory_gb,usable_memory_gb,memory_bandwidth_tb_s,"
               "bf16_dense_tflops,fp8_dense_tflops,fp4_dense_tflops,int8_dense_tops,tdp_w,interconnect,"
               "interconnect_bandwidth_gb_s,max_gpus_per_node,purchase_usd,purchase_source_url,"
               "purchase_source_accessed,source_url,source_accessed,notes")
PRICES_HEADER = ("gpu_id,provider,pricing,usd_per_gpu_hour,region,instance_type,gpus_per_instance,source_url,"
                 "source_accessed,notes")
API_HEADER = ("api_id,provider,model_name,category,catalog_model_id,input_usd_per_mtok,output_usd_per_mtok,"
              "cached_input_usd_per_mtok,cache_write_usd_per_mtok,batch_input_usd_per_mtok,"
              "batch_output_usd_per_mtok,max_input_tokens,source_url,source_accessed,notes")


def write_tiny_catalog(root: Path) -> Path:
    """Write a minimal, valid data directory under `root` and return it."""
    data = root / "data"
    (data / "model_configs").mkdir(parents=True)
    (data / "model_configs" / "tiny-dense.json").write_text(json.dumps(TINY_DENSE))
    (data / "model_configs" / "tiny-moe.json").write_text(json.dumps(TINY_MOE))
    (data / "models.csv").write_text("\n".join([
        MODELS_HEADER,
        "test/Tiny-Dense,tiny;tiny-dense,Tiny Dense,Tiny,TestLab,US,2025-01-01,tiny-dense.json,dense,apache-2.0,"
        "open-weight,8192,en;de,2,bf16,0.0356,0.0356,coding,https://example.org/tiny,2026-11-29,",
        "test/Tiny-MoE,tiny-moe,Tiny MoE,Tiny,TestLab,FR,2025-02-01,tiny-moe.json,moe,llama-test,open-weight,8192,"
        "en,1,bf16,,,general,https://example.org/tiny-moe,2026-11-29,",
    ]) + "\n")
    (data / "licenses.csv").write_text("\n".join([
        LICENSES_HEADER,
        "apache-2.0,Apache License 2.0,Apache-2.0,true,,true,,false,false,true,permissive,"
        "https://www.apache.org/licenses/LICENSE-2.0,2026-11-29",
        "llama-test,Test Community License,,true,700000000,true,Built with Test,true,false,false,MAU clause,"
        "https://example.org/license,2026-11-29",
    ]) + "\n")
    (data / "gpus.csv").write_text("\n".join([
        GPUS_HEADER,
        # 1 TB/s, 100 TFLOPS: round numbers for hand-derived golden values
        "TEST-GPU,tg;testgpu,Test GPU,NVIDIA,hopper,datacenter,10,10,1,100,200,,200,500,nvlink,100,8,10000,"
        "https://example.org/buy,2026-11-29,https://example.org/gpu,2026-11-29,",
        "TEST-SMALL,,Test Small,NVIDIA,ampere,consumer,1,1,0.5,50,,,100,300,pcie,32,4,,,,"
        "https://example.org/small,2026-11-29,",
    ]) + "\n")
    (data / "gpu_prices.csv").write_text("\n".join([
        PRICES_HEADER,
        "TEST-GPU,testcloud,on_demand,2,us,test.8x,8,https://example.org/price,2026-11-29,",
        "TEST-GPU,testcloud,spot,1,us,test.8x,8,https://example.org/price,2026-11-29,",
    ]) + "\n")
    (data / "api_prices.csv").write_text("\n".join([
        API_HEADER,
        "test-api,testco,Test API,closed,,1,4,0.1,1.25,0.5,2,100000,https://example.org/api,2026-11-29,",
    ]) + "\n")
    for name in ("precisions.csv", "kv_dtypes.csv", "engines.csv", "efficiency.csv"):
        shutil.copy(DATA_DIR / name, data / name)
    return data


@pytest.fixture(autouse=True)
def _isolated_user_stores(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's imported prices or calibrated profiles under ~/.config."""
    root = tmp_path_factory.mktemp("user-stores")
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(root / "prices"))
    monkeypatch.setenv("PLANNER_PROFILE_DIR", str(root / "profiles"))


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A small, valid, editable data directory (function scope)."""
    return write_tiny_catalog(tmp_path)


@pytest.fixture
def tiny_catalog(tiny_data_dir: Path) -> Catalog:
    return load_catalog(tiny_data_dir)


@pytest.fixture(scope="session")
def real_catalog() -> Catalog:
    """The shipped data/ catalogs, loaded and validated once."""
    return load_catalog()
