"""Range factors: equal source weights and partial pooling by source count (calibration.range_factors)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from planner.fit.calibration import (
    DEFAULT_RANGE,
    MIN_RANGE_ROWS,
    RANGE_POOL_SOURCES,
    _source_weighted_percentiles,
    range_factors,
)


def _rows(engine: str, profile: str, ratio: float, sources: int, per_source: int) -> list:
    """`sources` x `per_source` held-out throughput rows whose measured / predicted is `ratio`."""
    return [SimpleNamespace(profile_id=profile, ratio=ratio,
                            point=SimpleNamespace(source_url=f"https://{profile}/{s}", engine=engine,
                                                  metric="output_tokens_per_s", split="holdout"))
            for s in range(sources) for _ in range(per_source)]


def test_every_source_weighs_the_same():
    # source A: one row at 0.5; source B: three rows at 2.0. Weights 1 and 1/3 each (sum 2). Sorted, the cumulative
    # midpoints are (1 - 0.5) / 2 = 0.25 for 0.5 and (4/3 - 1/6) / 2 = 0.583 for the first 2.0, so the median is
    # 0.5 + 1.5 x (0.5 - 0.25) / (0.583 - 0.25) = 1.625: B's three rows count as one source, not three.
    rows = _rows("e", "a", 0.5, 1, 1) + [SimpleNamespace(profile_id="b", ratio=2.0, point=SimpleNamespace(
        source_url="https://b", engine="e", metric="output_tokens_per_s", split="holdout")) for _ in range(3)]
    assert _source_weighted_percentiles(rows, (50.0,)) == (pytest.approx(1.625),)


# engine "other": 8 rows at 0.5 (4 sources x 2); engine "e": profile "p" 8 rows at 2.0 (2 sources x 4) and profile
# "q" 8 rows at 1.0 (1 source x 8). Each source weighs 1 in all.
SPEED = (_rows("other", "other-datacenter", 0.5, 4, 2) + _rows("e", "p", 2.0, 2, 4) + _rows("e", "q", 1.0, 1, 8))


def test_levels_pool_by_source_count_and_keep_all_rows_spread():
    assert RANGE_POOL_SOURCES == 2.0 and MIN_RANGE_ROWS == 8
    # All 24 rows, 7 sources (the four 0.5 sources hold 4/7 of the weight, q 1/7, p's two 2/7): p10 = p50 = 0.5,
    # p90 = 2.0, so all rows' spread is x1 below the median and x4 above it.
    # Engine e, 16 rows from 3 sources (q a third at 1.0, p two thirds at 2.0): p10 = 1.0, p50 = p90 = 2.0; weight
    # 3 / (3 + 2) = 0.6 on the log scale: p10 0.5^0.4, p50 2^0.6 x 0.5^0.4 = 2^0.2, p90 2.0.
    # Profile q: 8 rows, 1 source at 1.0; weight 1 / 3: p10 0.5^(0.4 x 2/3) = 0.831, p50 2^(0.2 x 2/3) = 1.097,
    # p90 2^(2/3) = 1.587. Low: min(0.831, 1.097 x 1) = 0.831; high: max(1.587, 1.097 x 4) = 4 x 2^(2/15) = 4.39.
    assert range_factors(SPEED, "q", "e") == (pytest.approx(0.5 ** (0.4 * 2 / 3)), pytest.approx(4 * 2 ** (2 / 15)))
    # profile p: 2 sources at 2.0, weight 2 / 4: p10 2^0.5 x (0.5^0.4)^0.5 = 2^0.3, p50 2^0.5 x (2^0.2)^0.5 = 2^0.6;
    # low min(2^0.3, 2^0.6) = 1.23 -> clipped to 1 (every source of it measured faster than predicted);
    # high max(2.0, 4 x 2^0.6) = 6.06
    assert range_factors(SPEED, "p", "e") == (1.0, pytest.approx(4 * 2 ** 0.6))


def test_a_profile_without_enough_rows_keeps_its_engines_range():
    # "other-amd" has no rows: engine other's 8 rows (4 sources, all 0.5), weight 4 / 6: p10 = p50 = 0.5,
    # p90 2^(1/3) x 0.5^(2/3) = 0.794; low min(0.5, 0.5 x 1) = 0.5, high max(0.794, 0.5 x 4) = 2.0
    assert range_factors(SPEED, "other-amd", "other") == (pytest.approx(0.5), pytest.approx(2.0))
    # a profile with 7 rows (< MIN_RANGE_ROWS) of its own gets what a profile of its engine with none gets
    few = SPEED + _rows("other", "other-amd", 3.0, 7, 1)
    assert range_factors(few, "other-amd", "other") == range_factors(few, "other-x", "other")


def test_no_rows_gives_the_default_range():
    assert range_factors([], "p", "e") == DEFAULT_RANGE
