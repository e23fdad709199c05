"""Hypothesis strategies and helpers of the command-line fuzz tests (tests/test_fuzz_cli.py).

- :func:`mutated` mutates a parsed TOML preset (wrong types, NaN/inf/zero/negative/huge numbers, unknown keys,
  missing keys and sections, wrong nesting, empty tables, strings for lists, unicode), :func:`toml_dumps` writes
  it back as TOML;
- :func:`broken_text` turns a file's bytes into invalid input (random bytes, truncation, flipped bytes, non-UTF-8,
  NUL bytes, duplicated keys, BOM, empty file);
- :func:`mutated_csv` mutates a CSV table (missing columns, duplicate headers, NaN / wrong-typed cells, ragged and
  dropped rows, empty file, truncation, gzip);
- :func:`decimal_rows` writes a table's numbers with decimal commas, :data:`LONG_NAME` draws column names and
  values longer than an error message quotes, :func:`usage_argv` draws command lines argparse may reject;
- :func:`cli_outcome` runs ``cogflex ARGS`` in process and checks the documented contract: exit 0, or 2 with
  exactly one stderr line ``cogflex: error: ...`` (3 for a diverging simulation where allowed), never a
  traceback; heavy functions patched by the tests raise :class:`WouldRun` once an input has passed validation.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import gzip
import io
import math
import os
import re
import tomllib
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck
from hypothesis import event as _event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from cogflex.cli import main
from tests.data.helpers import assert_one_line_error

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
PLAYERS = REPO / "data" / "synthetic" / "flexible_players.csv.gz"

#: ``COGFLEX_FUZZ_SCALE=k`` runs k times the examples with fresh random draws (local fuzzing); CI runs the
#: default: a fixed (derandomized) set of examples per test.
SCALE = float(os.environ.get("COGFLEX_FUZZ_SCALE", "0") or 0)
SETTINGS = dict(deadline=None, derandomize=SCALE <= 0, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


def examples(n: int) -> int:
    """``max_examples`` for a test: ``n``, times ``COGFLEX_FUZZ_SCALE`` when set."""
    return max(1, round(n * SCALE)) if SCALE > 0 else n


class WouldRun(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a patched heavy function: the input passed validation and real work would start here."""


def event(text: str) -> None:
    """``hypothesis.event`` inside a property test, nothing in a plain test."""
    with contextlib.suppress(InvalidArgument):
        _event(text)


def read_toml(path: Path) -> dict:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


