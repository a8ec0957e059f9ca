"""Import per-token API prices from LiteLLM's `model_prices_and_context_window` JSON.

The file maps a model key (e.g. "gpt-5", "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo")
to an object whose cost fields are USD per token [1]; the same file ships inside the `litellm`
wheel as `litellm/model_prices_and_context_window_backup.json`. Field mapping (per token x 1e6
= per million tokens):

    input_cost_per_token            -> input_usd_per_mtok
    output_cost_per_token           -> output_usd_per_mtok
    cache_read_input_token_cost     -> cached_input_usd_per_mtok
    cache_creation_input_token_cost -> cache_write_usd_per_mtok
    input_cost_per_token_batches    -> batch_input_usd_per_mtok
    output_cost_per_token_batches   -> batch_output_usd_per_mtok
    max_input_tokens                -> max_input_tokens (0 = not stated -> empty)
    litellm_provider                -> provider;   source (an http URL) -> source_url

Only text-generation entries (`mode` chat, completion or responses) with both an input and an
output price are imported; free entries (both prices 0, e.g. local Ollama) and the documentation
entry `sample_spec` are skipped and counted. Every entry is checked before anything is returned:
a cost that is not a finite number >= 0, a token limit that is not a whole number >= 0, a
non-object entry or a duplicate key raises MalformedInputError with the file, line and field.
The JSON is read by `safe_io.loads_json` (nesting, 1e400, 400-digit integers, NaN refused), and
an imported price above the catalog's plausible band (`MTOK_BAND`, $10,000 per Mtok) or two keys
that differ only in case (the price store's ids are case-insensitive) are refused the same way.

[1] BerriAI/litellm, model_prices_and_context_window.json and its `sample_spec` entry,
    https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from planner import units
from planner.data.catalog import Catalog
from planner.data.importers._provenance import ImportResult, SourceFile, bad, read_source
from planner.data.records import MTOK_BAND, ApiPrice
from planner.data.safe_io import InputFileError, loads_json
from planner.errors import brief

LITELLM_URL = "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
FILE_NAMES = ("model_prices_and_context_window.json", "model_prices_and_context_window_backup.json")
TEXT_MODES = ("chat", "completion", "responses")

# LiteLLM field -> ApiPrice field, for the per-token costs.
COST_FIELDS = {
    "input_cost_per_token": "input_usd_per_mtok",
    "output_cost_per_token": "output_usd_per_mtok",
    "cache_read_input_token_cost": "cached_input_usd_per_mtok",
    "cache_creation_input_token_cost": "cache_write_usd_per_mtok",
    "input_cost_per_token_batches": "batch_input_usd_per_mtok",
    "output_cost_per_token_batches": "batch_output_usd_per_mtok",
}
TOKEN_FIELDS = ("max_input_tokens", "max_output_tokens", "max_tokens")
TEXT_FIELDS = ("mode", "litellm_provider", "source", "deprecation_date")
MAX_TOKENS = 10**9  # token limits: 100x the longest context served (10M tokens, Llama 4 Scout)
# Hosting suffixes stripped when matching a key to a catalog model (together_ai "-Turbo", fp8 builds).
_HOST_SUFFIXES = ("-turbo", "-fp8", "-maas", ":free")


def find_litellm_json(path: str | Path) -> Path:
    """The JSON to read: `path` itself, or the LiteLLM file inside a directory (e.g. site-packages/litellm)."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in FILE_NAMES:
            if (p / name).is_file():
                return p / name
        raise bad(str(p), None, None, None, f"has none of {', '.join(FILE_NAMES)}")
    return p


def _line_of(text: str, pattern: str, start: int = 0) -> tuple[int | None, int]:
    match = re.compile(pattern).search(text, start)
    if match is None:
        return None, start
    return text.count("\n", 0, match.start()) + 1, match.start()


def _key_pattern(key: str) -> str:
    return re.escape(json.dumps(key)) + r"\s*:"


