"""A user calibration's range comes from its own residuals (issue 13: "calibrated ranges narrow to the
calibration's residuals"), and the profile cites the user's measurement, not the prior's source."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from planner.fit.calibration import USER_MEASUREMENT_URL, calibrate_profile, user_range
from planner.fit.profile_store import points_from_vllm_bench
from tests.fit.test_calibration import BENCH


def test_user_range_by_hand(real_catalog):
    base = dataclasses.replace(real_catalog.efficiency[0], range_low_factor=0.6, range_high_factor=1.8)
    # 4 points, speeds measured/predicted 0.9 .. 1.1: widened by 1 + 0.25/sqrt(4) = 1.125
    low, high = user_range(base, [0.9, 1.0, 1.05, 1.1])
    assert (low, high) == (pytest.approx(0.9 / 1.125), pytest.approx(1.1 * 1.125))
    # one point fitted exactly: +-25 %, always containing 1
    assert user_range(base, [1.0]) == (pytest.approx(1 / 1.25), pytest.approx(1.25))
    # never wider than the prior's range
    assert user_range(base, [0.3, 3.0]) == (0.6, 1.8)


def test_calibrated_profile_narrows_and_cites_the_measurement(real_catalog):
    points = points_from_vllm_bench(json.dumps(BENCH), model=None, gpu="H100-SXM", label="bench.json")
    profile, rows = calibrate_profile(real_catalog, points, name="mine")
    prior = real_catalog.efficiency_for("vllm", real_catalog.gpu("H100-SXM"))
    assert prior.range_low_factor <= profile.range_low_factor <= 1 <= profile.range_high_factor \
        <= prior.range_high_factor
    assert profile.range_high_factor - profile.range_low_factor < prior.range_high_factor - prior.range_low_factor
    speeds = [(p.measured_value / after) ** (-1 if p.metric in ("ttft_ms", "tpot_ms") else 1) for p, _, after in rows]
    widen = 1 + 0.25 / math.sqrt(len(rows))
    assert profile.range_low_factor == pytest.approx(max(min(min(speeds), 1) / widen, prior.range_low_factor), abs=1e-3)
    assert profile.source_url == USER_MEASUREMENT_URL != prior.source_url
    assert "user measurement (bench.json)" in profile.notes