# -- TOML writer -------------------------------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def toml_dumps(data: dict) -> str:
    """``data`` as TOML: scalars and arrays first, then one ``[table]`` per nested table (inline below that)."""
    lines = [f"{_key(str(k))} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{_key(str(key))}]")
            lines += [f"{_key(str(k))} = {_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


# -- values and TOML mutations -----------------------------------------------------------------------------------

#: Text of generated strings and keys: any unicode scalar value that UTF-8 can encode (NUL, newlines, RTL marks).
TEXT = st.characters(codec="utf-8", exclude_categories=("Cs",))
KEY = st.one_of(st.sampled_from(["name", "seeds", "type", "value", "paths", "draws", "file", "x", "Seeds", "dt ",
                                 "learning", "network", "a.b", "", " ", "\n", "ü", "名前"]),
                st.text(TEXT, min_size=0, max_size=8))
NUMBERS = st.sampled_from([0, -1, 1, 2, 3, -2**63, 2**63 - 1, 10**9, 0.0, -0.0, -1.0, 0.5, 1e-300, 1e-9, 1e300,
                           1.7976931348623157e308, math.nan, math.inf, -math.inf])
WORDS = st.sampled_from(["", "flexible", "forgetful", "descriptive", "expected", "sampled", "path", "unit", "cpu",
                         "csv", "ebb-and-flow", "nan", "1", "1.5", "true", "digit", "remapped", "mixture", "rows",
                         "orthogonal", "correlated", "iid", "log", "linear", "normal", "beta", "auto", "pymc",
                         "fig2-flexible", "../x", "/", ".", "~", "a\nb", "\u202e", "日本語", "\x00"])
SCALARS = st.one_of(st.booleans(), NUMBERS, st.integers(-10**6, 10**6), st.floats(), WORDS,
                    st.text(TEXT, max_size=10))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEY, inner, max_size=3)),
                      max_leaves=5)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts (tables and their entries), depth first."""
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append((*prefix, key))
            out += _paths(value, (*prefix, key))
    return out


def _tables(data: dict, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    for key, value in data.items():
        if isinstance(value, dict):
            out += _tables(value, (*prefix, key))
    return out


def _get(data: dict, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


def _tweak_number(draw, value):
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, int(value), str(value).lower(), [value]]))
    options = [-value, 0, 0.0, value + 1, value - 1, value * 1e6, value * 1e-6, math.nan, math.inf, -math.inf,
               str(value), [value], float(value) if isinstance(value, int) else value,
               int(value) if isinstance(value, float) and math.isfinite(value) else 10**12, 2**63 - 1, -2**63]
    out = draw(st.sampled_from(options))
    if isinstance(out, int) and not isinstance(out, bool) and not -2**63 <= out < 2**63:
        out = float(out)
    return out


MUTATIONS = ("set", "delete", "unknown_key", "empty_table", "wrap_list", "move", "stringify", "tweak", "rename",
             "list_edit", "table_to_scalar", "drop_section")


@st.composite
def mutation(draw, data: dict) -> str:
    """Apply one random mutation to ``data`` in place; return its name (for ``event``)."""
    kind = draw(st.sampled_from(MUTATIONS))
    paths = _paths(data)
    tables = _tables(data)
    if not paths:
        kind = "unknown_key"
    if kind == "unknown_key" or kind == "drop_section" and len(tables) < 2:
        table = _get(data, draw(st.sampled_from(tables)))
        table[draw(KEY)] = draw(VALUES)
        return "unknown_key"
    if kind == "drop_section":
        path = draw(st.sampled_from(tables[1:]))
        del _get(data, path[:-1])[path[-1]]
        return kind
    if kind in ("empty_table", "table_to_scalar") and len(tables) < 2:
        kind = "set"
    if kind == "empty_table":
        path = draw(st.sampled_from(tables[1:]))
        _get(data, path[:-1])[path[-1]] = {}
        return kind
    if kind == "table_to_scalar":
        path = draw(st.sampled_from(tables[1:]))
        _get(data, path[:-1])[path[-1]] = draw(st.one_of(SCALARS, st.lists(SCALARS, max_size=2)))
        return kind
    path = draw(st.sampled_from(paths))
    parent, key = _get(data, path[:-1]), path[-1]
    value = parent[key]
    if kind == "set":
        parent[key] = draw(VALUES)
    elif kind == "delete":
        del parent[key]
    elif kind == "wrap_list":
        parent[key] = [value]
    elif kind == "move":
        target = _get(data, draw(st.sampled_from(tables)))
        del parent[key]
        target[key] = value
    elif kind == "stringify":
        parent[key] = value if isinstance(value, str) else _value(value) if not isinstance(value, dict) else "{}"
    elif kind == "tweak":
        if isinstance(value, int | float):
            parent[key] = _tweak_number(draw, value)
        elif isinstance(value, str):
            parent[key] = draw(st.sampled_from([value.upper(), value + " ", "", value[:-1], value * 2, 1, [value]]))
        else:
            parent[key] = draw(VALUES)
    elif kind == "rename":
        new = draw(st.sampled_from([key.upper(), key + "s", key[:-1], key.replace("_", "-"), key + "\n", " " + key]))
        del parent[key]
        parent[new] = value
    elif kind == "list_edit":
        if isinstance(value, list):
            parent[key] = draw(st.sampled_from([[], value + value, value[::-1], value[:1], ",".join(map(str, value)),
                                                [*value, draw(SCALARS)], [value]]))
        else:
            parent[key] = draw(st.lists(SCALARS, max_size=3))
    return kind


@st.composite
def mutated(draw, base: dict, *, max_mutations: int = 3, valid_share: bool = True) -> dict:
    """A deep copy of ``base`` with 0 (sometimes) to ``max_mutations`` random mutations."""
    data = copy.deepcopy(base)
    n = draw(st.sampled_from([k for k in (0, 0, 1, 1, 1, 2, 3) if k <= max_mutations and (k or valid_share)]))
    kinds = [draw(mutation(data)) for _ in range(n)]
    event(f"mutations: {', '.join(sorted(set(kinds))) or 'none'}")
    return data


@st.composite
def broken_text(draw, original: bytes) -> bytes:
    """Invalid or damaged file content derived from ``original`` (or unrelated bytes)."""
    kind = draw(st.sampled_from(["random", "truncate", "flip", "latin1", "nul", "duplicate", "bom", "empty",
                                 "garbage_line", "unclosed"]))
    event(f"broken: {kind}")
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "bom":
        return b"\xef\xbb\xbf" + original
    if not original:
        return draw(st.binary(min_size=1, max_size=50))
    i = draw(st.integers(0, len(original) - 1))
    if kind == "truncate":
        return original[:i]
    if kind == "flip":
        return original[:i] + bytes([draw(st.integers(0, 255))]) + original[i + 1:]
    if kind == "latin1":
        return original[:i] + "é€".encode("latin-1", "replace") + b"\xff\xfe" + original[i:]
    if kind == "nul":
        return original[:i] + b"\x00" + original[i:]
    if kind == "duplicate":
        first = original.split(b"\n", 1)[0] if not original.startswith(b"#") else b'name = "a"'
        return original + b"\n" + first + b"\n" + first + b"\n"
    if kind == "garbage_line":
        return original + b"\n" + draw(st.text(TEXT, max_size=20)).encode() + b"\n"
    return original + b'\n[broken\nkey = "unterminated\n'  # unclosed


# -- CSV mutations ---------------------------------------------------------------------------------------------

CELLS = st.one_of(st.sampled_from(["", "NaN", "nan", "NA", "null", "inf", "-inf", "-1", "0", "1e400", "abc", "T",
                                   "F", "TRUE", "1.5", "99999999999999999999", "sim01", '"', "'", ";", "\t",
                                   "é", "\u2028", " 1 ", "P", "C", "L", "R", "U", "D"]),
                  st.text(TEXT.filter(lambda c: c not in "\r\n\x00"), max_size=6))


def read_csv_rows(path: Path, *, per_participant: int | None = None, delimiter: str = ",") -> list[list[str]]:
    """Header and rows of a (gzipped) CSV; ``per_participant`` keeps the first rows of each first-column value."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    if per_participant is None:
        return rows
    seen: dict[str, int] = {}
    kept = [rows[0]]
    for row in rows[1:]:
        seen[row[0]] = seen.get(row[0], 0) + 1
        if seen[row[0]] <= per_participant:
            kept.append(row)
    return kept


