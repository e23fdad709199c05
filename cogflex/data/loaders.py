"""Read trial files into the canonical schema: Lumosity Ebb and Flow exports and any lab CSV.

A pandas DataFrame of the same columns goes through the same checks and
derivations as the file it could have been read from. Every problem is
reported as a :class:`~cogflex.errors.DataError` whose message names the file
(or ``<DataFrame N rows>``), the column and the first offending lines (of a
DataFrame: index labels); nothing is dropped or fixed silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cogflex.data.dataset import TrialData, natural_sorted
from cogflex.data.raw import Raw, named_rows, raw_table, wrong_delimiter
from cogflex.data.schema import column_kind, derive, is_known, offending_lines, ordered, validate
from cogflex.errors import ConfigError, DataError, listing, shown
from cogflex.typed_config import read_toml

__all__ = ["CsvMapping", "load_trials", "load_ebb_and_flow", "load_csv", "EBB_AND_FLOW_FIELDS", "FORMATS"]

FORMATS = ("ebb-and-flow", "csv")

#: Fields of the Lumosity Ebb and Flow export (one row per trial).
EBB_AND_FLOW_FIELDS = ("user_id", "age", "game_result_id", "nth_master", "timestamp_rel_days", "trial",
                       "time_offset", "task_cue", "switch", "point_dir", "mv_dir", "resp_dir", "correct", "resp_time")
_DIRECTIONS = ("U", "D", "L", "R")
_TRUE = {"true", "t", "1", "1.0", "yes", "y", "correct", "hit", "right"}
_FALSE = {"false", "f", "0", "0.0", "no", "n", "error", "incorrect", "miss", "wrong"}


@dataclass(frozen=True)
class CsvMapping:
    """How the columns of a lab's CSV map onto cogflex's trial schema.

    Parameters
    ----------
    columns
        Schema column -> file column, e.g. ``{"participant": "subject",
        "task": "taskCue", "rt": "RT", "correct": "acc"}``. ``participant``,
        ``task``, ``correct`` and ``rt`` are required; ``session`` defaults to
        one session per participant and ``trial`` to the file order.
    rt_unit
        Unit of the RT column, ``"ms"`` or ``"s"``.
    recode
        Schema column -> {file value: value}, e.g. ``{"correct": {"1": True,
        "0": False}, "task": {"c": "colour", "s": "shape"}}``. When a column is
        recoded, every file value must be listed.
    rt_missing
        File values of the RT column that mean "no response" (e.g. ``"-1"``).
    encoding
        Text encoding of the file.
    delimiter
        Field delimiter; ``None`` detects it from the header.
    decimal
        Decimal mark of the numbers in the file, ``"."`` (default) or ``","`` (``0,734``: files saved with a
        German or French locale, usually ``;``-delimited). With ``","`` a ``.`` in a number is an error (it
        could be a thousands separator).
    """

    columns: Mapping[str, str]
    rt_unit: Literal["ms", "s"] = "ms"
    recode: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    rt_missing: tuple[str, ...] = ()
    encoding: str = "utf-8"
    delimiter: str | None = None
    decimal: Literal[".", ","] = "."

    def __post_init__(self) -> None:
        if self.rt_unit not in ("ms", "s"):
            raise ConfigError("rt_unit", f"must be 'ms' or 's', got {shown(self.rt_unit)}")
        if self.delimiter is not None:
            named = {"\\t": "\t", "tab": "\t", "\\s": " ", "space": " "}.get(self.delimiter, self.delimiter)
            if not isinstance(named, str) or len(named) != 1 or named in "\"\r\n":
                raise ConfigError("delimiter", f"must be one character (or 'tab'), got {shown(self.delimiter)}")
            object.__setattr__(self, "delimiter", named)
        if self.decimal not in (".", ","):
            raise ConfigError("decimal", f"must be '.' or ',', got {shown(self.decimal)}")
        for name in self.columns:
            if not is_known(name) or name in ("switch", "run_position", "prev_correct", "line"):
                if name != "switch":
                    raise ConfigError(f"map.{name}", "not a column of the trial schema (known: participant, session, "
                                                      "trial, task, correct, rt, response, correct_response, "
                                                      "congruent, practice, age, session_time, onset, switch, "
                                                      "stim_*, cond_*)")
        seen: dict[str, str] = {}
        for name, column in self.columns.items():
            if column in seen:
                raise ConfigError(f"map.{name}", f"column {shown(column)} is mapped twice (also to {seen[column]}): "
                                                  "each schema field needs its own column")
            seen[column] = name
        missing = [c for c in ("participant", "task", "correct", "rt") if c not in self.columns]
        if missing:
            raise ConfigError(f"map.{missing[0]}", "required: map it to a column of the file "
                                                   f"(missing: {', '.join(missing)})")
        for name in self.recode:
            if name not in self.columns:
                raise ConfigError(f"recode.{name}", "recodes a column that is not mapped")

    @classmethod
    def from_args(cls, maps: Sequence[str] = (), recodes: Sequence[str] = (), *, toml: str | Path | None = None,
                  **options) -> CsvMapping:
        """Build from a TOML file and/or command-line ``NAME=COLUMN`` and ``NAME=FROM:TO,...`` strings.

        Command-line values override the file's.
        """
        columns: dict[str, str] = {}
        recode: dict[str, dict[str, object]] = {}
        options = {k: v for k, v in options.items() if v is not None and v != []}
        if toml is not None:
            file_columns, file_recode, file_options = _read_mapping_file(toml)
            columns.update(file_columns)
            recode.update(file_recode)
            options = {**file_options, **options}
        for item in maps:
            name, sep, column = item.partition("=")
            if not sep or not name or not column:
                raise ConfigError("map", f"expected NAME=COLUMN, got {shown(item)}")
            columns[name.strip()] = column.strip()
        for item in recodes:
            name, sep, pairs = item.partition("=")
            if not sep:
                raise ConfigError("recode", f"expected NAME=FROM:TO,FROM:TO, got {shown(item)}")
            table = {}
            for pair in pairs.split(","):
                old, colon, new = pair.partition(":")
                if not colon:
                    raise ConfigError("recode", f"expected FROM:TO in {shown(item)}, got {shown(pair)}")
                table[old.strip()] = new.strip()
            recode[name.strip()] = table
        if "rt_missing" in options:
            options["rt_missing"] = tuple(str(v) for v in options["rt_missing"])
        return cls(columns=columns, recode=recode, **options)


def _read_mapping_file(path: str | Path) -> tuple[dict[str, str], dict[str, dict[str, object]], dict[str, object]]:
    """The [map], [recode] and options of a mapping TOML file, type-checked."""
    data = read_toml(path)
    source = str(path)
    unknown = set(data) - {"map", "recode", "rt_unit", "rt_missing", "encoding", "delimiter", "decimal"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown key in the mapping file (known: map, recode, rt_unit, "
                                              "rt_missing, encoding, delimiter, decimal)", source=source)
    table = data.get("map", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError("map", "must be a table of NAME = \"file column\"", source=source)
    recode: dict[str, dict[str, object]] = {}
    recode_table = data.get("recode", {})
    if not isinstance(recode_table, dict):
        raise ConfigError("recode", "must be a table of [recode.NAME] tables", source=source)
    for name, pairs in recode_table.items():
        if not isinstance(pairs, dict):
            raise ConfigError(f"recode.{name}", "must be a table of \"file value\" = value", source=source)
        for key, value in pairs.items():
            if not isinstance(value, str | int | float | bool):
                raise ConfigError(f"recode.{name}.{key}", f"must be a string, number or true/false, got {shown(value)}",
                                  source=source)
        recode[str(name)] = {str(k): v for k, v in pairs.items()}
    options: dict[str, object] = {}
    for key in ("rt_unit", "encoding", "delimiter", "decimal"):
        if key in data:
            if not isinstance(data[key], str):
                raise ConfigError(key, f"must be a string, got {shown(data[key])}", source=source)
            options[key] = data[key]
    if "rt_missing" in data:
        values = data["rt_missing"]
        if not isinstance(values, list) or not all(isinstance(v, str | int | float) for v in values):
            raise ConfigError("rt_missing", f"must be a list of values, e.g. [\"-1\"], got {shown(values)}",
                              source=source)
        options["rt_missing"] = tuple(_number_text(v) for v in values)
    return {str(k): v for k, v in table.items()}, recode, options


def _number_text(value: object) -> str:
    """TOML -1 and "-1" both mean the cell text "-1"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_trials(data: str | os.PathLike[str] | pd.DataFrame, format: str = "ebb-and-flow", *,
                mapping: CsvMapping | Mapping[str, str] | None = None, encoding: str = "utf-8",
                correctness: str = "response") -> TrialData:
    """Load, validate and derive trials from a file or a pandas DataFrame.

    A DataFrame goes through exactly the checks and derivations of a file:
    ``load_trials(pd.read_csv(path), ...)`` gives the same trial table, and the
    same :meth:`~cogflex.data.TrialData.digest`, as ``load_trials(path, ...)``.

    Parameters
    ----------
    data
        CSV file (plain or gzip-compressed), or a DataFrame with the file's
        columns, one row per trial.
    format
        ``"ebb-and-flow"`` (the Lumosity export, fields
        :data:`EBB_AND_FLOW_FIELDS`) or ``"csv"`` (any long-format table; needs
        ``mapping``).
    mapping
        Column mapping for ``format="csv"``: a :class:`CsvMapping` (which also
        carries the RT unit, recodes, RT codes for "no response", encoding,
        delimiter and decimal mark), or a dict ``{schema column: column}`` with the names
        ``--map NAME=COLUMN`` takes (RT in ms, nothing recoded).
    encoding
        Text encoding of an Ebb and Flow file (unused for a DataFrame).
    correctness
        Which rule makes a trial correct, for everything downstream (cleaning, summaries, fits, posterior
        predictive checks, reports): ``"response"`` (default) — response == correct response wherever the
        file records the correct response and at least one response (a trial without a response is an
        error), the ``correct`` column elsewhere; ``"column"`` — the file's ``correct`` column as it is.
        The rule applied and the number of trials on which the two disagree are in
        :attr:`TrialData.correctness` and the notes (:func:`apply_correctness`).

    Returns
    -------
    TrialData
        Trials sorted by participant, session and trial, with the derived
        columns; ``source`` is the path, or ``"<DataFrame N rows>"``.

    Raises
    ------
    DataError
        The data do not fit the trial schema; the message names the file (or
        ``<DataFrame N rows>``), the column and the first offending lines (of
        a DataFrame: its index labels).
    ConfigError
        Unknown format, or a mapping missing, invalid or given for
        ``"ebb-and-flow"``.
    TypeError
        ``data`` is neither a path nor a DataFrame.

    Notes
    -----
    A DataFrame's cells are read as the text a file would hold: booleans as
    ``True``/``False``, whole floats as integers (a blank cell turns a pandas
    int column into floats: ``1.0`` was ``"1"``), and a value equal to a
    recode or ``rt_missing`` code as that code. Its trials' ``line`` column
    holds the line of the row in ``df.to_csv(index=False)`` (position + 2),
    which is the file's line for ``pd.read_csv(path)``. Ids that pandas reads
    as numbers lose their leading zeros (``"007"`` becomes 7): read them as
    text, e.g. ``pd.read_csv(path, dtype={"user_id": str})``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cogflex.data import load_trials
    >>> lab = pd.DataFrame({"subject": ["s1", "s1", "s1", "s2"], "cue": ["colour", "shape", "shape", "colour"],
    ...                     "acc": [1, 0, 1, 1], "RT": [612.0, 845.5, None, 701.0]})
    >>> data = load_trials(lab, "csv", mapping={"participant": "subject", "task": "cue", "correct": "acc",
    ...                                         "rt": "RT"})
    >>> data.source, data.n_trials, data.participants
    ('<DataFrame 4 rows>', 4, ['s1', 's2'])
    >>> data.trials[["participant", "task", "correct", "rt", "switch"]]
      participant    task  correct      rt  switch
    0          s1  colour     True  0.6120   False
    1          s1   shape    False  0.8455    True
    2          s1   shape     True     NaN   False
    3          s2  colour     True  0.7010   False

    The bundled Ebb and Flow export, from its path and as a DataFrame:

    >>> path = "data/synthetic/flexible_players.csv.gz"
    >>> load_trials(pd.read_csv(path)).digest() == load_trials(path).digest()  # doctest: +SKIP
    True
    """
    if correctness not in CORRECTNESS:
        raise ConfigError("correctness", f"unknown rule {shown(correctness)} (known: {', '.join(CORRECTNESS)})")
    if format == "ebb-and-flow":
        if mapping is not None:
            raise ConfigError("map", "the ebb-and-flow format has fixed fields; a column mapping needs format 'csv'")
        return load_ebb_and_flow(data, encoding=encoding, correctness=correctness)
    if format == "csv":
        if mapping is None:
            raise ConfigError("map", "format 'csv' needs a column mapping (--map NAME=COLUMN or --mapping FILE.toml)")
        return load_csv(data, mapping, correctness=correctness)
    raise ConfigError("format", f"unknown format {shown(format)} (known: {', '.join(FORMATS)})")