def _locate(text: str, key: str, field: str | None = None) -> int | None:
    """Line of an entry's key (or of one field inside the entry) in the JSON text, for error messages."""
    line, pos = _line_of(text, _key_pattern(key))
    if field is None or line is None:
        return line
    field_line, _ = _line_of(text, _key_pattern(field), pos + 1)
    return field_line or line


def _parse_json(src: SourceFile) -> dict[str, Any]:
    try:
        data = loads_json(src.text, what=src.label)
    except InputFileError as err:
        if err.key is not None:
            raise bad(src.label, err.line, err.key, None, "duplicate key (a key may appear once)") from None
        raise bad(src.label, err.line, None, None, err.problem) from None
    if not isinstance(data, dict):
        raise bad(src.label, 1, None, None, "must be a JSON object mapping model names to prices")
    return data


# the message per field kind, after "<field> of <key> " (the file, line and field come from _locate)
_PROBLEM = {"cost": "must be a finite number >= 0 (USD per token)",
            "tokens": f"must be a whole number of tokens in [0, {MAX_TOKENS:,}]", "text": "must be a string"}


@functools.cache
def _entry_model() -> Any:
    """The pydantic model of one LiteLLM entry: the fields the importer reads, declared once (costs finite
    numbers >= 0, token limits whole numbers in [0, MAX_TOKENS], text fields strings); other fields are
    LiteLLM's own and ignored. Built on first use (pydantic is not imported with the planner)."""
    from pydantic import ConfigDict, Field, create_model

    cost = (float | None, Field(default=None, ge=0, allow_inf_nan=False, json_schema_extra={"x-kind": "cost"}))
    tokens = (int | None, Field(default=None, ge=0, le=MAX_TOKENS, json_schema_extra={"x-kind": "tokens"}))
    text = (str | None, Field(default=None, json_schema_extra={"x-kind": "text"}))
    fields = {**dict.fromkeys(COST_FIELDS, cost), **dict.fromkeys(TOKEN_FIELDS, tokens),
              **dict.fromkeys(TEXT_FIELDS, text)}
    return create_model("LiteLLMEntry", __config__=ConfigDict(strict=True, extra="ignore"), **fields)


def _kind(field: str) -> str:
    return "cost" if field in COST_FIELDS else "tokens" if field in TOKEN_FIELDS else "text"


def _check_entry(src: SourceFile, key: str, entry: Any) -> None:
    """MalformedInputError naming the file, line and field of the entry's first bad field (pydantic's check of
    the declaration in `_entry_model`; a strict int refuses 1.5 and true, a strict float refuses "1e-6")."""
    if not isinstance(entry, dict):
        raise bad(src.label, _locate(src.text, key), key, None, "must be an object of prices and limits")
    from pydantic import ValidationError

    model = _entry_model()
    try:
        model.model_validate(entry)
    except ValidationError as err:
        order = list(model.model_fields)
        first = min(err.errors(include_url=False), key=lambda e: order.index(str(e["loc"][0])))
        field = str(first["loc"][0])
        raise bad(src.label, _locate(src.text, key, field), field, entry.get(field),
                  f"of {brief(key)} {_PROBLEM[_kind(field)]}") from None


def _catalog_model_id(key: str, catalog: Catalog | None) -> str | None:
    """The catalog model a hosted key serves, matched on its last path part (or with a hosting suffix cut)."""
    if catalog is None:
        return None
    names = dict(catalog.names["model"])
    for model in catalog.models.values():
        names.setdefault(model.model_id.rsplit("/", 1)[-1].lower(), model.model_id)
    tail = key.rsplit("/", 1)[-1].lower()
    candidates = [key.lower(), tail] + [tail[: -len(s)] for s in _HOST_SUFFIXES if tail.endswith(s)]
    for cand in candidates:
        if cand in names:
            return names[cand]
    return None


def _per_mtok(value: Any) -> float | None:
    return None if value is None else float(value) * units.TOKENS_PER_MTOK


