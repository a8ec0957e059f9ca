"""Import GPU-hour prices from SkyPilot catalog `vms.csv` files.

SkyPilot's catalog (github.com/skypilot-org/skypilot-catalog, `catalogs/v7/<cloud>/vms.csv`)
lists one row per instance type, region and zone with `InstanceType, AcceleratorName,
AcceleratorCount, Price, SpotPrice, Region` (and more; column order differs per cloud). The
per-GPU price is the instance price / accelerator count, as in the shipped data/gpu_prices.csv.

GCP lists attached GPUs as rows with an empty InstanceType and the host VM separately; a GPU
VM costs host + GPUs in the same zone. The host for each accelerator and count follows
SkyPilot's own table (`_ACC_INSTANCE_TYPE_DICTS` in skypilot-org/skypilot
sky/catalog/gcp_catalog.py), taking the cheapest listed host in the zone as SkyPilot does.

Offers are collapsed per (GPU, cloud, tier) to the cheapest and the median (lower middle)
(instance type x region) offer, each zone reduced to its region's lowest price; `keep_all=True`
keeps every offer. Accelerators the catalog does not know (T4, V100, TPUs) are skipped and
counted. A missing column, a price that is not a number >= 0 or a count that is not a whole
number >= 1 raises MalformedInputError with the file, line and field before anything is made, as
do a per-GPU price outside the catalog's plausible band (`GPU_HOUR_BAND`), two rows for the same
instance type and zone with different prices, and special files (a FIFO named vms.csv is refused,
not read; /proc, /sys and /dev are never walked).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from planner.data._csvschema import read_records
from planner.data.catalog import Catalog
from planner.data.columns import MAY_BE_ABSENT, NonNegative, columns
from planner.data.importers._provenance import ImportResult, SourceFile, bad, read_source
from planner.data.records import GPU_HOUR_BAND, GpuPrice
from planner.data.safe_io import MAX_DIR_FILES, refused_root
from planner.errors import CatalogError, UnknownNameError

CATALOG_URL = "https://github.com/skypilot-org/skypilot-catalog/blob/master/catalogs/v7/{cloud}/vms.csv"

# GCP host VM families per accelerator and count (SkyPilot sky/catalog/gcp_catalog.py _ACC_INSTANCE_TYPE_DICTS).
GCP_HOSTS = {
    "A100": {1: ("a2-highgpu-1g",), 2: ("a2-highgpu-2g",), 4: ("a2-highgpu-4g",), 8: ("a2-highgpu-8g",),
             16: ("a2-megagpu-16g",)},
    "A100-80GB": {1: ("a2-ultragpu-1g",), 2: ("a2-ultragpu-2g",), 4: ("a2-ultragpu-4g",), 8: ("a2-ultragpu-8g",)},
    "L4": {1: ("g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16", "g2-standard-32"),
           2: ("g2-standard-24",), 4: ("g2-standard-48",), 8: ("g2-standard-96",)},
    "H100": {1: ("a3-highgpu-1g",), 2: ("a3-highgpu-2g",), 4: ("a3-highgpu-4g",), 8: ("a3-highgpu-8g",)},
    "H100-MEGA": {8: ("a3-megagpu-8g",)},
    "H200": {8: ("a3-ultragpu-8g",)},
    "B200": {8: ("a4-highgpu-8g",)},
}
# SkyPilot names one card for several boards; these clouds list the PCIe board under the plain name
# (RunPod lists SXM parts as "H100-SXM", "A100-80GB-SXM"; see its instance types "1x_H100_SECURE" etc.).
PROVIDER_BOARD = {("runpod", "H100"): "H100-PCIe", ("runpod", "A100-80GB"): "A100-80GB-PCIe"}
# Instance-type words that name the board (Lambda "gpu_1x_h100_pcie", Vast "1x-H100_NVL-...").
BOARD_HINTS = (("pcie", "PCIe"), ("nvl", "NVL"))


@dataclass(frozen=True)
class Offer:
    """One priced offer: an instance type in a region, per GPU-hour."""

    gpu_id: str
    provider: str
    pricing: str
    usd_per_gpu_hour: float
    region: str
    instance_type: str
    gpus_per_instance: int


def provider_of(path: Path) -> str:
    """The cloud a vms.csv belongs to: its directory (`aws/vms.csv`) or its name prefix (`aws_vms.csv`)."""
    if path.name == "vms.csv":
        return path.parent.name.lower()
    if "_vms" in path.stem:
        return path.stem.split("_vms", 1)[0].lower()
    raise bad(str(path), None, None, None, "cannot tell the cloud: name it <cloud>/vms.csv or <cloud>_vms.csv, "
              "or pass --provider")


def find_vms_files(directory: str | Path) -> list[Path]:
    """Every `vms.csv` (or `<cloud>_vms*.csv`) under `directory`, or the file itself."""
    p = Path(directory).expanduser()
    root = refused_root(p)
    if root is not None:
        raise bad(str(p), None, None, None, f"is under {root}, which holds system pseudo-files, not price tables")
    try:
        mode = os.stat(p).st_mode
    except OSError:
        raise bad(str(p), None, None, None, "no such file or directory") from None
    if stat.S_ISREG(mode):
        return [p]
    if not stat.S_ISDIR(mode):
        raise bad(str(p), None, None, None, "is not a regular file or a directory")
    try:
        files = sorted({*p.rglob("vms.csv"), *p.rglob("*_vms*.csv")})
    except OSError as err:
        raise bad(str(p), None, None, None, f"cannot be listed ({err.strerror})") from None
    if len(files) > MAX_DIR_FILES:
        raise bad(str(p), None, None, None, f"holds {len(files):,} vms.csv files, over the {MAX_DIR_FILES:,} limit")
    if not files:
        raise bad(str(p), None, None, None, "has no SkyPilot vms.csv files (expected <cloud>/vms.csv)")
    return files


@dataclass(frozen=True)
class VmsRow:
    """One row of a SkyPilot vms.csv, as far as the importer reads it (SkyPilot's column names; other
    columns are ignored). A row with an AcceleratorName prices that many accelerators; one without is a
    host VM (GCP)."""

    InstanceType: str | None
    AcceleratorName: str | None
    AcceleratorCount: NonNegative | None  # SkyPilot writes counts as decimals ("8.0")
    Price: NonNegative | None  # USD per instance-hour, on demand (empty: no such offer)
    Region: str
    SpotPrice: Annotated[NonNegative | None, MAY_BE_ABSENT]
    AvailabilityZone: Annotated[str | None, MAY_BE_ABSENT]


def _rows(src: SourceFile) -> list[tuple[int, VmsRow]]:
    """(line, row) of every distinct row, checked against VmsRow; exact repeats are dropped."""
    try:
        table = read_records(src.text.encode(), VmsRow, name=src.label, strict_columns=False)
    except CatalogError as err:
        problem = err.problem
        if err.row == 1 and problem.startswith("missing column"):
            required = [c for c, col in columns(VmsRow).items() if not col.may_be_absent]
            problem = f"missing column (a SkyPilot vms.csv header has {', '.join(required)}, ...)"
        raise bad(src.label, err.row, err.column, err.value, problem) from None
    rows = []
    seen: dict[tuple[str, ...], tuple[int, VmsRow]] = {}
    for line, row in table.numbered():
        if row.AcceleratorName:
            count = row.AcceleratorCount
            if count is None:
                raise bad(src.label, line, "AcceleratorCount", "", "is empty but the row names an accelerator")
            if count < 1 or count != int(count):
                raise bad(src.label, line, "AcceleratorCount", count, "must be a whole number >= 1")
        key = tuple(str(getattr(row, c) or "") for c in ("InstanceType", "AcceleratorName", "AcceleratorCount",
                                                         "Region", "AvailabilityZone"))
        first = seen.get(key)
        if first is not None:
            if (first[1].Price, first[1].SpotPrice) != (row.Price, row.SpotPrice):
                raise bad(src.label, line, "Price", row.Price,
                          f"conflicts with line {first[0]} (same instance type, accelerator and zone, "
                          f"price {first[1].Price})")
            continue  # an exact repeat adds nothing
        seen[key] = (line, row)
        rows.append((line, row))
    return rows


def _gpu_id(catalog: Catalog, provider: str, name: str, instance_type: str) -> str | None:
    board = PROVIDER_BOARD.get((provider, name))
    if board in catalog.gpus:
        return board
    try:
        gpu_id = catalog.gpu(name).gpu_id
    except UnknownNameError:
        return None
    lowered = instance_type.lower()
    for hint, suffix in BOARD_HINTS:
        if hint in lowered:
            for cand in (f"{gpu_id}-{suffix}", f"{gpu_id.split('-')[0]}-{suffix}"):
                if cand.lower() in catalog.names["gpu"]:
                    return catalog.names["gpu"][cand.lower()]
    return gpu_id


def _gcp_hosts(rows: list[tuple[int, VmsRow]]) -> dict[tuple[str, str], dict[str, float]]:
    """(zone, instance type) -> {tier: host price} for GCP host VM rows."""
    hosts: dict[tuple[str, str], dict[str, float]] = {}
    for _, row in rows:
        if row.InstanceType and not row.AcceleratorName:
            zone = row.AvailabilityZone or row.Region
            hosts[(zone, row.InstanceType)] = {t: v for t, v in (("on_demand", row.Price),
                                                                 ("spot", row.SpotPrice)) if v}
    return hosts


def _check_band(label: str, line: int, row: VmsRow, tier: str, usd_per_gpu_hour: float) -> None:
    band = GPU_HOUR_BAND
    if band.problem(usd_per_gpu_hour):
        field = "Price" if tier == "on_demand" else "SpotPrice"
        raise bad(label, line, field, getattr(row, field),
                  f"gives ${usd_per_gpu_hour:.4g} per GPU-hour ({tier}), outside the plausible band "
                  f"[{band.low:g}, {band.high:g}] ({band.source})")


def _offers(rows: list[tuple[int, VmsRow]], provider: str, catalog: Catalog, skipped: Counter[str],
            src_label: str) -> list[Offer]:
    hosts = _gcp_hosts(rows) if any(not r.InstanceType and r.AcceleratorName for _, r in rows) else {}
    offers = []
    for line, row in rows:
        name, count = row.AcceleratorName, row.AcceleratorCount
        if not name or count is None:
            continue
        gpu_id = _gpu_id(catalog, provider, name, row.InstanceType or "")
        if gpu_id is None:
            why = "TPUs (not GPUs)" if name.lower().startswith("tpu") else f"accelerator {name} not in the GPU catalog"
            skipped[why] += 1
            continue
        n = int(count)
        instance, extra = row.InstanceType or "", {"on_demand": 0.0, "spot": 0.0}
        if not instance:  # a GCP GPU row: add the cheapest allowed host VM of the same zone
            zone = row.AvailabilityZone or row.Region
            choices = [(h, hosts[(zone, h)]) for h in GCP_HOSTS.get(name, {}).get(n, ()) if (zone, h) in hosts]
            if not choices:
                skipped[f"{name} x{n}: no host VM listed in the same zone"] += 1
                continue
            instance, host = min(choices, key=lambda c: c[1].get("on_demand", math.inf))
            extra = {"on_demand": host.get("on_demand", math.nan), "spot": host.get("spot", math.nan)}
        for tier, price in (("on_demand", row.Price), ("spot", row.SpotPrice)):
            total = (price or 0.0) + extra[tier]
            if price and math.isfinite(total) and total > 0:  # empty or 0.00 = no offer in that tier
                _check_band(src_label, line, row, tier, total / n)
                offers.append(Offer(gpu_id, provider, tier, total / n, row.Region, instance, n))
    return offers


def _summary(group: list[Offer]) -> list[tuple[str, Offer]]:
    """Cheapest and median (lower middle) offer of a group, each region's lowest price per instance type."""
    best: dict[tuple[str, str], Offer] = {}
    for offer in group:
        key = (offer.instance_type, offer.region)
        if key not in best or offer.usd_per_gpu_hour < best[key].usd_per_gpu_hour:
            best[key] = offer
    ranked = sorted(best.values(), key=lambda o: (o.usd_per_gpu_hour, o.instance_type, o.region))
    cheapest, median = ranked[0], ranked[(len(ranked) - 1) // 2]
    n = len(ranked)
    if median is cheapest:
        return [(f"cheapest and median of {n} offer(s) (instance x region)", cheapest)]
    return [(f"cheapest of {n} offers (instance x region); median offer is {median.usd_per_gpu_hour:.4g}", cheapest),
            (f"median offer (lower middle of {n} sorted by $/GPU-h; cheapest "
             f"{cheapest.usd_per_gpu_hour:.4g})", median)]


def _record(offer: Offer, what: str, src: SourceFile, url: str, accessed: dt.date) -> GpuPrice:
    note = (f"{what}. SkyPilot catalog {Path(src.label).name} (sha256 {src.sha256_12}) imported by "
            f"`planner prices import-skypilot` on {accessed.isoformat()}; per-GPU = instance price / "
            f"accelerator count" + ("; GCP: host VM + GPUs of the same zone" if offer.provider == "gcp" else ""))
    return GpuPrice(gpu_id=offer.gpu_id, provider=offer.provider, pricing=offer.pricing,
                    usd_per_gpu_hour=round(offer.usd_per_gpu_hour, 6), region=offer.region,
                    instance_type=offer.instance_type, gpus_per_instance=offer.gpus_per_instance,
                    source_url=url, source_accessed=accessed, notes=note)


def parse_vms_csv(src: SourceFile, *, provider: str, catalog: Catalog, accessed: dt.date,
                  source_url: str | None = None, keep_all: bool = False) -> ImportResult:
    """GPU price records from one SkyPilot vms.csv; the whole file is checked first."""
    rows = _rows(src)
    skipped: Counter[str] = Counter()
    offers = _offers(rows, provider, catalog, skipped, src.label)
    url = source_url or CATALOG_URL.format(cloud=provider)
    groups: dict[tuple[str, str], list[Offer]] = defaultdict(list)
    for offer in offers:
        groups[(offer.gpu_id, offer.pricing)].append(offer)
    records = []
    for key in sorted(groups):
        chosen = ([("offer", o) for o in groups[key]] if keep_all else _summary(groups[key]))
        records.extend(_record(o, what, src, url, accessed) for what, o in chosen)
    return ImportResult(tuple(records), tuple(sorted(skipped.items())), src.label, src.sha256_12)


def import_skypilot_dir(directory: str | Path, *, catalog: Catalog, accessed: dt.date,
                        provider: str | None = None, source_url: str | None = None,
                        keep_all: bool = False) -> list[ImportResult]:
    """Parse every vms.csv under `directory`; all files are checked before any result is returned."""
    results = []
    for path in find_vms_files(directory):
        cloud = (provider or provider_of(path)).lower()
        results.append(parse_vms_csv(read_source(path), provider=cloud, catalog=catalog, accessed=accessed,
                                     source_url=source_url, keep_all=keep_all))
    if not any(r.records for r in results):
        raise bad(str(directory), None, None, None, "has no GPU offers for GPUs in the catalog")
    return results
