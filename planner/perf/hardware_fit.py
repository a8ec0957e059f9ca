"""Hardware fit of one model: every GPU x precision x GPUs-per-replica that holds it, how fast, at what price.

Wiring of `sweep.sweep` (the max-throughput point of each configuration: the largest batch
whose KV cache fits), the efficiency profile's calibrated range (applied to the output
speed exactly as `estimate()` applies it), `costs.tier_prices` (each tier's cheapest offer
across providers) and `costs.usd_per_mtok_full_load`. No traffic or latency target is
involved: this ranks hardware; `plan()` sizes and prices a fleet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from planner.data.catalog import Catalog
from planner.econ.costs import TierPrice, tier_prices, usd_per_mtok_full_load
from planner.perf.sweep import sweep


def hardware_fit(catalog: Catalog, model_id: str, *, gpu_ids: Iterable[str], precisions: Iterable[str],
                 gpu_counts: Iterable[int], input_tokens: int, output_tokens: int, reserved_1y_discount_frac: float,
                 reserved_3y_discount_frac: float, pricing_tier: str = "on_demand") -> list[dict[str, Any]]:
    """The sweep's rows for one model, each with

    - `output_tokens_per_s_low` / `_high`: output tokens/s x the profile's range_low_factor /
      range_high_factor (NaN where the configuration does not fit);
    - `usd_per_gpu_hour`, `provider`, `price_basis`, `price_source_url`: the `pricing_tier`
      price of `costs.tier_prices` with no provider pinned (NaN / None where there is none);
    - `usd_per_mtok_full_load`: that price over one busy replica's output tokens
      (`costs.usd_per_mtok_full_load`; NaN without a price or a fit).
    """
    result = sweep(catalog, input_tokens=input_tokens, output_tokens=output_tokens, models=[model_id],
                   gpus=list(gpu_ids), precisions=list(precisions), gpu_counts=list(gpu_counts))
    prices: dict[str, TierPrice] = {}
    rows = result.rows()
    for row in rows:
        gpu_id = row["gpu_id"]
        if gpu_id not in prices:
            prices[gpu_id] = tier_prices(catalog, gpu_id, provider=None,
                                         reserved_1y_discount_frac=reserved_1y_discount_frac,
                                         reserved_3y_discount_frac=reserved_3y_discount_frac)[pricing_tier]
        price = prices[gpu_id]
        row.update(usd_per_gpu_hour=price.usd_per_gpu_hour, provider=price.provider, price_basis=price.basis,
                   price_source_url=price.source_url, output_tokens_per_s_low=math.nan,
                   output_tokens_per_s_high=math.nan, usd_per_mtok_full_load=math.nan)
        if not row["fits"]:
            continue
        profile = catalog.efficiency_for(row["engine"], catalog.gpu(gpu_id), profile_id=row["efficiency_profile"])
        row["output_tokens_per_s_low"] = row["output_tokens_per_s"] * profile.range_low_factor
        row["output_tokens_per_s_high"] = row["output_tokens_per_s"] * profile.range_high_factor
        if price.available:
            row["usd_per_mtok_full_load"] = usd_per_mtok_full_load(price.usd_per_gpu_hour, row["num_gpus"],
                                                                   row["output_tokens_per_s"])
    return rows


__all__ = ["hardware_fit"]
