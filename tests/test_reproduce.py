"""`cogflex reproduce`: every figure at reduced size, numbers.json / summary.md, merging, errors."""

from __future__ import annotations

import json

import pytest

from cogflex.cli import main
from cogflex.reproduce import FIGURE_KEYS, figure, reproduce, summary_markdown
from cogflex.reproduce.base import Quantity


def test_quick_reproduction_of_every_figure_writes_pngs_and_numbers(tmp_path, capsys):
    """The CI run of the whole reproduction at reduced settings (all figures, one process)."""
    out = tmp_path / "repro"
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    numbers = json.loads((out / "numbers.json").read_text())
    assert numbers["scale"] == "quick"
    assert list(numbers["figures"]) == list(FIGURE_KEYS)
    for key, fig in numbers["figures"].items():
        assert sorted(out.glob(f"{key}_*.png")), f"{key} wrote no PNG"
        assert fig["quantities"], key
        for q in fig["quantities"]:
            assert q["value"] is not None, (key, q["name"])
    summary = (out / "summary.md").read_text()
    assert all(figure(key).title in summary for key in FIGURE_KEYS)
    assert "checks met" in capsys.readouterr().out


def test_later_runs_keep_other_figures_of_the_same_scale(tmp_path):
    reproduce(["fig8"], out=tmp_path, scale="quick", echo=False)
    numbers = reproduce(["fig2"], out=tmp_path, scale="quick", echo=False)
    assert list(numbers["figures"]) == ["fig2", "fig8"]  # registry order
    on_disk = json.loads((tmp_path / "numbers.json").read_text())
    assert on_disk["figures"].keys() == {"fig2", "fig8"}
    # a run at another scale starts a new record
    (tmp_path / "numbers.json").write_text(json.dumps({**on_disk, "scale": "paper"}))
    numbers = reproduce(["fig8"], out=tmp_path, scale="quick", echo=False)
    assert list(numbers["figures"]) == ["fig8"]


def test_fig2_quick_numbers_are_checked_against_the_reference(tmp_path):
    quantities = {q.name: q for q in figure("fig2").run("quick", tmp_path)}
    assert quantities["flexible_total_alignment"].passed
    assert quantities["forgetful_total_alignment"].passed
    assert (tmp_path / "fig2_flexible_vs_forgetful.png").stat().st_size > 10_000


def test_summary_escapes_pipes_and_formats_values():
    numbers = {"paper": "P", "scale": "quick", "environment": {"torch": "x"},
               "figures": {"fig3": {"title": "T", "seconds": 1.0, "checks_passed": 1, "checks": 2, "quantities": [
                   Quantity("a", 0.123456, "mean |g - h|", reference="<= 0.1", passed=False).to_dict(),
                   Quantity("b", [1.0, float("nan")], "curve", unit="tau_W").to_dict()]}}}
    text = summary_markdown(numbers)
    assert "| mean \\|g - h\\| | <= 0.1 | 0.1235 | **no** |" in text
    assert "[1, n/a] tau_W" in text


@pytest.mark.parametrize(("args", "words"), [
    (["reproduce", "fig9", "--quick"], ["figure", "fig9", "fig2"]),
])
def test_unknown_figure_exits_2_in_one_line(tmp_path, capsys, args, words):
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    for word in words:
        assert word in err
    assert not (tmp_path / "numbers.json").exists()


def test_list_names_every_figure(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in FIGURE_KEYS)
