"""Hostile-value strategies and an in-process CLI runner shared by the bad-input suites.

Profiles: CI-sized by default (`EXAMPLES` examples per surface; the whole directory takes ~25 s alone
on two cores); `PLANNER_LONG_FUZZ=1` runs 10x as many examples with no per-example deadline.
"""

from __future__ import annotations

import contextlib
import io
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from planner.cli import main

LONG = os.environ.get("PLANNER_LONG_FUZZ") == "1"
EXAMPLES = 3000 if LONG else 300
SETTINGS = settings(max_examples=EXAMPLES, deadline=None if LONG else 5000, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])

HUGE_INT = 10**400
# Numbers that broke boundaries before: overflow on float conversion, NaN/inf, 0, negatives, near-limits.
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**18, HUGE_INT, -HUGE_INT, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 1e-300, 0.5, 1e9, float("nan"), float("inf")]),
)
NUMBER_TEXT = st.one_of(
    NUMBERS.map(str),
    st.sampled_from(["1e400", "-1e400", "nan", "inf", "NaN", "Infinity", "1" + "0" * 5000, "", " ", "abc",
                     "0x10", "1_000", "１２", "1e-9", "٣"]),
)
NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["$(touch pwned)", "`touch pwned`", "a\nb", "a\rb", "a\x00b", "; rm -rf /", "'", '"',
                     "--help", "-", "x" * 300, "Bad Name!", "../../etc/passwd", "org/model\n#", "\u202e",
                     "{{7*7}}", "a: b", "- item", "&anchor", "*alias", "!!python/object"]),
)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, NASTY_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `planner ARGV` in-process; a usage error's SystemExit becomes its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def assert_clean_outcome(code: int, err: str, *, allowed: tuple[int, ...] = (0, 2, 3, 4)) -> None:
    """A result, or exit 2/3/4 with exactly one error line of bounded length."""
    assert code in allowed, (code, err[-500:])
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err[-500:]
        assert len(lines[0]) <= 700, lines[0][:200]
