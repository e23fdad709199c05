"""``load_trials(df, ...)``: a pandas DataFrame loads exactly as the file it was read from (table and data hash)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cogflex.data import CsvMapping, load_csv, load_ebb_and_flow, load_trials
from cogflex.errors import ConfigError, DataError
from cogflex.resources import data_path
from tests.data.helpers import (
    JSPSYCH,
    JSPSYCH_MAP,
    JSPSYCH_RECODE,
    LAB,
    LAB_MAP,
    LAB_RECODE,
    PSYCHOPY,
    PSYCHOPY_MAP,
    cli,
    map_args,
)

PLAYERS = data_path("synthetic/flexible_players.csv.gz")

#: A small lab CSV with what pandas' type inference changes: numeric ids, a 0/1 column with a blank cell (read as
#: floats), true/false text (read as booleans), RTs with decimals and -1 for "no response".
LAB_TEXT = ("subject,block,trial,cue,acc,hit,rt_ms,key\n"
            "7,1,1,colour,1,true,612.25,1\n"
            "7,1,2,shape,0,false,845,2\n"
            "7,1,3,shape,,true,-1,\n"
            "7,1,4,colour,1,true,701.5,1\n"
            "12,1,1,shape,1,false,655,2\n"
            "12,1,2,shape,1,true,590.125,2\n")
LAB_COLUMNS = {"participant": "subject", "session": "block", "trial": "trial", "task": "cue", "correct": "acc",
               "rt": "rt_ms", "practice": "hit", "response": "key"}


def assert_same(from_file, from_frame) -> None:
    """Same trial table (values, dtypes, categories, lines) and the same data hash."""
    assert from_frame.trials.equals(from_file.trials)
    assert from_frame.trials.dtypes.equals(from_file.trials.dtypes)
    for name in from_file.trials.select_dtypes("category"):
        assert list(from_frame.trials[name].cat.categories) == list(from_file.trials[name].cat.categories), name
    assert from_frame.digest() == from_file.digest()
    assert from_frame.format == from_file.format


@pytest.fixture(scope="module")
def players():
    return load_trials(PLAYERS)


@pytest.fixture
def lab_csv(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text(LAB_TEXT)
    return path


# -- the same table and digest as the file -----------------------------------------------------------------


def test_ebb_and_flow_frame_equals_its_file(players):
    frame = pd.read_csv(PLAYERS)
    data = load_trials(frame)
    assert_same(players, data)
    assert data.source == "<DataFrame 5040 rows>" and str(PLAYERS) == players.source
    assert data.notes == players.notes
    assert data.trials["line"].tolist() == players.trials["line"].tolist()  # the file's own lines


def test_ebb_and_flow_frame_read_as_text_equals_its_file(players):
    assert_same(players, load_trials(pd.read_csv(PLAYERS, dtype=str), "ebb-and-flow"))
    assert_same(players, load_ebb_and_flow(pd.read_csv(PLAYERS)))


def test_frame_with_another_index_loads_the_same(players):
    frame = pd.read_csv(PLAYERS)
    frame.index = [f"row{i}" for i in range(len(frame))]
    assert_same(players, load_trials(frame))


def test_loading_leaves_the_frame_untouched():
    frame = pd.read_csv(PLAYERS)
    before = frame.copy()
    load_trials(frame)
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(("path", "mapping", "sep"), [
    (PSYCHOPY, CsvMapping(PSYCHOPY_MAP, rt_unit="s"), ","),
    (JSPSYCH, CsvMapping(JSPSYCH_MAP, recode=JSPSYCH_RECODE), ","),
    (LAB, CsvMapping(LAB_MAP, recode=LAB_RECODE, rt_missing=("-1",), delimiter=";"), ";"),
], ids=["psychopy", "jspsych", "lab"])
def test_lab_frame_equals_its_file(path, mapping, sep):
    from_file = load_trials(path, "csv", mapping=mapping)
    from_frame = load_trials(pd.read_csv(path, sep=sep), "csv", mapping=mapping)
    assert_same(from_file, from_frame)
    assert from_frame.source.startswith("<DataFrame ") and from_frame.n_trials == from_file.n_trials


def test_inferred_dtypes_load_as_the_file_text(lab_csv):
    frame = pd.read_csv(lab_csv)
    assert frame["subject"].dtype == "int64" and frame["acc"].dtype == "float64" and frame["hit"].dtype == "bool"
    assert frame["rt_ms"].dtype == "float64" and frame["key"].dtype == "float64"
    # recodes and rt_missing name the file's text; the frame's 1.0, True and -1.0 must match them
    mapping = CsvMapping(LAB_COLUMNS, recode={"correct": {"1": True, "0": False}, "practice": {"true": True,
                                                                                               "false": False}},
                         rt_missing=("-1",))
    from_file = load_csv(lab_csv, mapping)
    from_frame = load_csv(frame, mapping)
    assert_same(from_file, from_frame)
    t = from_frame.trials
    assert t["participant"].cat.categories.tolist() == ["7", "12"]
    assert t["response"].cat.categories.tolist() == ["1", "2"]  # not "1.0", "2.0"
    assert t["rt"].isna().tolist() == [False, False, True, False, False, False]
    assert t["rt"].iloc[0] == 0.61225 and t["correct"].tolist()[:3] == [True, False, pd.NA]


def test_dict_mapping_is_the_map_flags(tmp_path, capsys):
    path = tmp_path / "lab.csv"
    path.write_text(LAB_TEXT.replace(",-1,", ",,"))  # no recodes with a plain dict: no -1 codes
    frame = pd.read_csv(path)
    with_dict = load_trials(frame, "csv", mapping=LAB_COLUMNS | {"rt": " rt_ms "})  # stripped, as --map is
    flags = map_args(LAB_COLUMNS)[1::2]  # what argparse collects from the --map flags
    assert_same(load_trials(path, "csv", mapping=CsvMapping.from_args(flags)), with_dict)
    assert_same(load_trials(path, "csv", mapping=CsvMapping(LAB_COLUMNS)), load_csv(frame, LAB_COLUMNS))
    # the data hash the command line reports for the file is the frame's
    status, _, err = cli(capsys, "data", "check", path, "--format", "csv", *map_args(LAB_COLUMNS),
                         "--json", tmp_path / "check.json")
    assert status == 0, err
    assert json.loads((tmp_path / "check.json").read_text())["data_sha256"] == with_dict.digest()


def test_dict_mapping_is_checked_like_map_flags():
    frame = pd.read_csv(PSYCHOPY)
    with pytest.raises(ConfigError, match="map.rt"):
        load_trials(frame, "csv", mapping={"participant": "participant", "task": "cue", "correct": "key_resp.corr"})
    with pytest.raises(ConfigError, match="map.nonsense"):
        load_trials(frame, "csv", mapping=PSYCHOPY_MAP | {"nonsense": "cue"})
    with pytest.raises(ConfigError, match="map.rt: expected a column name"):
        load_trials(frame, "csv", mapping=PSYCHOPY_MAP | {"rt": 3})
    with pytest.raises(ConfigError, match="fixed fields"):
        load_trials(frame, mapping=PSYCHOPY_MAP)


# -- errors name the DataFrame, the column and the index label -----------------------------------------------


def test_missing_ebb_and_flow_column_is_named():
    frame = pd.read_csv(PLAYERS).drop(columns="resp_time")
    with pytest.raises(DataError) as info:
        load_trials(frame)
    assert info.value.column == "resp_time" and info.value.source == "<DataFrame 5040 rows>"
    assert str(info.value).startswith("<DataFrame 5040 rows>: column 'resp_time': missing Ebb and Flow field")


def test_missing_mapped_column_is_named(lab_csv):
    frame = pd.read_csv(lab_csv).drop(columns="cue")
    with pytest.raises(DataError, match=r"mapped column not in the DataFrame: task=cue \(the DataFrame has: subject,"
                       ) as info:
        load_trials(frame, "csv", mapping=LAB_COLUMNS)
    assert info.value.column == "cue"


def test_bad_value_names_the_index_label():
    frame = pd.read_csv(PLAYERS, dtype={"task_cue": object})
    frame.index = frame.index + 100
    frame.loc[[107, 109], "task_cue"] = "X"
    with pytest.raises(DataError) as info:
        load_trials(frame)
    assert info.value.column == "task_cue"
    assert "unknown codes (expected P, M): 2 rows, first at index 107, 109 (values 'X', 'X')" in str(info.value)
    labelled = pd.read_csv(PLAYERS)
    labelled.index = [f"t{i}" for i in range(len(labelled))]
    labelled.loc["t3", "resp_time"] = -5
    with pytest.raises(DataError, match=r"column 'resp_time': negative or infinite response times: 1 row, first at "
                                        r"index 't3' \(value -5\)"):
        load_trials(labelled)


def test_bad_value_in_a_file_and_its_frame(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(LAB_TEXT.replace("7,1,4,colour,1", "7,1,4,colour,maybe"))
    with pytest.raises(DataError, match=r"bad.csv: column 'acc': unknown codes .* 1 row, first at line 5 "):
        load_trials(path, "csv", mapping=LAB_COLUMNS)
    with pytest.raises(DataError, match=r"^<DataFrame 6 rows>: column 'acc': unknown codes .* 1 row, first at index 3 "
                                        r"\(value 'maybe'\)"):
        load_trials(pd.read_csv(path), "csv", mapping=LAB_COLUMNS)


def test_schema_errors_name_index_labels():
    frame = pd.read_csv(PLAYERS)
    frame.loc[5, "trial"] = 4  # trial 4 twice in one session: rows 3 and 5
    with pytest.raises(DataError, match=r"column 'trial': duplicate \(participant, session, trial\): 2 rows, first "
                                        r"at index 3, 5 \(values 4, 4\)"):
        load_trials(frame)


def test_notes_name_index_labels():
    frame = pd.read_csv(JSPSYCH)
    frame.index = frame.index + 1000
    data = load_trials(frame, "csv", mapping=CsvMapping(JSPSYCH_MAP, recode=JSPSYCH_RECODE))
    assert any("the DataFrame's switch column 'switch_type' disagrees" in n and "first at index 1017, 1080" in n
               for n in data.notes), data.notes


def test_empty_frame_and_duplicate_columns():
    frame = pd.read_csv(PLAYERS)
    with pytest.raises(DataError, match=r"<DataFrame 0 rows>: no trials"):
        load_trials(frame.iloc[:0])
    twice = pd.concat([frame, frame[["trial"]]], axis=1)
    with pytest.raises(DataError, match="column 'trial': more than one column of this name") as info:
        load_trials(twice)
    assert info.value.column == "trial"


@pytest.mark.parametrize("data", [[{"user_id": "a"}], {"user_id": ["a"]}, 42, None,
                                  pd.Series([1, 2], name="user_id")], ids=["records", "dict", "int", "none", "series"])
def test_neither_a_path_nor_a_frame_is_a_type_error(data):
    with pytest.raises(TypeError, match=r"data must be a path to a trial file \(str or os.PathLike\) or a pandas "
                                        r"DataFrame, got " + type(data).__name__):
        load_trials(data)


def test_mapping_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="mapping must be a CsvMapping or a dict"):
        load_trials(pd.read_csv(PSYCHOPY), "csv", mapping=[("participant", "participant")])