#: The rules that make a trial correct (:func:`load_trials`'s ``correctness``).
CORRECTNESS = ("response", "column")


def apply_correctness(data: TrialData, rule: str = "response") -> TrialData:
    """``data`` with ``correct`` set by ``rule`` (see :func:`load_trials`), ``prev_correct`` re-derived.

    The result's :attr:`~TrialData.correctness` names the rule that was applied — ``"response"`` only where
    the file has both a response and a correct-response column — and counts the trials on which the file's
    ``correct`` column and response == correct response disagree; a note says the same in words.
    """
    trials = data.trials
    answered = "response" in trials and trials["response"].notna().any()
    if not (answered and "correct_response" in trials):
        return replace(data, correctness={"rule": "column", "disagree": 0, "checked": False})
    keyed = trials["correct_response"].notna().to_numpy()
    matches = (trials["response"].astype("string") == trials["correct_response"].astype("string")).fillna(False)
    derived = matches.to_numpy(dtype=bool)
    given = trials["correct"].fillna(False).to_numpy(dtype=bool)
    differ = keyed & (derived != given)
    notes = list(data.notes)
    n_diff = int(differ.sum())
    if n_diff:
        per = pd.Series(differ).groupby(trials["participant"].to_numpy(), observed=True).sum()
        who = ", ".join(f"{p}: {int(n)}" for p, n in per.items() if n)
        kept = ("correctness is response == correct response (--correctness column keeps the file's)"
                if rule == "response" else "correctness is the file's 'correct' column (--correctness column)")
        notes.append(f"'correct' disagrees with response == correct response on {n_diff} trials ({who}); "
                     f"{kept} ({offending_lines(trials, differ)})")
    record = {"rule": rule, "disagree": n_diff, "checked": True}
    if rule == "column" or not n_diff:
        return replace(data, notes=tuple(notes), correctness=record)
    correct = pd.array(np.where(keyed, derived, given), dtype="boolean")
    correct[~keyed & trials["correct"].isna().to_numpy()] = pd.NA
    return replace(data, trials=ordered(derive(trials.assign(correct=correct))), notes=tuple(notes),
                   correctness=record)