def csv_bytes(rows: Iterable[list[str]], delimiter: str = ",") -> bytes:
    return "".join(delimiter.join(row) + "\n" for row in rows).encode("utf-8")


CSV_MUTATIONS = ("drop_column", "duplicate_header", "rename_header", "set_cells", "nan_column", "drop_rows",
                 "header_only", "empty", "truncate", "ragged", "extra_column", "semicolons", "shuffle_rows",
                 "duplicate_rows", "latin1", "random_bytes", "swap_columns", "blank_lines", "crlf", "quote")


@st.composite
def mutated_csv(draw, rows: list[list[str]], *, valid_share: bool = True) -> bytes:
    """CSV bytes of ``rows`` after 0 (sometimes) to 3 mutations; may be gzipped."""
    rows = [list(r) for r in rows]
    n = draw(st.integers(0 if valid_share else 1, 3))
    delimiter, newline, raw = ",", "\n", None
    kinds = []
    for _ in range(n):
        kind = draw(st.sampled_from(CSV_MUTATIONS))
        kinds.append(kind)
        width = len(rows[0]) if rows else 0
        if kind == "drop_column" and width > 1:
            j = draw(st.integers(0, width - 1))
            rows = [r[:j] + r[j + 1:] for r in rows]
        elif kind == "duplicate_header" and width > 1:
            a, b = draw(st.integers(0, width - 1)), draw(st.integers(0, width - 1))
            rows[0][a] = rows[0][b]
        elif kind == "rename_header" and width:
            j = draw(st.integers(0, width - 1))
            rows[0][j] = draw(st.sampled_from([rows[0][j].upper(), rows[0][j] + " ", "", "x", "\ufeff" + rows[0][j]]))
        elif kind == "set_cells" and len(rows) > 1:
            for _ in range(draw(st.integers(1, 5))):
                i, j = draw(st.integers(1, len(rows) - 1)), draw(st.integers(0, max(0, len(rows[0]) - 1)))
                if j < len(rows[i]):
                    rows[i][j] = draw(CELLS)
        elif kind == "nan_column" and width:
            j, cell = draw(st.integers(0, width - 1)), draw(CELLS)
            rows = [rows[0]] + [r[:j] + [cell] + r[j + 1:] for r in rows[1:]]
        elif kind == "drop_rows" and len(rows) > 2:
            keep = draw(st.integers(1, len(rows) - 1))
            start = draw(st.integers(1, len(rows) - keep))
            rows = [rows[0]] + rows[start:start + keep]
        elif kind == "header_only":
            rows = rows[:1]
        elif kind == "empty":
            rows = []
        elif kind == "ragged" and len(rows) > 1:
            i = draw(st.integers(1, len(rows) - 1))
            rows[i] = rows[i][:-1] if draw(st.booleans()) else rows[i] + ["extra"]
        elif kind == "extra_column" and rows:
            name = draw(st.sampled_from(["extra", rows[0][0], "rt", "participant"]))
            rows = [rows[0] + [name]] + [r + [draw(CELLS)] for r in rows[1:]]
        elif kind == "semicolons":
            delimiter = ";"
        elif kind == "shuffle_rows" and len(rows) > 2:
            body = rows[1:]
            rows = [rows[0]] + draw(st.permutations(body))
        elif kind == "duplicate_rows" and len(rows) > 1:
            i = draw(st.integers(1, len(rows) - 1))
            rows.insert(i, list(rows[i]))
        elif kind == "swap_columns" and width > 1:
            a, b = draw(st.integers(0, width - 1)), draw(st.integers(0, width - 1))
            rows = [[r[b] if k == a else r[a] if k == b else c for k, c in enumerate(r)] if len(r) == width else r
                    for r in rows]
        elif kind == "blank_lines" and rows:
            rows.insert(draw(st.integers(1, len(rows))), [])
        elif kind == "crlf":
            newline = draw(st.sampled_from(["\r\n", "\r"]))
        elif kind == "quote" and len(rows) > 1:
            i = draw(st.integers(1, len(rows) - 1))
            rows[i][0] = '"' + rows[i][0]
        elif kind in ("truncate", "latin1", "random_bytes"):
            raw = kind
    event(f"csv: {', '.join(sorted(set(kinds))) or 'none'}")
    data = "".join(delimiter.join(r) + newline for r in rows).encode("utf-8")
    if raw == "truncate" and data:
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif raw == "latin1" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + b"\xe9\xff" + data[i:]
    elif raw == "random_bytes":
        data = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        if draw(st.integers(0, 4)) == 0:  # truncated gzip
            data = data[:max(1, len(data) // 2)]
    return data


# -- decimal commas, long names, command lines -------------------------------------------------------------------

#: Column names and cells longer than an error message quotes (``cogflex.errors.SHOWN_CHARS``), up to 10,000
#: characters; never a delimiter, quote or line break (the name stays one header cell).
LONG_NAME = st.one_of(st.integers(61, 10_000).map(lambda n: "n" * n),
                      st.text(TEXT.filter(lambda c: c not in "\r\n\x00,;\t\"'\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"),
                              min_size=61, max_size=200).map(str.strip).filter(lambda t: len(t) > 60))


def decimal_rows(rows: list[list[str]], column: int, fraction: str, mark: str) -> list[list[str]]:
    """``rows`` with the decimal part ``fraction`` after ``mark`` added to every whole number in ``column``.

    ``607`` becomes ``607,5``; negative codes (``-1``: no response) and other cells are kept.
    """
    if not fraction:
        return [list(r) for r in rows]
    out = [list(rows[0])]
    for row in rows[1:]:
        row = list(row)
        if column < len(row) and row[column].isdigit():
            row[column] = f"{row[column]}{mark}{fraction}"
        out.append(row)
    return out


@st.composite
def usage_argv(draw, command: list[str], tokens: list) -> list[str]:
    """``command`` followed by 0-8 of ``tokens`` (options, values, files) in any order, or a long value."""
    typed = st.one_of(LONG_NAME, st.text(TEXT.filter(lambda c: c != "\x00"), max_size=6))
    pool = st.one_of(st.sampled_from(tokens), typed.filter(lambda t: not t.startswith("-")))  # never --help
    return [*command, *draw(st.lists(pool, max_size=8))]


# -- running the CLI ---------------------------------------------------------------------------------------------

def check_contract(args: list, status: int, err: str, allowed: Iterable[int] = (0, 2)) -> None:
    """Exit status in ``allowed``; for a failure stderr is exactly one line ``cogflex: error: ...``; no traceback.

    Exit 2 is checked with tests/data/helpers.py ``assert_one_line_error`` (the data layer's tests use it too).
    """
    allowed = tuple(allowed)
    shown = " ".join(map(str, args))
    assert "Traceback" not in err, f"cogflex {shown}: traceback on stderr:\n{err}"
    assert status in allowed, f"cogflex {shown}: exit status {status} (allowed {allowed}); stderr: {err!r}"
    if status == 2:
        line = assert_one_line_error(status, err)
    elif status == 3:
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("cogflex: error: "), f"cogflex {shown}: stderr {err!r}"
        line = lines[0]
    else:
        return
    assert line.isprintable(), f"cogflex {shown}: control character or line break in the error line: {line!r}"


def cli_outcome(*args, allowed: Iterable[int] = (0, 2)) -> str:
    """Run ``cogflex ARGS`` in process and check :func:`check_contract`.

    Returns ``"ok"`` (exit 0), ``"error"`` (2), ``"diverged"`` (3) or ``"would-run"`` (a patched heavy
    function was reached: the input passed validation). Any exception other than :class:`WouldRun` escaping
    ``main`` is what a user sees as a traceback and fails the test.
    """
    return cli_run(*args, allowed=allowed)[0]


def cli_run(*args, allowed: Iterable[int] = (0, 2)) -> tuple[str, str]:
    """:func:`cli_outcome` and the stderr text."""
    args = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          warnings.catch_warnings(record=True) as caught):
        warnings.simplefilter("always")
        try:
            status = main(args)
        except WouldRun:
            event("outcome: would-run")
            return "would-run", err.getvalue()
        except SystemExit as exc:  # argparse: usage errors are not what these tests generate
            raise AssertionError(f"cogflex {' '.join(args)}: argparse exit {exc.code}: {err.getvalue()!r}") from None
    check_contract(args, status, err.getvalue(), allowed)
    outcome = {0: "ok", 2: "error", 3: "diverged"}[status]
    for warning in caught:  # a real process prints these on stderr too (see the module docstring of the tests)
        event(f"warning with outcome {outcome}: {warning.category.__name__}")
    event(f"outcome: {outcome}")
    return outcome, err.getvalue()


def guard(real: Callable, cheap: Callable[..., bool], before: Callable[..., Any] | None = None) -> Callable:
    """``real`` when ``cheap(*args, **kwargs)``, else (after ``before``, e.g. the input checks) raise WouldRun."""
    def wrapper(*args, **kwargs):
        if cheap(*args, **kwargs):
            return real(*args, **kwargs)
        if before is not None:
            before(*args, **kwargs)
        raise WouldRun(getattr(real, "__name__", "work"))
    return wrapper


def would_run(*args, **kwargs):
    """A heavy function that is never run by the fuzz tests."""
    raise WouldRun()
