"""The self-contained HTML report and report.json, and how a headless browser renders the report."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy import ndimage

from cogflex.fit.compare import compare_fits, load_fits
from cogflex.fit.ppc import model_colors
from cogflex.fit.simulate import to_ebb_and_flow
from cogflex.report import write_report
from tests.data.helpers import assert_one_line_error, cli
from tests.pipeline.helpers import quiet_fit

PNG = b"\x89PNG\r\n\x1a\n"
#: Border colours of the comparison and PPC headings (CSS #1b9e77 and #d95f02).
COMPARISON_RGB = (27, 158, 119)
PPC_RGB = (217, 95, 2)


@pytest.fixture(scope="module")
def report(fits, comparison, ppc_table, data, tmp_path_factory):
    """report.html and report.json of the shared fits with posterior predictive checks."""
    out = tmp_path_factory.mktemp("report")
    content = write_report(fits, comparison, out / "report.html", out_json=out / "report.json", ppc=ppc_table,
                           data=data, title="tiny <report> & test", pipeline={"name": "tiny"},
                           ppc_settings={"draws": 4, "seed": 3, "bins": 3})
    return {"html": out / "report.html", "json": out / "report.json", "content": content, "dir": out}


def _images(text: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=[\"']([^\"']*)[\"']", text)


#: comparison figure + one posterior and one prior-vs-posterior figure per model (2 + 2) + PPC figures: pooled
#: and each participant (3) + the LOO-PIT figure (1).
EXPECTED_IMAGES = 1 + 2 + 2 + 3 + 1


def test_html_is_self_contained(report):
    """No network references: no http(s) src/href, no external scripts or stylesheets; images are PNG data URIs."""
    text = report["html"].read_text(encoding="utf-8")
    for attr, value in re.findall(r"\b(src|href)\s*=\s*[\"']([^\"']*)[\"']", text, flags=re.I):
        assert not value.lower().startswith(("http://", "https://", "//")), (attr, value[:80])
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, flags=re.I)
    assert not re.search(r"<link[^>]*rel\s*=\s*[\"']?stylesheet", text, flags=re.I)
    assert "@import" not in text and "url(" not in text
    images = _images(text)
    assert len(images) == EXPECTED_IMAGES == text.count("<img")
    for src in images:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw[:8] == PNG and len(raw) > 2000


def test_html_sections_and_symbols(report, fits):
    """Section ids, coloured heading borders, escaped title, the paper's tau symbol and every model's name."""
    text = report["html"].read_text(encoding="utf-8")
    for section in ("comparison", "ppc", "models", "data", "reproducibility"):
        assert re.search(rf"<h2 id=[\"']{section}[\"']>", text), section
        assert f"href='#{section}'" in text or f'href="#{section}"' in text
    assert re.search(r"h2#comparison\{[^}]*#1b9e77", text) and re.search(r"h2#ppc\{[^}]*#d95f02", text)
    assert "<title>tiny &lt;report&gt; &amp; test</title>" in text and "<report>" not in text
    assert "&tau;<sub>c</sub>" in text  # the forgetful timescale row: tau = tau_c = tau_W
    for model in fits.models:
        assert f"<h3>{model}</h3>" in text
    assert "No posterior predictive checks" not in text


def test_report_json(report, comparison, fits, data):
    """report.json: the documented keys, one winner per participant and pooled, values from the fits."""
    content = json.loads(report["json"].read_text())
    assert {"title", "data", "models", "comparison", "ppc", "software", "pipeline"} <= set(content)
    assert content == json.loads(json.dumps(report["content"]))
    winners = content["comparison"]["winners"]
    assert set(winners) == {"all", "sim01", "sim02"}
    t = comparison.table
    for pid, w in winners.items():
        assert w["model"] == t[(t["participant"] == pid) & (t["rank"] == 0)]["model"].item()
    assert len(content["comparison"]["pooled"]) == 2 and len(content["comparison"]["per_participant"]) == 4
    assert set(content["models"]) == set(fits.models)
    assert content["data"]["participants"] == ["sim01", "sim02"]
    assert content["data"]["n_trials_in_file"] == len(data.trials)
    assert content["data"]["data_digest"] == fits.attrs["data_digest"]
    assert content["ppc"]["settings"]["draws"] == 4 and len(content["ppc"]["table"]) > 50
    assert content["pipeline"] == {"name": "tiny"}
    assert content["software"]["python"] and content["software"]["arviz"] != "not installed"
    # the posterior summary is the fit's own posterior
    tree = fits.trees["tiny-forgetful"]
    mean = float(tree["posterior"]["timescale"].sel(participant="sim02").mean())
    got = content["models"]["tiny-forgetful"]["parameters"]["timescale"]["sim02"]["mean"]
    assert got == pytest.approx(mean, rel=1e-6)
    assert content["models"]["tiny-forgetful"]["sampler"]["draws"] == 60


def _model_section(text: str, model: str) -> str:
    """The HTML of one model's section (from its heading to the next model's or the data section)."""
    start = text.index(f"<h3>{model}</h3>")
    ends = [i for i in (text.find("<h3>", start + 1), text.find("<h2 id='data'>", start)) if i > 0]
    return text[start:min(ends)]


def test_grid_refinement_table_per_network_model(report, fits):
    """The network fit's refined windows and its errors before/after are listed per participant (and in JSON);
    the descriptive model has none."""
    text = report["html"].read_text(encoding="utf-8")
    content = json.loads(report["json"].read_text())
    tree = fits.trees["tiny-forgetful"]
    records = json.loads(tree.attrs["grid_refinement"])
    final = {c["participant"]: c["difference"] for c in json.loads(tree.attrs["interpolation_check"])}
    rows = content["models"]["tiny-forgetful"]["grid_refinement"]
    assert [r["participant"] for r in rows] == [r["participant"] for r in records] == ["sim01", "sim02"]
    for row, record in zip(rows, records):
        lo, hi = record["window"]["values"]["timescale"]
        assert row["window"] == f"timescale {lo:.4g}–{hi:.4g}"
        assert row["whole_box_error"] == record["rounds"][0]["pilot_error"]
        assert row["final_error"] == final[row["participant"]] and row["rounds"] == len(record["rounds"]) - 1
    section = _model_section(text, "tiny-forgetful")
    assert "Network grid refined around each participant's posterior" in section
    assert html.escape(rows[0]["window"]) in section
    assert content["models"]["tiny-descriptive"]["grid_refinement"] == []
    assert "Network grid refined" not in _model_section(text, "tiny-descriptive")


def test_prior_vs_posterior_overlay_per_model(report, fits):
    """Every model has its prior-vs-posterior figure (a PNG) with a caption, and the weak parameters recorded by
    its fit are in report.json and spelled out next to that figure (not among the sampling warnings above)."""
    from cogflex.fit.checks import weak_warnings

    text = report["html"].read_text(encoding="utf-8")
    content = json.loads(report["json"].read_text())
    for model, tree in fits.trees.items():
        section = _model_section(text, model)
        heading = section.index(f"<h4 id='prior-{model}'>Prior vs posterior</h4>")
        overlay = section[heading:]
        image = re.search(rf"<img src=\"([^\"]*)\" alt=\"prior vs posterior of {model}\">", overlay)
        assert image, model
        raw = base64.b64decode(image.group(1).split(",", 1)[1], validate=True)
        assert raw[:8] == PNG and len(raw) > 10_000
        assert "prior density (grey)" in overlay and "log<sub>10</sub>" in overlay
        weak = json.loads(tree.attrs["weak_parameters"])
        assert content["models"][model]["weak_parameters"] == weak
        assert content["models"][model]["prior_overlay"]["participants"] == ["sim01", "sim02"]
        lines = weak_warnings(weak)
        for line in lines:
            assert html.escape(line) in overlay and html.escape(line) not in section[:heading]
        if lines:
            assert f"href='#prior-{model}'" in section[:heading]
        else:
            assert "Every posterior drawn moved away from its prior" in overlay
    descriptive = _model_section(text, "tiny-descriptive")
    assert "Coefficient blocks (rt_coefficient, acc_coefficient) are not drawn" in descriptive
    assert "Coefficient blocks" not in _model_section(text, "tiny-forgetful")
    assert content["models"]["tiny-descriptive"]["prior_overlay"]["not_drawn"] == ["rt_coefficient",
                                                                                   "acc_coefficient"]


def test_loo_pit_section(report, fits):
    """Every model's LOO-PIT calibration: its figure, and a summary row computed from the fit's values."""
    from cogflex.report_figures import loo_pit_summary

    text = report["html"].read_text(encoding="utf-8")
    assert "<h3>Calibration of the RT predictions (LOO-PIT)</h3>" in text and "alt='LOO-PIT" in text.replace('"', "'")
    summary = report["content"]["loo_pit"]
    assert set(summary) == set(fits.models)
    for name, tree in fits.trees.items():
        assert summary[name] == pytest.approx(loo_pit_summary(tree["loo_pit"]["rt"].values))
        assert summary[name]["n"] == tree["log_likelihood"]["trial"].sizes["observation"]
    assert "LOO-PIT" in " ".join(report["content"]["methods"])


def test_loo_pit_summary_tells_calibrated_from_miscalibrated():
    from cogflex.report_figures import loo_pit_summary

    rng = np.random.default_rng(0)
    uniform = loo_pit_summary(rng.uniform(size=4000))
    assert uniform["ks"] < uniform["band"] and uniform["below_5"] == pytest.approx(0.05, abs=0.015)
    narrow = loo_pit_summary(rng.beta(0.5, 0.5, size=4000))  # predictive distributions too narrow: a U
    assert narrow["ks"] > 3 * narrow["band"] and narrow["below_5"] > 0.1 and narrow["above_95"] > 0.1
    slow = loo_pit_summary(rng.beta(1.0, 2.0, size=4000))  # observed RTs low in their predictions: too slow
    assert slow["ks"] > 3 * slow["band"] and slow["below_5"] > slow["above_95"]


def test_report_without_checks_says_why(fits, comparison, tmp_path):
    """Without a PPC table the report has no PPC figures and gives the reason."""
    content = write_report(fits, comparison, tmp_path / "r.html", ppc=None, ppc_note="no data file given")
    text = (tmp_path / "r.html").read_text()
    assert "No posterior predictive checks: no data file given" in text
    assert len(_images(text)) == EXPECTED_IMAGES - 3
    assert content["ppc"]["table"] is None and not (tmp_path / "r.json").exists()


# -- headless browser -------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found is None:
        if os.environ.get("COGFLEX_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium not installed but COGFLEX_REQUIRE_BROWSER=1")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


def _browser(args: list[str], tmp_path, name: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=120)


def test_browser_renders_the_report(report, tmp_path):
    """Chromium shows both coloured headings and the embedded figures (screenshot), and the DOM has every image."""
    import matplotlib.image as mpimg

    url = report["html"].resolve().as_uri()
    shot = tmp_path / "shot.png"
    done = _browser(["--window-size=1280,6000", f"--screenshot={shot}", url], tmp_path, "shot")
    assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]
    print(f"report screenshot: {shot}")
    pixels = mpimg.imread(shot)
    rgb = np.round(pixels[..., :3] * (255 if pixels.dtype.kind == "f" else 1)).astype(int)
    assert rgb.shape[:2] == (6000, 1280)
    for colour in (COMPARISON_RGB, PPC_RGB):
        assert (rgb == colour).all(axis=-1).sum() >= 100, f"no heading border of colour {colour}"
    # the figures: large non-white regions (a figure is ~1130 x 650 px; without images the largest region, a
    # table, spans ~155,000 px) and pixels of exactly the models' plot colours, which no text or table uses
    regions, _ = ndimage.label(rgb.min(axis=-1) < 240)
    areas = [(r.stop - r.start) * (c.stop - c.start) for r, c in ndimage.find_objects(regions)]
    assert sum(a > 400_000 for a in areas) >= 3, sorted(areas)[-5:]
    for model, colour in model_colors(list(report["content"]["models"])).items():
        exact = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert (rgb == exact).all(axis=-1).sum() > 500, f"{model}'s colour {colour} not on screen"

    dom = _browser(["--dump-dom", url], tmp_path, "dom").stdout.decode("utf-8", errors="replace")
    assert re.search(r"<h2 id=\"comparison\">Model comparison</h2>", dom)
    assert re.search(r"<h2 id=\"ppc\">Posterior predictive checks</h2>", dom)
    assert len(re.findall(r"<img\b", dom)) == EXPECTED_IMAGES
    assert all(src.startswith("data:image/png;base64,") for src in _images(dom))


def test_model_colours_agree_between_figures(comparison, ppc_table):
    """Each model has the same colour in the comparison figure and in the PPC figures (legends match)."""
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    from cogflex.fit.ppc import plot_ppc
    from cogflex.report import _comparison_figure

    def colours(fig):
        out = {}
        for ax in fig.axes:
            handles, labels = ax.get_legend_handles_labels()
            for h, label in zip(handles, labels):
                artist = h.lines[0] if hasattr(h, "lines") else h
                if not label.startswith("observed"):
                    out[label] = mcolors.to_hex(artist.get_color())
        plt.close(fig)
        return out

    cmp = colours(_comparison_figure(comparison))
    ppc = colours(plot_ppc(ppc_table, "all"))
    assert set(cmp) == set(ppc) == set(comparison.table["model"])
    assert cmp == ppc
    assert len(set(cmp.values())) == len(cmp)


def test_cli_report(fit_files, trial_file, tmp_path, capsys):
    """`cogflex report FIT... --data FILE --ppc-draws 2`: report.html, report.json and comparison.csv side by side."""
    out = tmp_path / "r" / "report.html"
    status, stdout, err = cli(capsys, "report", fit_files["forgetful"], fit_files["descriptive"], "--out", out,
                              "--data", trial_file, "--ppc-draws", "2", "--title", "cli report", "--quiet")
    assert status == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["comparison.csv", "comparison_pairwise.csv", "report.html",
                                                            "report.json"]
    content = json.loads(out.with_suffix(".json").read_text())
    assert content["title"] == "cli report" and content["ppc"]["settings"]["draws"] == 2
    assert {r["model"] for r in content["ppc"]["table"]} == {"tiny-forgetful", "tiny-descriptive"}
    assert max(r["replications"] for r in content["ppc"]["table"]) == 2
    assert len(_images(out.read_text())) == EXPECTED_IMAGES
    assert f"wrote {out}" in stdout


def test_cli_report_with_other_data_is_one_line(fit_files, data, tmp_path, capsys):
    """`cogflex report --data` with a file the models were not fitted to: exit 2, one line, nothing written."""
    trials = data.trials.copy()
    trials.loc[3, "rt"] = trials.loc[3, "rt"] + 0.1
    other = tmp_path / "other.csv"
    to_ebb_and_flow(data.with_trials(trials)).to_csv(other, index=False)
    out = tmp_path / "r" / "report.html"
    status, _, err = cli(capsys, "report", fit_files["forgetful"], fit_files["descriptive"], "--out", out,
                         "--data", other, "--ppc-draws", "2", "--quiet")
    assert_one_line_error(status, err, "other data", "other.csv")
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_grid_cautions_flag_leads_within_the_interpolation_error():
    """A lead is flagged when correcting it by both fits' grid errors leaves less than 2 SE; otherwise not."""
    from cogflex.report import _grid_cautions

    pair = [{"participant": "p1", "model_a": "flexible", "model_b": "forgetful", "elpd_diff": -10.0, "se": 3.0}]
    # forgetful leads by 10 but its interpolated likelihood is 20 too high: corrected lead -10 -> flagged
    flagged = _grid_cautions(pair, {"forgetful": {"p1": -20.0}, "flexible": {"p1": 0.0}}, ["p1"])
    assert len(flagged) == 1 and flagged[0]["model"] == "forgetful" and flagged[0]["other"] == "flexible"
    assert flagged[0]["corrected_elpd_diff"] == pytest.approx(-10.0)
    # the loser's grid flatters it instead: the lead only grows -> not flagged
    assert _grid_cautions(pair, {"flexible": {"p1": -20.0}}, ["p1"]) == []
    # no interpolation (descriptive models) -> nothing to say
    assert _grid_cautions(pair, {}, ["p1"]) == []
    # a lead within 2 SE is undecided anyway: not flagged again
    close = [dict(pair[0], se=6.0)]
    assert _grid_cautions(close, {"forgetful": {"p1": -20.0}}, ["p1"]) == []
    # pooled rows sum the participants' errors
    pooled = [dict(pair[0], participant="all", elpd_diff=-30.0, se=5.0)]
    errors = {"forgetful": {"p1": -12.0, "p2": -12.0}}
    assert _grid_cautions(pooled, errors, ["p1", "p2"])[0]["corrected_elpd_diff"] == pytest.approx(6.0)


