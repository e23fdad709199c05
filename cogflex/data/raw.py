"""Raw trial tables: the cells of a trial file, or of a pandas DataFrame, before any conversion.

:func:`raw_table` reads a file (plain or gzip, delimiter detected, the source line of every row kept) or takes a
DataFrame's cells the way the file's text would read (:class:`Raw`); :func:`named_rows` makes a loader's
messages name a DataFrame's index labels instead of file lines. The loaders in :mod:`cogflex.data.loaders`
convert and validate what this returns, the same for files and frames.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cogflex.data.dataset import TrialData
from cogflex.errors import ConfigError, DataError

__all__ = ["Raw", "raw_table", "read_table", "named_rows", "wrong_delimiter"]


# -- reading ------------------------------------------------------------------


def _read_text(path: Path, source: str, encoding: str) -> str:
    """Whole file as text: gzip detected by its magic bytes; a UTF-8 BOM is dropped."""
    try:
        if not path.exists():
            raise DataError(source, "no such file")
        if path.is_dir():
            raise DataError(source, "is a directory, not a file")
        raw = path.read_bytes()
    except OSError as exc:  # a name too long for the file system, no permission, ...
        raise DataError(source, f"cannot read the file ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(source, f"truncated or corrupt gzip file ({exc})") from None
    if not raw.strip():
        raise DataError(source, "empty file")
    try:
        return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(source, f"not {encoding} text: byte 0x{raw[exc.start]:02x} on line {line} cannot be decoded "
                                "(re-save the file as UTF-8, or pass --encoding, e.g. latin-1)") from None
    except LookupError:
        raise ConfigError("encoding", f"unknown text encoding {encoding!r}") from None


def read_table(path: str | Path, *, encoding: str = "utf-8", delimiter: str | None = ",",
                text_columns: Iterable[str] = (), all_text: bool = False) -> tuple[pd.DataFrame, str, bool]:
    """Parse a delimited file.

    Returns the frame (with the source line of every row in column ``line``),
    the delimiter used and whether it was detected. ``text_columns`` (or every
    column with ``all_text``) are read as text with only empty cells missing.
    """
    source = str(path)
    text = _read_text(Path(path), source, encoding)
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")  # old Mac line endings
    header = text.splitlines()[0]
    detected = delimiter is None
    if detected:
        try:
            delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        names = next(csv.reader([header], delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(source, f"malformed header line ({exc})") from None
    if len(names) <= 1:
        other = next((d for d in ",;\t|" if d != delimiter and d in header), None)
        if other is not None:
            raise wrong_delimiter(source, delimiter, other)
    read_as_text = names if all_text else [n for n in text_columns if n in names]
    options = dict(keep_default_na=False, na_values=[""]) if all_text else {}
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype={n: "string" for n in read_as_text},
                            skipinitialspace=True, **options)
    except pd.errors.EmptyDataError:
        raise DataError(source, "empty file") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        detail = str(exc).split("\n")[0].replace("Error tokenizing data. C error: ", "")
        raise DataError(source, f"malformed CSV: {detail}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame["line"] = _record_lines(text, delimiter, len(frame))
    return frame, delimiter, detected


def wrong_delimiter(source: str, delimiter: str, other: str) -> DataError:
    """The error for a file read with ``delimiter`` whose header is ``other``-separated."""
    return DataError(source, f"only one column with delimiter {delimiter!r}; the header looks {other!r}-separated "
                             "(wrong delimiter?)")


def _record_lines(text: str, delimiter: str, n_rows: int) -> np.ndarray:
    """File line on which each data record starts (blank lines and multi-line quoted fields counted)."""
    simple = np.arange(2, n_rows + 2)
    if '"' not in text and "\n\n" not in text and "\n\r\n" not in text:
        return simple
    starts, end = [], 0
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for i, row in enumerate(reader):
            begin, end = end + 1, reader.line_num
            if i > 0 and row:
                starts.append(begin)
    except csv.Error:
        return simple
    return np.asarray(starts) if len(starts) == n_rows else simple


# -- DataFrames ------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Raw cells read from a file, or taken from a DataFrame, with the source line of every row in ``line``.

    ``labels`` are a DataFrame's index labels (row ``i`` is on line ``i + 2``); ``None`` for a file.
    """

    frame: pd.DataFrame
    source: str
    delimiter: str | None = None
    detected: bool = False
    labels: np.ndarray | None = None

    @property
    def what(self) -> str:
        """``"file"`` or ``"DataFrame"``, for messages."""
        return "file" if self.labels is None else "DataFrame"


