"""Source-held-out split and leave-one-source-out: no source on both sides, keys normalised, LOSO by hand."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from planner.errors import CatalogError
from planner.fit.calibration import (
    CLASS_GPU_MATCH,
    MATCH_SUFFIX,
    _vendor_ok,
    fit_additive,
    loso_results,
    profile_row,
    replace_profiles,
)
from planner.fit.measured import (
    HOLDOUT_FRAC,
    MEASURED_FILE,
    read_measured,
    source_key,
    source_split,
)
from planner.fit.validation import RowResult, error_stats, families_of, family_stats, leave_one_out, predict_rows
from tests.fit.test_validation import _point


def test_no_source_is_on_both_sides():
    sides: dict[str, set[str]] = {}
    for p in read_measured():
        sides.setdefault(p.source_key, set()).add(p.split)
    assert all(len(s) == 1 for s in sides.values()), [k for k, s in sides.items() if len(s) > 1]
    assert {"fit"} in sides.values() and {"holdout"} in sides.values()


def test_every_row_follows_its_sources_hash():
    for p in read_measured():
        assert p.split == source_split(p.source_key), p.row_id


@pytest.mark.parametrize("url, key", [
    ("https://github.com/ggml-org/llama.cpp/discussions/4167", "github.com/ggml-org/llama.cpp/discussions/4167"),
    ("https://github.com/ggml-org/llama.cpp/discussions/4167#discussioncomment-7", "github.com/ggml-org/llama.cpp/"
     "discussions/4167"),
    ("http://WWW.GitHub.com/ggml-org/llama.cpp/discussions/4167/?sort=top", "github.com/ggml-org/llama.cpp/"
     "discussions/4167"),
    (" https://docs.example.org/a/b.md?x=1#s ", "docs.example.org/a/b.md"),
    ("https://github.com/o/r/blob/abc123/docs/x.md", "github.com/o/r/blob/abc123/docs/x.md"),  # the commit stays
])
def test_source_key_normalises_the_url(url, key):
    assert source_key(url) == key


def test_source_group_overrides_the_url():
    a = source_key("https://github.com/o/r/blob/c1/offline.csv", "Study-1")
    b = source_key("https://github.com/o/r/blob/c1/online.csv", "study-1 ")
    assert a == b == "group:study-1"


def test_split_is_a_deterministic_hash():
    # the first 32 bits of the key's SHA-256, / 2**32, against HOLDOUT_FRAC
    key = "github.com/ggml-org/llama.cpp/discussions/4167"
    u = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32
    assert source_split(key) == ("holdout" if u < HOLDOUT_FRAC else "fit")
    share = np.mean([source_split(f"example.org/doc/{i}") == "holdout" for i in range(2000)])
    assert abs(share - HOLDOUT_FRAC) < 0.05  # a hash spreads keys evenly: 2000 draws, sd ~1.1 %


def test_read_measured_rejects_a_split_against_its_source(tmp_path):
    lines = MEASURED_FILE.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")  # the first row's cells up to its split column hold no quoted commas
    i = header.index("split")
    cells[i] = {"fit": "holdout", "holdout": "fit"}[cells[i]]
    path = tmp_path / "t.csv"
    path.write_text(lines[0] + "\n" + ",".join(cells) + "\n")
    with pytest.raises(CatalogError, match="the split of its source"):
        read_measured(path)


def test_leave_one_out_by_hand():
    """Model = the mean of the training values. Sources A: [10], B: [20, 40], C: [30].
    Without A the mean is (20 + 40 + 30) / 3 = 30: error |30 - 10| / 10 = 2.0.
    Without B: (10 + 30) / 2 = 20: errors |20 - 20| / 20 = 0 and |20 - 40| / 40 = 0.5.
    Without C: (10 + 20 + 40) / 3 = 23.33: error |23.33 - 30| / 30 = 0.2222.
    Median of (2.0, 0, 0.5, 0.2222) = (0.2222 + 0.5) / 2 = 0.3611."""
    keys = ["A", "B", "B", "C"]
    values = np.array([10.0, 20.0, 40.0, 30.0])
    fit = lambda train: values[train].mean()  # noqa: E731
    pred = leave_one_out(keys, fit, lambda mean, mine: np.full(mine.sum(), mean))
    assert pred == pytest.approx([30.0, 20.0, 20.0, 70.0 / 3.0])
    ape = np.abs(pred - values) / values
    assert float(np.median(ape)) == pytest.approx((2.0 / 9.0 + 0.5) / 2.0)


def test_leave_one_out_never_trains_on_the_scored_source():
    keys = ["a", "b", "a", "c", "b"]
    seen = []

    def fit(train):
        seen.append(train.copy())
        return train

    def predict(train, mine):
        assert not (train & mine).any()  # no scored row in its own training set
        assert (train | mine).all()  # and every other row in it
        return np.ones(mine.sum())

    leave_one_out(keys, fit, predict)
    assert len(seen) == 3


def _ok(measured: float, predicted: float, arch: str = "dense", metric: str = "tpot_ms") -> RowResult:
    return RowResult(_point(metric=metric, scenario="serving", concurrency=8, measured_value=measured), predicted,
                     "p", "NVIDIA Hopper", arch)


def test_family_stats_and_bias_by_hand():
    # predicted / measured - 1: -0.5, +0.25, +1.0 -> median bias +0.25; |error| 0.5, 0.25, 1.0 -> median 0.5
    rows = [_ok(100, 50), _ok(100, 125, "moe"), _ok(100, 200, "moe")]
    st = error_stats(rows)
    assert (st.median_bias_frac, st.median_ape_frac) == pytest.approx((0.25, 0.5))
    fams = family_stats(rows)
    assert list(fams) == ["tpot", "moe"] and fams["moe"].n == 2 and families_of(rows[1]) == ("tpot", "moe")
    assert fams["moe"].median_bias_frac == pytest.approx((0.25 + 1.0) / 2)


def test_loso_equals_a_refit_without_the_source(real_catalog):
    """On three sources, each source's LOSO predictions are those of a fit on the two others."""
    points = read_measured()
    keys = sorted({p.source_key for p in points if p.engine == "llama.cpp"})[:3]
    chosen = [p for p in points if p.source_key in keys]
    loso, _ = loso_results(real_catalog, chosen)
    by_id = {r.point.row_id: r.predicted_value for r in loso}
    left = keys[0]
    fit = fit_additive(real_catalog, [p for p in chosen if p.source_key != left])
    profiles = [profile_row(f"{e}-{MATCH_SUFFIX[m]}", e, m, fit.factors[(e, c)], range_factors=(1.0, 1.0),
                            n_points=0, fit_mdape_frac=None, holdout_mdape_frac=None, source_url="https://x.org",
                            notes="") for (e, c) in fit.factors for m in CLASS_GPU_MATCH[c]
                if _vendor_ok(real_catalog, e, c)]
    direct, _ = predict_rows(replace_profiles(real_catalog, profiles), [p for p in chosen if p.source_key == left])
    assert direct
    for r in direct:
        # profile_row rounds the factors to 3 digits; the refit starts from the all-sources fit
        assert by_id[r.point.row_id] == pytest.approx(r.predicted_value, rel=0.03), r.point.row_id