def test_hierarchical_fits_show_their_group_level(data, model_files, tmp_path):
    """A report of hierarchical fits says so per model and lists the group-level parameters with intervals."""
    fits_dir = tmp_path / "fits"
    for variant in ("forgetful", "descriptive"):
        quiet_fit(data, model_files[variant], fits_dir, draws=20, tune=20, hierarchical=True)
    fits = load_fits([fits_dir])
    content = write_report(fits, compare_fits(fits), tmp_path / "r.html", out_json=tmp_path / "r.json", ppc=None,
                           ppc_note="not requested")
    html = (tmp_path / "r.html").read_text()
    forgetful = _model_section(html, "tiny-forgetful")
    assert "hierarchical;" in forgetful and "Group level (hierarchical fit)" in forgetful
    for name in ("timescale_mu", "timescale_sd", "timescale_median", "rt_sigma_logmu", "rt_shift_logitmu"):
        assert f"<td>{name}</td>" in forgetful, name
    group = content["models"]["tiny-forgetful"]["group"]
    assert group["timescale_median"]["low_94"] <= group["timescale_median"]["high_94"]
    assert "Group level" in _model_section(html, "tiny-descriptive")  # link parameters have a group level too
    # trace and rank plots of the group level, one pair per model, embedded PNGs
    for model in ("tiny-forgetful", "tiny-descriptive"):
        section = _model_section(html, model)
        for kind in ("traces", "rank plots"):
            tag = re.search(rf'<img src="data:image/png;base64,([^"]+)" alt="group-level {kind} of {model}">', section)
            assert tag is not None and base64.b64decode(tag.group(1))[:8] == b"\x89PNG\r\n\x1a\n", (model, kind)


