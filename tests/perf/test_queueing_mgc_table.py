"""data/queueing_mgc.csv is what scripts/queueing_mgc_table.py says it holds: its grid, seed and arrivals, cells that
re-run to the same figures, and the single-server rows against Pollaczek-Khinchine."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from planner.errors import CatalogError
from planner.perf.queueing import MGC_CSV, _mgc_correction, mgc_grid

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("queueing_mgc_table", ROOT / "scripts" / "queueing_mgc_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


def _rows() -> dict[str, dict[str, str]]:
    import csv

    with open(MGC_CSV, encoding="utf-8", newline="") as fh:
        return {r["row_id"]: r for r in csv.DictReader(fh)}


def test_table_is_the_scripts_grid():
    rows = _rows()
    assert len(rows) == len(SCRIPT.SERVICE_CVS) * len(SCRIPT.SERVERS) * len(SCRIPT.UTILISATIONS)
    assert {float(r["service_cv"]) for r in rows.values()} == set(SCRIPT.SERVICE_CVS)
    assert {int(r["servers"]) for r in rows.values()} == set(SCRIPT.SERVERS)
    assert {float(r["utilisation_frac"]) for r in rows.values()} == set(SCRIPT.UTILISATIONS)
    assert {(r["generated_by"], r["seed"], r["arrivals"]) for r in rows.values()} == {
        (SCRIPT.GENERATED_BY, str(SCRIPT.SEED), str(SCRIPT.ARRIVALS))}
    grid = mgc_grid()
    assert grid.factor.shape == (len(SCRIPT.SERVICE_CVS), len(SCRIPT.SERVERS), len(SCRIPT.UTILISATIONS))


@pytest.mark.parametrize("cv, servers, util", [(1.0, 64, 0.9), (0.0, 4, 0.7)])
def test_cells_rerun_to_the_same_figures(cv, servers, util):
    # the same seed and number of arrivals reproduce the row to the six significant digits written
    row = _rows()[f"cv{cv:.2f}-c{servers}-u{util:.2f}"]
    again = SCRIPT.cell(cv, servers, util)
    for column in ("wait_prob_ratio", "wait_mean_factor", "wait_p99_factor", "waits"):
        assert float(row[column]) == pytest.approx(float(again[column]), rel=1e-5), column


@pytest.mark.parametrize("cv", SCRIPT.SERVICE_CVS)
def test_single_server_rows_are_pollaczek_khinchine(cv):
    # M/G/1: P(W > 0) = rho = Erlang C(1, rho), so the ratio is 1; E[W | W > 0] = E[S] (1 + cs^2) / (2 (1 - rho)),
    # i.e. the factor E[W | W > 0] (mu - lambda) is (1 + cs^2) / 2: 0.5 for deterministic service, 1 for cs = 1,
    # 2.5 for cs = 2. Within four batch-means standard errors plus 5 % (the batches are correlated near rho = 1)
    for util in SCRIPT.UTILISATIONS:
        row = _rows()[f"cv{cv:.2f}-c1-u{util:.2f}"]
        assert float(row["wait_prob_ratio"]) == pytest.approx(1.0, abs=4 * float(row["wait_prob_ratio_se"]) + 0.01)
        pk = (1.0 + cv * cv) / 2.0
        tolerance = 4 * float(row["wait_mean_factor_se"]) + 0.05 * pk
        assert float(row["wait_mean_factor"]) == pytest.approx(pk, abs=tolerance)


def test_erlang_c_by_hand():
    # c = 2, a = 1 (rho 0.5): B = (1/2) / (1 + 1 + 1/2) = 0.2, C = B / (1 - rho (1 - B)) = 0.2 / 0.6 = 1/3
    assert SCRIPT.erlang_c(2, 0.5) == pytest.approx(1.0 / 3.0, rel=1e-9)
    assert SCRIPT.erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-9)


def test_interpolation_returns_grid_cells_and_clamps():
    # P(W > 0) / Erlang C (wait_prob_ratio), the tail's decay factor (tail_factor) and the conditional mean factor
    # (wait_mean_factor; the model reads the last two)
    rows = _rows()
    row = rows["cv1.00-c64-u0.90"]
    ratio, factor, mean_factor = _mgc_correction(np.array([1.0]), np.array([64.0]), np.array([0.9]))
    assert ratio[0] == pytest.approx(float(row["wait_prob_ratio"]), rel=1e-9)
    assert factor[0] == pytest.approx(float(row["tail_factor"]), rel=1e-9)
    assert mean_factor[0] == pytest.approx(float(row["wait_mean_factor"]), rel=1e-9)
    # halfway in log2(servers) between 64 and 128: the mean of the two factors, the geometric mean of the ratios
    a, b = rows["cv1.00-c64-u0.90"], rows["cv1.00-c128-u0.90"]
    ratio, factor, _ = _mgc_correction(np.array([1.0]), np.array([64.0 * math.sqrt(2.0)]), np.array([0.9]))
    assert factor[0] == pytest.approx((float(a["tail_factor"]) + float(b["tail_factor"])) / 2, rel=1e-9)
    assert ratio[0] == pytest.approx(math.sqrt(float(a["wait_prob_ratio"]) * float(b["wait_prob_ratio"])), rel=1e-9)
    # beyond the grid: the edge's values (utilisation 0.99 -> 0.95, 4096 servers -> 512, CV 3 -> 2)
    edge = rows["cv2.00-c512-u0.95"]
    ratio, factor, _ = _mgc_correction(np.array([3.0]), np.array([4096.0]), np.array([0.99]))
    assert factor[0] == pytest.approx(float(edge["tail_factor"]), rel=1e-9)


def test_incomplete_table_is_a_catalog_error(tmp_path):
    lines = MGC_CSV.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "queueing_mgc.csv"
    bad.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="complete grid"):
        mgc_grid(str(bad))
