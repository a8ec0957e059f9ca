"""Profile files: write efficiency profiles as CSV, store and load the user's calibrated ones, and turn
`vllm bench serve --save-result` JSON into measured points.

Profiles use the data/efficiency.csv schema (catalog.EFFICIENCY_SCHEMA). A user's calibrated
profile is a one-row CSV named <profile_id>.csv in $PLANNER_PROFILE_DIR, else
~/.config/llm-planner/profiles.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from planner.data._csvschema import read_rows
from planner.data.catalog import EFFICIENCY_SCHEMA, EfficiencyProfile
from planner.errors import InvalidInputError, require_positive
from planner.fit.measured import MeasuredPoint

PROFILE_DIR_ENV = "PLANNER_PROFILE_DIR"
DEFAULT_PROFILE_DIR = Path("~/.config/llm-planner/profiles")


def write_efficiency_csv(profiles: Iterable[EfficiencyProfile], path: Path) -> None:
    """Write profiles in the efficiency.csv schema (the column order of EFFICIENCY_SCHEMA)."""
    import csv

    cols = list(EFFICIENCY_SCHEMA)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(cols)
        for prof in profiles:
            writer.writerow([_cell(getattr(prof, c)) for c in cols])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- the user's own profiles -------------------------------------------------------------------

def profile_dir() -> Path:
    """Where calibrated profiles live: $PLANNER_PROFILE_DIR, else ~/.config/llm-planner/profiles."""
    env = os.environ.get(PROFILE_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_PROFILE_DIR.expanduser()


def _check_profile_id(profile_id: str) -> None:
    if not profile_id or not all(ch.isalnum() or ch in "-_." for ch in profile_id) or profile_id.startswith("."):
        raise InvalidInputError(f"profile name must use letters, digits, '-', '_' or '.', got {profile_id!r}")


def save_profile(profile: EfficiencyProfile, directory: Path | None = None) -> Path:
    """Write one profile as a one-row CSV (the efficiency.csv schema) named <profile_id>.csv."""
    _check_profile_id(profile.profile_id)
    folder = directory or profile_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile.profile_id}.csv"
    write_efficiency_csv([profile], path)
    return path


def load_user_profiles(directory: Path | None = None) -> tuple[EfficiencyProfile, ...]:
    """Every profile CSV in the profile directory (none if it does not exist); CatalogError if malformed."""
    folder = directory or profile_dir()
    if not folder.is_dir():
        return ()
    out = []
    for path in sorted(folder.glob("*.csv")):
        for row in read_rows(path, EFFICIENCY_SCHEMA, id_column="profile_id"):
            out.append(EfficiencyProfile(**{k: v for k, v in row.items() if not k.startswith("_")}))
    return tuple(out)


# --- vllm bench serve --save-result ------------------------------------------------------------

def points_from_vllm_bench(raw: bytes | str, *, model: str | None, gpu: str, num_gpus: int = 1,
                           tp: int | None = None, precision: str | None = None, kv_dtype: str | None = None,
                           engine: str = "vllm", label: str = "vllm bench JSON") -> list[MeasuredPoint]:
    """Measured points (output tokens/s, mean TTFT, mean TPOT) from `vllm bench serve --save-result` JSON.

    Mean input/output lengths are total tokens / completed requests. A run with
    --max-concurrency is a closed-loop serving point at that concurrency; a finite
    --request-rate without it is an open-loop point; rate inf without a cap sends every
    prompt at once (a static batch of num_prompts).
    """
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{label}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{label}: expected a JSON object")
    need = ("completed", "total_input_tokens", "total_output_tokens", "output_throughput")
    missing = [k for k in need if not isinstance(data.get(k), (int, float)) or isinstance(data.get(k), bool)]
    if missing:
        raise InvalidInputError(f"{label}: missing or non-numeric {', '.join(missing)} (is it a "
                                f"`vllm bench serve --save-result` file?)")
    completed = data["completed"]
    require_positive(completed=completed, total_input_tokens=data["total_input_tokens"],
                     total_output_tokens=data["total_output_tokens"], output_throughput=data["output_throughput"])
    inp = max(1, round(data["total_input_tokens"] / completed))
    out = max(1, round(data["total_output_tokens"] / completed))
    cap = data.get("max_concurrency")
    rate = data.get("request_rate")
    numeric = isinstance(rate, (int, float)) and not isinstance(rate, bool)
    rate = float(rate) if numeric and math.isfinite(rate) else None
    common = dict(model=model or str(data.get("model_id") or ""), gpu=gpu, num_gpus=num_gpus, tp=tp,
                  precision=precision or "bf16", kv_dtype=kv_dtype, engine=engine, input_tokens=inp,
                  output_tokens=out, split="fit", engine_version=str(data.get("backend") or engine))
    if not common["model"]:
        raise InvalidInputError(f"{label}: no model_id in the file; pass --model")
    if isinstance(cap, int) and cap >= 1:
        scenario, extra = "serving", dict(concurrency=cap)
    elif rate is not None:
        scenario, extra = "serving", dict(request_rate_per_s=rate)
    else:
        scenario, extra = "static_batch", dict(concurrency=int(data.get("num_prompts") or completed))
    metrics = [("output_tokens_per_s", data["output_throughput"]), ("ttft_ms", data.get("mean_ttft_ms")),
               ("tpot_ms", data.get("mean_tpot_ms"))]
    points = []
    for metric, value in metrics:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            points.append(MeasuredPoint(row_id=f"{label}:{metric}", scenario=scenario, metric=metric,
                                        measured_value=float(value), **common, **extra))
    return points
