"""Named unit conversions. Every other module converts through these, never inline literals.

Decimal SI prefixes are used throughout because vendor datasheets quote decimal units
(1 GB = 1e9 B, 1 TB/s = 1e12 B/s, 1 TFLOPS = 1e12 FLOP/s). `GIB` exists only for
values a vendor states in binary units (nvidia-smi MiB, for example).
"""

from __future__ import annotations

THOUSAND = 1e3
MILLION = 1e6
BILLION = 1e9
TRILLION = 1e12

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
MIB = 2**20
GIB = 2**30

TERA = 1e12  # FLOP/s per TFLOPS
GIGA = 1e9

BITS_PER_BYTE = 8
MS_PER_S = 1e3
S_PER_MINUTE = 60
S_PER_HOUR = 3600
HOURS_PER_DAY = 24
S_PER_DAY = 86_400
DAYS_PER_YEAR = 365
MONTHS_PER_YEAR = 12
HOURS_PER_YEAR = 8760  # 365 d x 24 h
HOURS_PER_MONTH = HOURS_PER_YEAR / MONTHS_PER_YEAR  # 730 h, the convention cloud price sheets use
DAYS_PER_MONTH = DAYS_PER_YEAR / MONTHS_PER_YEAR  # 30.4167 d
W_PER_KW = 1e3
TOKENS_PER_MTOK = 1e6