def _as_mapping(mapping: CsvMapping | Mapping[str, str]) -> CsvMapping:
    """A :class:`CsvMapping` as given, or built from a dict ``{schema column: column}`` as ``--map`` flags are."""
    if isinstance(mapping, CsvMapping):
        return mapping
    if isinstance(mapping, Mapping):
        for name, column in mapping.items():
            if not isinstance(name, str) or not isinstance(column, str):
                raise ConfigError(f"map.{name}", f"expected a column name (text), got {shown(column)}")
        return CsvMapping.from_args([f"{name}={column}" for name, column in mapping.items()])
    raise TypeError(f"mapping must be a CsvMapping or a dict {{schema column: column}}, got {type(mapping).__name__}")


# -- column conversion ---------------------------------------------------------

#: Cell texts that mean "missing" in numeric and true/false columns (R's NA, Excel's #N/A, ...).
_MISSING_TEXT = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "none", "#N/A", ".")


def _text(values: pd.Series) -> pd.Series:
    """Cells as stripped text, with the usual "missing" spellings as <NA>."""
    text = values.astype("string").str.strip()
    return text.mask(text.isin(_MISSING_TEXT))


def _as_int(values: pd.Series, frame: pd.DataFrame, source: str, column: str) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values):
        values = _text(values)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() & values.notna()) | (numbers.notna() & (numbers % 1 != 0))
    if bad.any():
        raise DataError(source, f"not whole numbers: {offending_lines(frame.assign(_v=values), bad, '_v')}",
                        column=column)
    return numbers.astype("Int64")


