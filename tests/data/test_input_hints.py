"""Bad input that needs a hint, not only a complaint (issue 17): decimal commas, a lab CSV read as Ebb and Flow,
and very long column names or values, in the API, ``data check``, ``fit`` and ``run`` (exit 2, one line, nothing
written).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cogflex.data import CsvMapping, load_csv, load_trials
from cogflex.errors import ConfigError, DataError, listing, shorten, shown
from tests.data.helpers import assert_one_line_error, cli, map_args

#: A German lab's export: ';'-delimited, decimal commas in RT (ms), onset (s) and age.
COMMA_TEXT = """vp;block;trial;cue;acc;rt;onset;age
p1;1;1;colour;1;612,5;0,25;21,5
p1;1;2;shape;0;734,25;1,75;21,5
p1;1;3;shape;1;;3,5;21,5
p2;1;1;colour;1;701;0,25;34
p2;1;2;colour;1;-1;1,5;34
"""
POINT_TEXT = COMMA_TEXT.replace(",", ".")
COLUMNS = {"participant": "vp", "session": "block", "trial": "trial", "task": "cue", "correct": "acc", "rt": "rt",
           "onset": "onset", "age": "age"}
#: A lab CSV that is not an Ebb and Flow export (some of the Lumosity field names, not most).
LAB_TEXT = """participant,cue,congruency,correct,rt,trial
p1,colour,congruent,1,612,1
p1,shape,incongruent,0,734,2
"""
LONG = "x" * 10_000


@pytest.fixture
def comma_file(tmp_path):
    path = tmp_path / "komma.csv"
    path.write_text(COMMA_TEXT)
    return path


def loaded(path, **options):
    return load_csv(path, CsvMapping(COLUMNS, rt_missing=("-1",), **options))


# -- decimal commas ---------------------------------------------------------------------------------------------


def test_decimal_commas_load_the_numbers_of_the_decimal_point_file(comma_file, tmp_path):
    points = tmp_path / "punkt.csv"
    points.write_text(POINT_TEXT)
    comma, point = loaded(comma_file, decimal=","), loaded(points)
    pd.testing.assert_frame_equal(comma.trials, point.trials)
    assert comma.digest() == point.digest()
    assert comma.trials["rt"].tolist()[:2] == pytest.approx([0.6125, 0.73425])
    assert comma.trials["onset"].tolist()[:3] == pytest.approx([0.25, 1.75, 3.5])
    assert comma.trials["age"].tolist()[0] == pytest.approx(21.5)


def test_decimal_commas_without_the_option_are_one_line_with_the_hint(comma_file, capsys):
    with pytest.raises(DataError) as info:
        loaded(comma_file)
    assert info.value.column == "rt"
    assert "'612,5', '734,25'" in info.value.message
    assert info.value.message.endswith("the values look like decimal commas: pass --decimal ,")
    status, out, err = cli(capsys, "data", "check", comma_file, "--format", "csv", *map_args(COLUMNS),
                           "--rt-missing", "-1")
    assert_one_line_error(status, err, str(comma_file), "column 'rt'", "lines 2, 3", "pass --decimal ,")
    assert out == ""


def test_decimal_option_on_the_command_line_and_in_the_mapping_file(comma_file, tmp_path, capsys):
    status, out, err = cli(capsys, "data", "check", comma_file, "--format", "csv", *map_args(COLUMNS),
                           "--rt-missing", "-1", "--decimal", ",", "--json", tmp_path / "a.json")
    assert status == 0 and err == "" and "5 trials, 2 participants" in out
    mapping = tmp_path / "komma.toml"
    mapping.write_text('decimal = ","\nrt_missing = ["-1"]\n[map]\n'
                       + "".join(f'{k} = "{v}"\n' for k, v in COLUMNS.items()))
    status, out, err = cli(capsys, "data", "check", comma_file, "--format", "csv", "--mapping", mapping,
                           "--json", tmp_path / "b.json")
    assert status == 0 and err == ""
    first, second = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert first["data_sha256"] == second["data_sha256"] == loaded(comma_file, decimal=",").digest()


def test_a_pipeline_reads_decimal_commas_through_its_mapping_file(comma_file, tmp_path):
    from cogflex.pipeline import _load_data, load_pipeline

    (tmp_path / "komma.toml").write_text('decimal = ","\nrt_missing = ["-1"]\n[map]\n'
                                         + "".join(f'{k} = "{v}"\n' for k, v in COLUMNS.items()))
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(f'out = "out"\n[data]\nfile = "{comma_file.name}"\nformat = "csv"\nmapping = "komma.toml"\n'
                        '[fit]\nmodels = ["descriptive", "flexible"]\n')
    assert _load_data(load_pipeline(pipeline)).digest() == loaded(comma_file, decimal=",").digest()


def test_a_point_in_a_decimal_comma_file_is_refused(tmp_path):
    path = tmp_path / "tausend.csv"
    path.write_text(COMMA_TEXT.replace("701", "1.701,5"))
    with pytest.raises(DataError, match=r"line 5 \(value '1.701,5'\); a '\.' in a number with --decimal , "
                                        r"\(a thousands separator\? remove it\)"):
        loaded(path, decimal=",")


def test_a_dataframe_loads_the_same_with_either_decimal_mark(comma_file):
    frame = pd.read_csv(comma_file, sep=";", decimal=",")
    mapping = {"columns": COLUMNS, "rt_missing": ("-1",)}
    want = load_csv(frame, CsvMapping(**mapping)).trials
    for decimal in (".", ","):
        got = load_csv(frame, CsvMapping(**mapping, decimal=decimal)).trials
        pd.testing.assert_frame_equal(got, want)
    as_text = pd.read_csv(comma_file, sep=";", dtype=str)  # cells still '612,5'
    pd.testing.assert_frame_equal(load_csv(as_text, CsvMapping(**mapping, decimal=",")).trials, want)


@pytest.mark.parametrize("decimal", [";", "", "dot", 1])
def test_a_decimal_mark_other_than_point_or_comma_is_a_config_error(decimal, tmp_path, capsys):
    with pytest.raises(ConfigError, match="decimal: must be '.' or ','"):
        CsvMapping(COLUMNS, decimal=decimal)
    mapping = tmp_path / "m.toml"
    mapping.write_text(f"decimal = {json.dumps(decimal)}\n[map]\n" + "".join(f'{k} = "{v}"\n' for k, v in
                                                                           COLUMNS.items()))
    status, _, err = cli(capsys, "data", "check", tmp_path / "any.csv", "--format", "csv", "--mapping", mapping)
    assert_one_line_error(status, err, "decimal: must be")


def test_decimal_option_errors_on_the_command_line(comma_file, capsys):
    status, _, err = cli(capsys, "data", "check", comma_file, "--decimal", ";")
    assert_one_line_error(status, err, "argument --decimal: invalid choice: ';'")
    status, _, err = cli(capsys, "data", "check", comma_file, "--decimal", ",")
    assert_one_line_error(status, err, "--decimal only applies to --format csv")


# -- a lab CSV read as an Ebb and Flow export ---------------------------------------------------------------------


def test_a_lab_csv_without_format_csv_suggests_it(tmp_path, capsys):
    path = tmp_path / "lab.csv"
    path.write_text(LAB_TEXT)
    with pytest.raises(DataError) as info:
        load_trials(path)
    message = str(info.value)
    assert "not an Ebb and Flow export (12 of its 14 fields missing, e.g. user_id, age, game_result_id, ..." in message
    assert "the file has: participant, cue, congruency, correct, rt, trial" in message
    assert "--format csv and a column mapping (--map NAME=COLUMN or --mapping FILE.toml" in message
    status, out, err = cli(capsys, "data", "check", path)
    assert_one_line_error(status, err, str(path), "not an Ebb and Flow export", "--format csv")
    with pytest.raises(DataError, match="the DataFrame has: participant, cue"):
        load_trials(pd.read_csv(path))


def test_an_ebb_and_flow_export_missing_a_field_still_names_it(tmp_path):
    from tests.data.helpers import EBB_HEADER

    path = tmp_path / "ebb.csv"
    path.write_text(EBB_HEADER.replace(",resp_time", "") + "\n1089,54,11,165,1.5,1,0,P,F,D,D,D,T\n")
    with pytest.raises(DataError, match="missing Ebb and Flow field resp_time") as info:
        load_trials(path)
    assert info.value.column == "resp_time" and "--format csv" not in str(info.value)


def test_fit_and_run_on_a_lab_csv_without_format_csv_stop_before_any_output(tmp_path, capsys):
    path = tmp_path / "lab.csv"
    path.write_text(LAB_TEXT)
    status, _, err = cli(capsys, "fit", path, "--model", "descriptive", "--out", tmp_path / "fits", "--quiet")
    assert_one_line_error(status, err, "not an Ebb and Flow export", "--format csv")
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text('out = "out"\n[data]\nfile = "lab.csv"\n[fit]\nmodels = ["descriptive", "flexible"]\n')
    status, _, err = cli(capsys, "run", pipeline, "--quiet")
    assert_one_line_error(status, err, "not an Ebb and Flow export", 'format = "csv"')
    assert not (tmp_path / "fits").exists() and not (tmp_path / "out").exists()


# -- long names and values -----------------------------------------------------------------------------------------


def test_the_message_helpers_cut_long_names():
    assert shorten("rt") == "rt" and shown("rt") == "'rt'"
    assert shown(LONG) == f"'{'x' * 60}...' (10,000 characters)"
    assert shorten(LONG, 5) == "xxxxx... (10,000 characters)"
    assert listing(["a", LONG, "c"]) == f"a, {'x' * 60}... (10,000 characters), c"
    assert listing(range(20), 3) == "0, 1, 2, ... (17 more)"
    assert str(DataError("t.csv", "bad", column=LONG)) == f"t.csv: column {shown(LONG)}: bad"
    assert str(ConfigError(f"map.{LONG}", "bad")) == f"{shorten(f'map.{LONG}')}: bad"


#: Each case: the file's text, a change of the mapping {participant: vp, task: cue, correct: acc, rt: rt} (None:
#: no --format csv) and more arguments of data check.
LONG_CASES = {
    "ebb-and-flow": (f"vp,cue,acc,rt,{LONG}\np1,colour,1,612,1\n", None, []),
    "mapped-column-absent": ("vp,cue,acc,rt\np1,colour,1,612\n", {"rt": LONG}, []),
    "absent-among-long-columns": (f"vp,cue,acc,rt,{LONG}\np1,colour,1,612,1\n", {"rt": "RT"}, []),
    "bad-values": (f"vp,cue,{LONG},rt\np1,colour,maybe,612\n", {"correct": LONG}, []),
    "long-cell": (f"vp,cue,acc,rt\np1,colour,1,{LONG}\n", {}, []),
    "mapped-twice": (f"vp,cue,acc,rt,{LONG}\np1,colour,1,612,1\n", {"stim_a": LONG, "cond_b": LONG}, []),
    "long-option-value": ("vp,cue,acc,rt\np1,colour,1,612\n", {}, ["--rt-unit", LONG]),
    "long-map-item": ("vp,cue,acc,rt\np1,colour,1,612\n", {}, ["--map", LONG]),
    "long-recode": ("vp,cue,acc,rt\np1,colour,1,612\n", {}, ["--recode", f"task={LONG}"]),
}


@pytest.mark.parametrize("case", sorted(LONG_CASES))
def test_errors_quoting_a_10000_character_name_or_value_stay_short(case, tmp_path, capsys):
    text, change, extra = LONG_CASES[case]
    path = tmp_path / "long.csv"
    path.write_text(text)
    args = [] if change is None else ["--format", "csv", *map_args({"participant": "vp", "task": "cue",
                                                                   "correct": "acc", "rt": "rt", **change})]
    status, out, err = cli(capsys, "data", "check", path, *args, *extra)
    line = assert_one_line_error(status, err, "characters)")
    assert len(line) < 500 + len(str(path)), line[:500]


def test_a_long_toml_key_and_a_long_participant_stay_short(tmp_path, capsys):
    path = tmp_path / "lab.csv"
    path.write_text("vp;cue;acc;rt\np1;colour;1;612\np1;shape;1;701\n")
    toml = tmp_path / "m.toml"
    toml.write_text(f'{LONG} = 1\n[map]\nparticipant = "vp"\ntask = "cue"\ncorrect = "acc"\nrt = "rt"\n')
    status, _, err = cli(capsys, "data", "check", path, "--format", "csv", "--mapping", toml)
    assert len(assert_one_line_error(status, err, "unknown key", "characters)")) < 300 + len(str(toml))
    toml.with_name("ok.toml").write_text(toml.read_text().replace(f"{LONG} = 1\n", ""))
    status, _, err = cli(capsys, "fit", path, "--format", "csv", "--mapping", toml.with_name("ok.toml"),
                         "--model", "descriptive", "--participants", LONG, "--out", tmp_path / "fits", "--quiet")
    line = assert_one_line_error(status, err, "participant", "not in the data (present: p1)", "characters)")
    assert len(line) < 300 + len(str(path)) and not (tmp_path / "fits").exists()