# Sources kept out of data/ for independent checks of the model (issue 11): the TensorRT-LLM performance overview
# from release 1.0 on, MLPerf Inference v4.1/v5.0/v5.1 results, two community benchmark repositories, the LMSYS
# large-scale expert-parallel posts, TensorRT-LLM's DeepSeek blog posts and DeepSeek's open-infra-index.
RESERVED = [
    r"nvidia\.github\.io/TensorRT-LLM/.*perf-overview",  # the published docs are the current (>= 1.0) release
    r"github\.com/NVIDIA/TensorRT-LLM/(blob|tree|raw)/(main|v?1\.|release/1\.)[^/]*/docs/source/performance/",
    r"inference_results_v(4\.1|5\.0|5\.1)\b",
    r"submissions_inference_v?(4\.1|5\.0|5\.1)\b",
    r"mlperf[_-]inference[_-](test[_-])?(submissions|results)[_-]v?(4\.1|5\.0|5\.1)\b",
    r"mlcommons\.org/.*(inference-v?4-1|inference-v?5-0|inference-v?5-1)",
    r"XiongjieDai/GPU-Benchmarks-on-LLM-Inference",
    r"LambdaLabsML/vllm-benchmark",
    r"lmsys\.org/blog/.*(large-scale-ep|gb200)",
    r"TensorRT-LLM/.*blogs?/",
    r"developer\.nvidia\.com/blog/.*deepseek",
    r"deepseek-ai/open-infra-index",
]
# Commits of docs/source/performance/perf-overview.md that predate release 1.0 (the only ones data/ may cite)
PRE_1_0_PERF_OVERVIEW = {"258c7540c03517def55d9a5aadfa9288af474e1b": "v0.17 tables (online table: v0.14)",
                         "6ad7cf1bcc08e31990c62ba929a8e84f35667654": "v0.9.0 text in the WhiteD2125 fork",
                         "ab4143e1d3c82df550f0d5673090a8feee84c7bd": "v0.20 text in the dominicshanshan fork",
                         # gh-pages: the same commit also holds the 1.x pages, so the release folder is part of the key
                         "b8e38f9c65ed11994dd14df0f1630b93fac26e48/0.21.0/": "gh-pages 0.21.0 (v0.21 text)",
                         "85a2a656c25e374a0d4cb9a7d0f15a3e82855937/0.19.0/": "gh-pages 0.19.0 (v0.19 text)"}