def _record(key: str, entry: dict[str, Any], src: SourceFile, catalog: Catalog | None,
            accessed: dt.date) -> ApiPrice:
    prices = {api_field: _per_mtok(entry.get(field)) for field, api_field in COST_FIELDS.items()}
    model_id = _catalog_model_id(key, catalog)
    source = entry.get("source")
    notes = [f"LiteLLM key {key}", f"mode {entry.get('mode')}"]
    if entry.get("deprecation_date"):
        notes.append(f"deprecation_date {entry['deprecation_date']}")
    notes.append(f"imported by `planner prices import-litellm` from {Path(src.label).name} "
                 f"(sha256 {src.sha256_12}) on {accessed.isoformat()}")
    return ApiPrice(
        api_id=key, provider=entry.get("litellm_provider") or key.split("/", 1)[0], model_name=key,
        category="open-hosted" if model_id else "unclassified", catalog_model_id=model_id,
        max_input_tokens=entry.get("max_input_tokens") or None,
        source_url=source if isinstance(source, str) and source.startswith(("http://", "https://")) else LITELLM_URL,
        source_accessed=accessed, notes="; ".join(notes), **prices,
    )


def _check_band(src: SourceFile, key: str, entry: dict[str, Any]) -> None:
    band = MTOK_BAND
    for field in COST_FIELDS:
        value = entry.get(field)
        if value is not None and band.problem(value * units.TOKENS_PER_MTOK):
            raise bad(src.label, _locate(src.text, key, field), field, value,
                      f"of {brief(key)} is ${value * units.TOKENS_PER_MTOK:.4g} per Mtok, outside the plausible band "
                      f"[{band.low:g}, {band.high:g}] ({band.source}); LiteLLM costs are USD per token")


def _check_case_duplicates(src: SourceFile, records: list[ApiPrice]) -> None:
    seen: dict[str, str] = {}
    for record in records:
        folded = record.api_id.lower()
        if folded in seen:
            raise bad(src.label, _locate(src.text, record.api_id), record.api_id, None,
                      f"differs from {brief(seen[folded])} only in case; price ids are case-insensitive, keep one")
        seen[folded] = record.api_id


def parse_litellm(src: SourceFile, *, accessed: dt.date, catalog: Catalog | None = None,
                  modes: Collection[str] = TEXT_MODES, providers: Collection[str] | None = None) -> ImportResult:
    """API price records from LiteLLM's price JSON; the whole file is checked before any record is made.

    `providers` keeps only those `litellm_provider` values (all when None); `catalog` lets hosted
    open models point at their catalog model (`catalog_model_id`, category "open-hosted").
    """
    data = _parse_json(src)
    for key, entry in data.items():
        if key != "sample_spec":
            _check_entry(src, key, entry)
    wanted = {p.lower() for p in providers} if providers else None
    skipped: Counter[str] = Counter()
    records = []
    for key, entry in data.items():
        if key == "sample_spec":
            skipped["documentation entry sample_spec"] += 1
        elif entry.get("mode") not in modes:
            skipped[f"mode not in {', '.join(modes)}"] += 1
        elif wanted is not None and str(entry.get("litellm_provider", "")).lower() not in wanted:
            skipped["provider not selected"] += 1
        elif entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
            skipped["no input or output price"] += 1
        elif entry["input_cost_per_token"] == 0 and entry["output_cost_per_token"] == 0:
            skipped["free (both prices 0)"] += 1
        else:
            _check_band(src, key, entry)
            records.append(_record(key, entry, src, catalog, accessed))
    _check_case_duplicates(src, records)
    if not records:
        raise bad(src.label, None, None, None, "has no priced text-generation entries to import "
                  f"(skipped: {', '.join(f'{n} {why}' for why, n in skipped.items()) or 'nothing'})")
    return ImportResult(tuple(records), tuple(sorted(skipped.items())), src.label, src.sha256_12)


def import_litellm_file(path: str | Path, *, accessed: dt.date, catalog: Catalog | None = None,
                        providers: Collection[str] | None = None) -> ImportResult:
    """Read and parse a LiteLLM price JSON (a file, or a directory holding one)."""
    return parse_litellm(read_source(find_litellm_json(path)), accessed=accessed, catalog=catalog,
                         providers=providers)
