"""The selection function against independent truth: the planted lenses of synthetic regions.

A synthetic region's planted lenses are real lenses of the population the
model was trained on, in the region's own deflectors; the injections must
recover what the scan did to them. Checked on the embedded default region
(``engine scan --survey des_y3 --inject-rate 1``, as a user runs it) and on a
second region with another seed, per bin of Einstein radius and of lensed
source magnitude, overall, for the hosts (never a star) and for the expected
purity the selection function implies.
"""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensfind.intervals import wilson_interval
from lensfind.simulation.region import RegionConfig, make_region
from lensfind.surveys import get_survey
from lensfind.testing import run_cli

#: Bins compared: at least this many planted lenses and injections.
MIN_PLANTED, MIN_INJECTED = 8, 30


def _scan(tmp_path_factory, name: str, *extra: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "run"
    code, text = run_cli("scan", "--survey", "des_y3", "--inject-rate", "1", "--out", str(out),
                         "--quiet", *extra)  # fmt: skip
    assert code == 0, text
    return out


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    return _scan(tmp_path_factory, "embedded")


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> Path:
    """Another region (seed 7, richer in lenses so that its bins hold enough of them)."""
    data = tmp_path_factory.mktemp("region7") / "region"
    make_region(
        data,
        get_survey("des_y3"),
        RegionConfig(tiles_ra=2, tiles_dec=1, tile_px=1800, lens_fraction=0.2, seed=7),
    )
    return _scan(tmp_path_factory, "second", "--data", str(data))  # fmt: skip


def _planted(run: Path) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """The run's summary, the region's scored planted lenses (truth columns) and whether
    each was found (score >= the run's threshold)."""
    summary = json.loads((run / "summary.json").read_text())
    truth = pq.read_table(Path(summary["data_dir"]) / "truth.parquet").to_pydict()
    scores = pa.concat_tables([pq.read_table(f) for f in (run / "scores").glob("*.parquet")])
    by_id = dict(zip(scores["object_id"].to_pylist(), scores["score"].to_pylist(), strict=True))
    lens = np.array(truth["is_lens"], dtype=bool)
    score = np.array([by_id.get(i, np.nan) for i in truth["object_id"]], dtype=float)
    keep = lens & np.isfinite(score)
    lenses = {k: np.asarray(v)[keep] for k, v in truth.items()}
    lenses["score"] = score[keep]
    return summary, lenses, lenses["score"] >= summary["threshold"]


@pytest.mark.parametrize("which", ["embedded", "second"])
@pytest.mark.parametrize("param", ["theta_e_arcsec", "mag_g_source"])
def test_published_completeness_agrees_with_planted_recall_per_bin(which, param, request):
    run = request.getfixturevalue(which)
    _, lenses, found = _planted(run)
    rows = [r for r in pq.read_table(run / "selection_function.parquet").to_pylist()
            if r["parameter"] == param]  # fmt: skip
    last = max(r["hi"] for r in rows)
    compared = 0
    for r in rows:
        v = lenses[param].astype(float)
        inside = (v >= r["lo"]) & ((v < r["hi"]) | ((v == r["hi"]) & (r["hi"] == last)))
        n = int(inside.sum())
        if n < MIN_PLANTED or r["n"] < MIN_INJECTED:
            continue
        k = int(found[inside].sum())
        lo, hi = (float(x[0]) for x in wilson_interval(np.array([k]), np.array([n])))
        assert lo <= r["ci_hi"] and r["ci_lo"] <= hi, (
            f"{param} {r['lo']}-{r['hi']}: planted {k}/{n} [{lo:.3f}, {hi:.3f}] vs published "
            f"{r['completeness']:.3f} [{r['ci_lo']:.3f}, {r['ci_hi']:.3f}] of {r['n']}"
        )
        compared += 1
    assert compared >= 3


@pytest.mark.parametrize("which", ["embedded", "second"])
def test_overall_completeness_is_the_planted_recall(which, request):
    run = request.getfixturevalue(which)
    summary, _, found = _planted(run)
    sel = summary["selection_function"]
    assert 0.9 <= sel["completeness"] / found.mean() <= 1.1
    # the scan's own truth check (synthetic regions) says the same
    check = sel["truth_check"]
    assert check["planted_recall"] == pytest.approx(found.mean())
    assert all(b["overlap"] for p in ("theta_e_arcsec", "mag_g_source") for b in check[p]
               if b["n_planted"] >= MIN_PLANTED and b["n_injected"] >= MIN_INJECTED)  # fmt: skip


@pytest.mark.parametrize("which", ["embedded", "second"])
def test_hosts_are_early_types_never_stars(which, request):
    """The catalogue cuts keep stars out entirely; a red disc passes the colour cut now and
    then, as on the sky (under 2% of the hosts)."""
    run = request.getfixturevalue(which)
    summary = json.loads((run / "summary.json").read_text())
    truth = pq.read_table(Path(summary["data_dir"]) / "truth.parquet").to_pydict()
    kind = dict(zip(truth["object_id"], truth["kind"], strict=True))
    ids = set(pq.read_table(run / "injections.parquet")["object_id"].to_pylist())
    kinds = [kind[i] for i in ids]
    assert "star" not in kinds and "pair" not in kinds
    assert sum(k in ("spiral", "edge_on") for k in kinds) < 0.02 * len(kinds)
    sel = summary["selection_function"]
    assert sel["host_classes"]["star"] > 0
    # --inject-min counts eligible catalogue hosts; those cut off at tile edges get none
    assert sel["n_injected"] >= 0.8 * sel["inject_min"]


def test_embedded_marginals_are_populated_and_the_population_recorded(embedded):
    summary = json.loads((embedded / "summary.json").read_text())
    sel = summary["selection_function"]
    pop = sel["population"]
    assert pop["theta_e_range_arcsec"] == [0.8, 3.0] and pop["min_source_snr"] == 20.0
    assert sel["population_source"] == "model card"
    table = pq.read_table(embedded / "selection_function.parquet")
    meta = json.loads(table.schema.metadata[b"lensfind"])
    assert meta["population"] == pop and "conditional_on" in meta
    theta = [r["n"] for r in table.to_pylist() if r["parameter"] == "theta_e_arcsec" and r["n"]]
    assert min(theta) >= 30
    joint = pq.read_table(embedded / "selection_function_joint.parquet").to_pydict()
    assert sum(joint["n"]) == sel["n_used"]
    assert set(joint["host_class"]) <= {"red_isolated", "unclassified"}


def test_expected_purity_from_the_selection_function_holds_on_the_region(embedded):
    """On the region, with its own lens rate as the prior, the purity the selection function
    expects at the run's threshold brackets the true purity of the candidates."""
    summary, lenses, _ = _planted(embedded)
    row = summary["expected_purity"]["thresholds"][0]
    candidates = pq.read_table(embedded / "candidates.parquet")["object_id"].to_pylist()
    true_purity = float(np.isin(candidates, lenses["object_id"]).mean())
    lo, hi = row["expected_purity_selection_ci"]
    sigma = np.sqrt(true_purity * (1 - true_purity) / len(candidates))
    assert lo - 2 * sigma <= true_purity <= hi + 2 * sigma, (true_purity, lo, hi)
