"""estimate's automatic layout: near-ties (within LAYOUT_TIE_FRAC of the best max-throughput) go to the simplest
layout (fewer pipeline stages, then no EP / attention DP, then fewer TP ranks), a clear lead still wins."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner.perf import evaluator
from planner.perf.estimate import LAYOUT_TIE_FRAC, EstimateRequest, auto_layout, layout_simplicity, pick_layout, prepare
from planner.perf.evaluator import Layout

DP8 = Layout(tp=1, pp=1, dp=8)
PP2_DP4 = Layout(tp=1, pp=2, dp=4)
TP8 = Layout(tp=8, pp=1, dp=1)
TP2_DP4 = Layout(tp=2, pp=1, dp=4)
ADP8 = Layout(tp=8, pp=1, dp=1, ep=True, attn_dp=True)


def test_simplicity_order():
    # (pp, ep or attention DP, tp): DP8 (1, 0, 1) < TP2xDP4 (1, 0, 2) < TP8 (1, 0, 8) < attention DP8 (1, 1, 8)
    # < TP1xPP2xDP4 (2, 0, 1)
    assert sorted([PP2_DP4, ADP8, TP8, TP2_DP4, DP8], key=layout_simplicity) == [DP8, TP2_DP4, TP8, ADP8, PP2_DP4]


def test_a_near_tie_goes_to_the_simpler_layout():
    # TP1xPP2xDP4 leads DP8 by 0.02 % (1000.2 vs 1000): a tie (0.02 % < 1 %), DP8 has no pipeline stages
    assert pick_layout([PP2_DP4, DP8], np.array([1000.2, 1000.0])) == 1
    # at exactly the tolerance it is still a tie: 1000 >= (1 - 0.01) x 1010.101... = 1000
    assert pick_layout([PP2_DP4, DP8], np.array([1000.0 / (1 - LAYOUT_TIE_FRAC), 1000.0])) == 1


def test_a_clear_lead_still_wins():
    # 2 % ahead: more than the 1 % tolerance, the pipelined layout is kept
    assert pick_layout([PP2_DP4, DP8], np.array([1020.0, 1000.0])) == 0
    # a layout that does not fit (-inf) never wins, however simple
    assert pick_layout([DP8, PP2_DP4], np.array([-np.inf, 10.0])) == 1


def test_equally_simple_layouts_keep_the_faster():
    # TP8 and TP8 with EP + attention DP differ in the second key; two of the same key: the higher throughput
    assert pick_layout([TP8, Layout(tp=8, pp=1, dp=1)], np.array([999.0, 1000.0])) == 1
    assert pick_layout([ADP8, TP8], np.array([1005.0, 1000.0])) == 1


@pytest.mark.parametrize("model, gpu", [("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm"), ("qwen3-8b", "l40s"),
                                        ("llama-3.3-70b", "h100-sxm"), ("deepseek-v3", "h200-sxm")])
def test_estimate_picks_no_layout_that_a_simpler_near_tie_beats(real_catalog, model, gpu):
    """On the real catalog: the picked layout is within the tolerance of the best, and no simpler layout is."""
    req = EstimateRequest(model=model, gpu=gpu, num_gpus=8)
    picked = auto_layout(real_catalog, req)
    base = prepare(real_catalog, req)
    layouts = [lay for lay in evaluator.layouts_for(base.candidate.engine, base.model.arch, base.gpu, 8)
               if not lay.ep or lay.attn_dp]
    ev = evaluator.evaluate(base.model.arch, [replace(base.candidate, layout=lay) for lay in layouts],
                            input_tokens=req.input_tokens, output_tokens=req.output_tokens,
                            context_length_tokens=base.model.context_length_tokens)
    tput = dict(zip(layouts, np.where(ev.fits, ev.output_tokens_per_s, -np.inf), strict=True))
    best = max(tput.values())
    assert tput[picked] >= (1 - LAYOUT_TIE_FRAC) * best
    assert not any(t >= (1 - LAYOUT_TIE_FRAC) * best and layout_simplicity(lay) < layout_simplicity(picked)
                   for lay, t in tput.items())
