"""Profile files: write efficiency profiles as CSV, store and load the user's calibrated ones, and turn
`vllm bench serve --save-result` JSON into measured points.

Profiles use the data/efficiency.csv columns (the EfficiencyProfile record's declaration). A user's calibrated
profile is a one-row CSV named <profile_id>.csv in $PLANNER_PROFILE_DIR, else
~/.config/llm-planner/profiles.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from planner.data._csvschema import read_records
from planner.data.columns import columns
from planner.data.records import EfficiencyProfile
from planner.data.safe_io import loads_json
from planner.errors import InvalidInputError, bounded_float, bounded_int, brief, require_positive
from planner.fit.measured import MeasuredPoint

PROFILE_DIR_ENV = "PLANNER_PROFILE_DIR"
DEFAULT_PROFILE_DIR = Path("~/.config/llm-planner/profiles")


def efficiency_rows(profiles: Iterable[EfficiencyProfile]) -> list[list[str]]:
    """The header and one row of cells per profile, in the efficiency.csv columns (the record's order)."""
    cols = list(columns(EfficiencyProfile))
    return [cols, *([_cell(getattr(prof, c)) for c in cols] for prof in profiles)]


def write_efficiency_csv(profiles: Iterable[EfficiencyProfile], path: Path) -> None:
    """Write profiles in the efficiency.csv columns (the order the EfficiencyProfile record declares)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(efficiency_rows(profiles))


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


MAX_PROFILE_ID_CHARS = 64  # a file name on every filesystem (255 bytes) with room for the suffix


def _check_profile_id(profile_id: str, reserved: Iterable[str] = ()) -> None:
    """A profile name that is a safe file name and does not shadow a shipped profile."""
    if not profile_id or not all(ch.isalnum() or ch in "-_." for ch in profile_id) or profile_id.startswith("."):
        raise InvalidInputError(f"profile name must use letters, digits, '-', '_' or '.', got {brief(profile_id)}")
    if len(profile_id) > MAX_PROFILE_ID_CHARS:
        raise InvalidInputError(f"profile name must be at most {MAX_PROFILE_ID_CHARS} characters, got "
                                f"{len(profile_id)}")
    if profile_id.lower() in {r.lower() for r in reserved}:
        raise InvalidInputError(f"profile name {profile_id!r} is a shipped profile (data/efficiency.csv); pick "
                                f"another name")


def check_profile_name(profile_id: str, reserved: Iterable[str] = ()) -> None:
    """InvalidInputError unless `profile_id` can name a user profile (see `_check_profile_id`)."""
    _check_profile_id(profile_id, reserved)


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
        out.extend(read_records(path, EfficiencyProfile, id_column="profile_id"))
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
    data = loads_json(raw, what=label, allow_nonfinite=True)  # vllm writes NaN for undefined statistics
    if not isinstance(data, dict):
        raise InvalidInputError(f"{label}: expected a JSON object")
    need = ("completed", "total_input_tokens", "total_output_tokens", "output_throughput")
    missing = [k for k in need if not isinstance(data.get(k), (int, float)) or isinstance(data.get(k), bool)]
    if missing:
        raise InvalidInputError(f"{label}: missing or non-numeric {', '.join(missing)} (is it a "
                                f"`vllm bench serve --save-result` file?)")
    # plausible bands: a benchmark of up to a billion requests, at most 10 million tokens per request, and a
    # throughput between 1e-3 and 1e8 output tokens/s (the fastest published clusters are below 1e7)
    completed = bounded_int(f"{label}: completed", data["completed"], 1, 10**9)
    bounded_float(f"{label}: total_input_tokens", data["total_input_tokens"], 0, 1e16, low_open=True)
    bounded_float(f"{label}: total_output_tokens", data["total_output_tokens"], 0, 1e16, low_open=True)
    bounded_float(f"{label}: output_throughput", data["output_throughput"], 1e-3, 1e8)
    if data.get("num_prompts") is not None:
        bounded_int(f"{label}: num_prompts", data["num_prompts"], 1, 10**9)
    if data.get("max_concurrency") is not None:
        bounded_int(f"{label}: max_concurrency", data["max_concurrency"], 1, 10**7)
    for name in ("mean_ttft_ms", "mean_tpot_ms"):
        if data.get(name) is not None:
            bounded_float(f"{label}: {name}", data[name], 1e-3, 1e8)
    if isinstance(data.get("request_rate"), (int, float)) and math.isfinite(data["request_rate"]):
        bounded_float(f"{label}: request_rate", data["request_rate"], 0, 1e7, low_open=True)
    require_positive(completed=completed)
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