def _reserved(url: str) -> str | None:
    for pattern in RESERVED:
        if re.search(pattern, url, flags=re.IGNORECASE):
            return pattern
    if "performance/perf-overview" in url and not any(c in url for c in PRE_1_0_PERF_OVERVIEW):
        return "perf-overview at a commit not known to predate 1.0"
    return None


@pytest.mark.parametrize("url", [
    "https://nvidia.github.io/TensorRT-LLM/performance/perf-overview.html",
    "https://github.com/NVIDIA/TensorRT-LLM/blob/main/docs/source/performance/perf-overview.md",
    "https://github.com/NVIDIA/TensorRT-LLM/blob/v1.0.0/docs/source/performance/perf-overview.md",
    "https://github.com/NVIDIA/TensorRT-LLM/blob/0123456789abcdef0123456789abcdef01234567/docs/source/performance/"
    "perf-overview.md",
    "https://github.com/mlcommons/inference_results_v5.1/blob/main/closed/NVIDIA/results/x.txt",
    "https://github.com/mlcommons/inference_results_v4.1/tree/main/closed",
    "https://github.com/XiongjieDai/GPU-Benchmarks-on-LLM-Inference",
    "https://github.com/LambdaLabsML/vllm-benchmark/blob/main/README.md",
    "https://lmsys.org/blog/2025-05-05-large-scale-ep/",
    "https://github.com/NVIDIA/TensorRT-LLM/blob/main/docs/source/blogs/tech_blog/blog1_Pushing_Latency_Boundaries.md",
    "https://github.com/deepseek-ai/open-infra-index/blob/main/202502OpenSourceWeek/day_6_one_more_thing.md",
])
def test_reserved_patterns_catch_the_reserved_sources(url):
    assert _reserved(url)


@pytest.mark.parametrize("url", [
    "https://github.com/NVIDIA/TensorRT-LLM/blob/258c7540c03517def55d9a5aadfa9288af474e1b/docs/source/performance/"
    "perf-overview.md",
    "https://github.com/gbeezybez/inference_results_v6.0/blob/x/closed/AMD/results/a.txt",
    "https://github.com/NVIDIA/TensorRT-LLM/issues/5929",
])
def test_reserved_patterns_leave_other_sources(url):
    assert _reserved(url) is None


def test_no_measured_row_comes_from_a_reserved_source():
    hits = [(p.row_id, p.source_url, why) for p in read_measured() if (why := _reserved(p.source_url or ""))]
    assert not hits, hits[:5]