def raw_table(data: str | os.PathLike[str] | pd.DataFrame, *, encoding: str, delimiter: str | None,
               text_columns: Iterable[str], all_text: bool = False,
               codes: Mapping[str, Iterable[object]] | None = None, decimal: str = ".") -> Raw:
    """Read a file with :func:`read_table`, or take a DataFrame's cells with :func:`_frame_table`.

    ``decimal`` is the decimal mark a DataFrame's numbers are written with, as its file would hold them.
    """
    if isinstance(data, pd.DataFrame):
        return _frame_table(data, text_columns=text_columns, codes=codes or {}, decimal=decimal)
    if isinstance(data, str | os.PathLike):
        frame, delimiter, detected = read_table(data, encoding=encoding, delimiter=delimiter,
                                                 text_columns=text_columns, all_text=all_text)
        return Raw(frame, str(data), delimiter, detected)
    raise TypeError(f"data must be a path to a trial file (str or os.PathLike) or a pandas DataFrame, "
                    f"got {type(data).__name__}")


def _frame_table(frame: pd.DataFrame, *, text_columns: Iterable[str],
                 codes: Mapping[str, Iterable[object]], decimal: str = ".") -> Raw:
    """A DataFrame as the raw table its CSV file gives.

    Column names are stripped; ``text_columns`` become the text of their cells
    (:func:`_cells`, with ``codes[column]`` and ``decimal``), the rest stay as pandas typed them,
    as :func:`read_table` leaves them; ``line`` is the row's line in
    ``frame.to_csv(index=False)``.
    """
    n = len(frame)
    source = f"<DataFrame {n} row{'s' if n != 1 else ''}>"
    if n == 0:
        raise DataError(source, "no trials (the DataFrame has no rows)")
    names = [str(c).strip() for c in frame.columns]
    text = set(text_columns)
    columns: dict[str, pd.Series] = {}
    for i, name in enumerate(names):
        if name in columns:
            raise DataError(source, "more than one column of this name (column names must be unique)", column=name)
        values = frame.iloc[:, i].reset_index(drop=True)
        columns[name] = _cells(values, codes.get(name, ()), decimal) if name in text else values
    raw = pd.DataFrame(columns, index=pd.RangeIndex(n))
    raw["line"] = np.arange(2, n + 2)
    return Raw(raw, source, labels=frame.index.to_numpy())


def _cells(values: pd.Series, codes: Iterable[object] = (), decimal: str = ".") -> pd.Series:
    """A DataFrame column as the text of the cells pandas read it from (``<NA>`` where missing).

    Booleans read ``True``/``False`` and whole floats as integers (a blank cell
    turns a pandas int column into floats: ``1.0`` was ``"1"``), other floats with
    the decimal mark ``decimal``; a value equal
    to one of ``codes`` (recode or ``rt_missing`` codes) reads as that code,
    e.g. ``True`` as ``"true"`` or ``-1.0`` as ``"-1"``.
    """
    truths: dict[bool, str] = {}
    numbers: dict[float, str] = {}
    for code in codes:
        spelled = str(code)
        truth = {"true": True, "false": False}.get(spelled.strip().lower())
        if truth is not None:
            truths.setdefault(truth, spelled)
            continue
        try:
            numbers.setdefault(float(spelled), spelled)
        except ValueError:
            pass

    def cell(value: object) -> object:
        if value is None or value is pd.NA or value is pd.NaT:
            return pd.NA
        if isinstance(value, bool | np.bool_):
            return truths.get(bool(value), str(bool(value)))
        if isinstance(value, int | np.integer):
            whole = int(value)
            return numbers.get(float(whole), str(whole)) if abs(whole) < 2**53 else str(whole)
        if isinstance(value, float | np.floating):
            number = float(value)
            if math.isnan(number):
                return pd.NA
            plain = str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
            return numbers.get(number, plain.replace(".", decimal))
        return str(value)

    return pd.Series([cell(v) for v in values.tolist()], dtype="string")


_LINES = re.compile(r"\bfirst at lines? (\d+(?:, \d+)*)")


def _by_index(text: str, labels: np.ndarray) -> str:
    """``text`` with the lines :func:`~cogflex.data.schema.offending_lines` names (position + 2) as index labels."""
    def swap(match: re.Match) -> str:
        positions = [int(n) - 2 for n in match.group(1).split(", ")]
        if not all(0 <= p < len(labels) for p in positions):
            return match.group(0)
        return "first at index " + ", ".join(_label(labels[p]) for p in positions)

    return _LINES.sub(swap, text)


def _label(value: object) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return str(value) if isinstance(value, int) else repr(value)


def named_rows(raw: Raw, build: Callable[[Raw], TrialData]) -> TrialData:
    """``build(raw)``; the rows its errors and notes name are a DataFrame's index labels when ``raw`` is one."""
    if raw.labels is None:
        return build(raw)
    try:
        data = build(raw)
    except DataError as exc:
        raise DataError(exc.source, _by_index(exc.message, raw.labels), column=exc.column) from None
    return data.with_trials(data.trials, notes=tuple(_by_index(note, raw.labels) for note in data.notes))