@pytest.mark.parametrize(("lo", "hi"), [(0.5, 8), (20, 500), (225, 257), (0.3, 30), (1, 1000), (1e-3, 1e6)])
def test_log_axes_of_the_forest_plot_have_few_short_labels(lo, hi):
    """Log-scaled tau axes: 2-4 labels inside the range, short enough not to overlap in a 3.3-inch panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cogflex.report import _log_ticks

    fig, ax = plt.subplots(figsize=(3.3, 1))
    ax.plot([lo, hi], [0, 0])
    _log_ticks(ax)
    ax.tick_params(labelsize=7)
    fig.canvas.draw()
    x0, x1 = ax.get_xlim()
    shown = [(t.get_position()[0], t) for t in ax.get_xticklabels() if t.get_text() and x0 <= t.get_position()[0] <= x1]
    assert 2 <= len(shown) <= 4 and all(len(t.get_text()) <= 6 for _, t in shown)
    boxes = sorted((t.get_window_extent() for _, t in shown), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))  # no two labels overlap
    plt.close(fig)


def test_methods_paragraph_is_written_from_the_fits(report, fits):
    """The Methods section states the data, each model's priors, sampler settings and diagnostics, the comparison
    rule, the software versions and the references, all read from the fits."""
    content, text = report["content"], report["html"].read_text()
    methods = content["methods"]
    joined = " ".join(methods)
    assert "<h2 id='methods'>" in text and html.escape(methods[0], quote=True) in text
    assert f"{content['data']['n_trials_fitted']:,} trials" in methods[0]
    for name in fits.trees:
        para = next(p for p in methods if p.startswith(f"Model '{name}'"))
        s = content["models"][name]["sampler"]
        assert f"{s['chains']} chains of {s['draws']} draws after {s['tune']} tuning steps" in para
        assert f"{content['models'][name]['diagnostics_overall']['divergences']} divergent" in para
        assert "rt_sigma ~" in para  # the priors, as in the priors table
    assert "PSIS-LOO" in joined and "stacking" in joined and "leave-one-trial-out" in joined
    assert f"pymc {content['software']['pymc']}" in joined
    for cited in ("Sandbrink", "Abril-Pla", "Kumar", "Vehtari", "Yao", "Hoffman"):
        assert cited in methods[-1]


def test_synthetic_data_with_known_parameters_get_estimated_vs_true(fits, comparison, trial_file, tmp_path):
    """A params.json next to the data file (as simulate-data writes it): estimated vs true per model."""
    from cogflex.data import load_trials

    copy = tmp_path / "sim.csv"
    shutil.copyfile(trial_file, copy)
    truth = {"sim01": 7.0, "sim02": 20.0}
    (tmp_path / "sim.params.json").write_text(json.dumps({"model": "tiny-forgetful", "parameters": {
        "timescale": truth, "rt_sigma": {"sim01": 0.3, "sim02": 0.3}, "not_fitted": {"sim01": 1.0}}}))
    content = write_report(fits, comparison, tmp_path / "r.html", ppc=None, ppc_note="not requested",
                           data=load_trials(copy, "ebb-and-flow"))
    t = content["models"]["tiny-forgetful"]["truth"]
    assert t["generating_model"] == "tiny-forgetful" and t["file"].endswith("sim.params.json")
    rows = {r["parameter"]: r for r in t["summary"]}
    assert set(rows) == {"timescale", "rt_sigma"} and rows["timescale"]["participants"] == 2
    post = content["models"]["tiny-forgetful"]["parameters"]["timescale"]
    covered = [post[p]["low_94"] <= v <= post[p]["high_94"] for p, v in truth.items()]
    assert rows["timescale"]["coverage_94"] == pytest.approx(np.mean(covered))
    section = _model_section((tmp_path / "r.html").read_text(), "tiny-forgetful")
    assert "Estimated vs true" in section and 'alt="estimated vs true, tiny-forgetful"' in section
    # the descriptive model shares rt_sigma with the truth file: compared too; no params file, no section
    assert {r["parameter"] for r in content["models"]["tiny-descriptive"]["truth"]["summary"]} == {"rt_sigma"}
    plain = write_report(fits, comparison, tmp_path / "p.html", ppc=None, ppc_note="not requested")
    assert all(m["truth"] is None for m in plain["models"].values())