def _as_float(values: pd.Series, frame: pd.DataFrame, source: str, column: str,
              decimal: str | None = None) -> pd.Series:
    """Numbers; ``decimal`` is a lab file's decimal mark (:attr:`CsvMapping.decimal`), ``None`` in a fixed format."""
    if not pd.api.types.is_numeric_dtype(values):
        values = _text(values)
    numbers = pd.to_numeric(_decimal_point(values, decimal), errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise DataError(source, f"not numbers: {offending_lines(frame.assign(_v=values), bad, '_v')}"
                                f"{_decimal_hint(values[bad], decimal)}", column=column)
    return numbers.astype("float64")


#: A number written with a decimal comma: ``0,734``, ``-1,5``, ``,25``.
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


def _decimal_point(values: pd.Series, decimal: str | None) -> pd.Series:
    """Cell texts with the decimal mark ``decimal`` written as ``.``.

    With ``,`` a cell holding a ``.`` stays unreadable (``1.234,5``: a thousands separator).
    """
    if decimal != "," or pd.api.types.is_numeric_dtype(values):
        return values
    return values.mask(values.str.contains(".", regex=False)).str.replace(",", ".", regex=False)


def _decimal_hint(bad: pd.Series, decimal: str | None) -> str:
    """What to do when the unreadable cells ``bad`` are numbers with another decimal mark."""
    text = bad.astype("string")
    if decimal == "." and text.str.fullmatch(_DECIMAL_COMMA).fillna(False).mean() >= 0.5:
        return "; the values look like decimal commas: pass --decimal ,"
    if decimal == "," and text.str.contains(".", regex=False).fillna(False).any():
        return "; a '.' in a number with --decimal , (a thousands separator? remove it)"
    return ""


def _as_bool(values: pd.Series, frame: pd.DataFrame, source: str, column: str,
             recode: Mapping[str, object] | None = None, name: str | None = None) -> pd.Series:
    text = _text(values)
    if recode:
        table = {str(k): _truth(v) for k, v in recode.items()}
        if None in table.values():
            raise ConfigError(f"recode.{name or column}", "values must be true or false")
    else:
        uniques = [u for u in text.dropna().unique()]
        table = {u: (True if u.lower() in _TRUE else False if u.lower() in _FALSE else None) for u in uniques}
    mapped = text.map(lambda v: table.get(v, None) if v is not pd.NA else pd.NA)
    bad = text.notna() & mapped.isna()
    if bad.any():
        known = listing(sorted(map(str, table))) if recode else "true/false, 1/0, T/F, yes/no, correct/error"
        raise DataError(source, f"unknown codes ({known} expected; recode others): "
                                f"{offending_lines(frame.assign(_v=values), bad, '_v')}", column=column)
    return mapped.astype("boolean")


def _truth(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _as_category(values: pd.Series, frame: pd.DataFrame, source: str, column: str,
                 allowed: Mapping[str, str] | Sequence[str] | None = None, ids: bool = False) -> pd.Series:
    # Ids keep every spelling ("NA" can be a participant); other labels read "None", "NA", ... as missing.
    text = values.astype("string").str.strip()
    text = text.mask(text == "") if ids else _text(values)
    if allowed is not None:
        table = dict(allowed) if isinstance(allowed, Mapping) else {a: a for a in allowed}
        mapped = text.map(lambda v: table.get(v) if v is not pd.NA else pd.NA)
        bad = text.notna() & mapped.isna()
        if bad.any():
            raise DataError(source, f"unknown codes (expected {listing(table)}): "
                                    f"{offending_lines(frame.assign(_v=values), bad, '_v')}", column=column)
        categories = list(dict.fromkeys(str(v) for v in table.values()))
        return pd.Categorical(mapped, categories=categories)
    return text.astype("category")


def _check_rt(seconds: pd.Series, frame: pd.DataFrame, source: str, column: str) -> None:
    """Negative or infinite RTs, reported in the file's own column and values."""
    values = seconds.to_numpy(dtype=float)
    bad = (values < 0) | np.isinf(values)
    if bad.any():
        raise DataError(source, f"negative or infinite response times: {offending_lines(frame, bad, column)}; "
                                "leave the cell empty when there was no response, or declare the value "
                                "(--rt-missing VALUE)", column=column)


def _finish(trials: pd.DataFrame, source: str, format: str, notes: list[str],
            names: Mapping[str, str] | None = None) -> TrialData:
    """Validate in file order, sort sessions, derive, and wrap."""
    validate(trials, source, names=names)
    participant = trials["participant"].cat.remove_unused_categories()
    trials["participant"] = participant.cat.reorder_categories(natural_sorted(participant.cat.categories))
    trials = trials.sort_values(["participant", "session", "trial"], kind="stable", ignore_index=True)
    return TrialData(trials=ordered(derive(trials)), source=source, format=format, notes=tuple(notes))


def _compare_switch(data: TrialData, reported: pd.Series, label: str) -> list[str]:
    """Notes on where a file's own switch column disagrees with the cue sequence."""
    merged = data.trials[["line", "switch"]].merge(pd.DataFrame({"line": reported.index, "reported": reported.values}),
                                                   on="line", how="left")
    differ = (merged["reported"].astype("boolean") != merged["switch"]).fillna(False).to_numpy(dtype=bool)
    if not differ.any():
        return []
    return [f"{label} disagrees with the cue sequence on {offending_lines(merged, differ, 'reported')}; "
            "cogflex uses the switch it derives"]


# -- the two formats -------------------------------------------------------------


def load_ebb_and_flow(data: str | os.PathLike[str] | pd.DataFrame, *, encoding: str = "utf-8",
                      correctness: str = "response") -> TrialData:
    """Load a Lumosity Ebb and Flow export (fields :data:`EBB_AND_FLOW_FIELDS`; gzip or plain CSV, or a DataFrame).

    Tasks are ``point`` (cue P: report where the leaves point) and ``move``
    (cue M: where they move); ``nth_master`` (gameplay number) is the session,
    ``resp_time`` (ms) becomes ``rt`` (s), ``point_dir``/``mv_dir`` become
    ``stim_point``/``stim_move`` and congruency is point = move.
    """
    # the delimiter is detected so that a ;-separated lab file is recognised as such (the export is ,-separated)
    raw = raw_table(data, encoding=encoding, delimiter=None, text_columns=("user_id", "game_result_id"))
    return apply_correctness(named_rows(raw, _ebb_and_flow), correctness)


def _ebb_and_flow(table: Raw) -> TrialData:
    """The Ebb and Flow fields of a raw table, converted, validated and derived."""
    source, raw = table.source, table.frame
    missing = [f for f in EBB_AND_FLOW_FIELDS if f not in raw.columns]
    found = listing(c for c in raw.columns if c != "line")
    if len(missing) > len(EBB_AND_FLOW_FIELDS) // 2:
        raise DataError(source, f"not an Ebb and Flow export ({len(missing)} of its {len(EBB_AND_FLOW_FIELDS)} "
                                f"fields missing, e.g. {listing(missing, 3)}; the {table.what} has: {found}): a lab "
                                "CSV needs --format csv and a column mapping (--map NAME=COLUMN or --mapping "
                                "FILE.toml; in a pipeline format = \"csv\" and mapping = \"FILE.toml\")")
    if table.delimiter not in (None, ","):
        raise wrong_delimiter(source, ",", table.delimiter)
    if missing:
        raise DataError(source, f"missing Ebb and Flow field{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)} (found: {found})", column=missing[0])
    conv = dict(source=source)
    trials = pd.DataFrame({
        "participant": _as_category(raw["user_id"], raw, column="user_id", ids=True, **conv),
        "session": _as_int(raw["nth_master"], raw, column="nth_master", **conv),
        "trial": _as_int(raw["trial"], raw, column="trial", **conv),
        "task": _as_category(raw["task_cue"], raw, column="task_cue", allowed={"P": "point", "M": "move"}, **conv),
        "correct": _as_bool(raw["correct"], raw, column="correct", recode={"T": True, "F": False}, **conv),
        "rt": _as_float(raw["resp_time"], raw, column="resp_time", **conv) / 1000.0,
        "response": _as_category(raw["resp_dir"], raw, column="resp_dir", allowed=_DIRECTIONS, **conv),
        "stim_point": _as_category(raw["point_dir"], raw, column="point_dir", allowed=_DIRECTIONS, **conv),
        "stim_move": _as_category(raw["mv_dir"], raw, column="mv_dir", allowed=_DIRECTIONS, **conv),
        "age": _as_float(raw["age"], raw, column="age", **conv).astype("Float64"),
        "session_time": _as_float(raw["timestamp_rel_days"], raw, column="timestamp_rel_days", **conv),
        "onset": _as_float(raw["time_offset"], raw, column="time_offset", **conv) / 1000.0,
        "cond_game": _as_category(raw["game_result_id"], raw, column="game_result_id", **conv),
        "line": raw["line"].astype("Int64"),
    })
    _check_rt(trials["rt"], raw, source, "resp_time")
    is_point = (trials["task"] == "point").to_numpy()
    correct_response = np.where(is_point, trials["stim_point"].astype(str), trials["stim_move"].astype(str))
    trials["correct_response"] = pd.Categorical(correct_response, categories=list(_DIRECTIONS))
    reported = _as_bool(raw["switch"], raw, column="switch", recode={"T": True, "F": False}, **conv)
    data = _finish(trials, source, "ebb-and-flow", [], names={
        "participant": "user_id", "session": "nth_master", "trial": "trial", "task": "task_cue", "rt": "resp_time"})
    notes = _compare_switch(data, pd.Series(reported.to_numpy(), index=raw["line"].to_numpy()),
                            f"the {table.what}'s switch")
    return data.with_trials(data.trials, notes=tuple(notes))


def load_csv(data: str | os.PathLike[str] | pd.DataFrame, mapping: CsvMapping | Mapping[str, str], *,
             correctness: str = "response") -> TrialData:
    """Load a long-format lab CSV (or a DataFrame of its columns) through an explicit column mapping.

    ``mapping`` is a :class:`CsvMapping` or a dict ``{schema column: column}``
    (read as ``--map NAME=COLUMN`` flags).
    """
    mapping = _as_mapping(mapping)
    codes: dict[str, list[object]] = {}
    for name, col in mapping.columns.items():
        codes.setdefault(col, []).extend(mapping.recode.get(name, {}))
    codes.setdefault(mapping.columns["rt"], []).extend(mapping.rt_missing)
    raw = raw_table(data, encoding=mapping.encoding, delimiter=mapping.delimiter,
                     text_columns=list(mapping.columns.values()), all_text=True, codes=codes, decimal=mapping.decimal)
    return apply_correctness(named_rows(raw, lambda table: _lab_csv(table, mapping)), correctness)


def _lab_csv(table: Raw, mapping: CsvMapping) -> TrialData:
    """The mapped columns of a raw table, converted, validated and derived."""
    source, raw = table.source, table.frame
    absent = [(name, col) for name, col in mapping.columns.items() if col not in raw.columns]
    if absent:
        found = listing(c for c in raw.columns if c != "line")
        raise DataError(source, f"mapped column{'s' if len(absent) > 1 else ''} not in the {table.what}: "
                                f"{listing(f'{name}={col}' for name, col in absent)} "
                                f"(the {table.what} has: {found})", column=absent[0][1])
    notes = [f"delimiter {table.delimiter!r} detected"] if table.detected and table.delimiter != "," else []
    trials = pd.DataFrame({"line": raw["line"].astype("Int64")})
    reported = None
    for name, col in mapping.columns.items():
        values = raw[col]
        recode = mapping.recode.get(name)
        conv = dict(source=source, column=col)
        if name == "switch":
            reported = _as_bool(values, raw, recode=recode, name=name, **conv)
            continue
        if name == "rt":
            if mapping.rt_missing:
                values = values.mask(values.astype("string").str.strip().isin(mapping.rt_missing))
            rt = _as_float(values, raw, decimal=mapping.decimal, **conv)
            _check_rt(rt, raw, source, col)
            trials["rt"] = rt / 1000.0 if mapping.rt_unit == "ms" else rt
            _check_rt_unit(trials["rt"], mapping.rt_unit, source, col)
            continue
        kind = column_kind(name)
        if kind == "category":
            trials[name] = _as_category(values, raw, allowed=recode, ids=name == "participant", **conv)
        elif kind == "bool":
            trials[name] = _as_bool(values, raw, recode=recode, name=name, **conv)
        elif kind == "int":
            trials[name] = _as_int(values, raw, **conv)
        else:
            trials[name] = _as_float(values, raw, decimal=mapping.decimal, **conv).astype(
                "Float64" if name == "age" else "float64")
    if "session" not in trials:
        trials["session"] = pd.array(np.ones(len(trials), dtype=np.int64), dtype="Int64")
        notes.append("no session column mapped: one session per participant")
    if "trial" not in trials:
        order = trials.groupby(["participant", "session"], observed=True, sort=False).cumcount() + 1
        trials["trial"] = order.astype("Int64")
        notes.append("no trial column mapped: trials numbered in file order")
    data = _finish(trials, source, "csv", notes, names=mapping.columns)
    if reported is not None:
        extra = _compare_switch(data, pd.Series(reported.to_numpy(), index=raw["line"].to_numpy()),
                                f"the {table.what}'s switch column {shown(mapping.columns['switch'])}")
        data = data.with_trials(data.trials, notes=data.notes + tuple(extra))
    return data


def _check_rt_unit(rt: pd.Series, unit: str, source: str, column: str) -> None:
    """Catch the commonest unit mistake: milliseconds read as seconds and vice versa."""
    median = float(np.nanmedian(rt.to_numpy(dtype=float))) if rt.notna().any() else np.nan
    if unit == "s" and median > 20:
        raise DataError(source, f"median response time {median:g} s: the values look like milliseconds "
                                "(pass --rt-unit ms)", column=column)
    if unit == "ms" and median < 0.01:
        raise DataError(source, f"median response time {median * 1000:g} ms: the values look like seconds "
                                "(pass --rt-unit s)", column=column)
