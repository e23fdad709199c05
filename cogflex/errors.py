"""Exceptions that cogflex raises for bad input and failed runs.

The command-line interface turns every :class:`CogflexError` into a one-line
message and exit status 2, so a message must name what is wrong (the config
field, file, column or row) without needing a traceback. Names and values that come from the user (a column
name, a cell, a TOML key) are quoted with :func:`shown` (or :func:`shorten`, :func:`listing`), so that a
10,000-character column name still gives a short line.
"""

from __future__ import annotations

__all__ = ["CogflexError", "one_line", "shorten", "shown", "listing", "ConfigError", "DataError",
           "DivergenceError", "FitError", "InterruptedFit"]

#: The most characters of one name or value that a message quotes (:func:`shorten`).
SHOWN_CHARS = 60
#: The most names that a message lists (:func:`listing`).
LISTED = 12


class CogflexError(Exception):
    """Base class of the errors cogflex reports to users.

    ``str()`` of an error is always one line: line breaks and other control characters that reach a message
    (from a file name, a TOML key, a value or a library's own message) are written as escapes.
    """

    def __str__(self) -> str:
        return one_line(super().__str__())


def one_line(text: str) -> str:
    """``text`` with every line break and control character written as its escape (newline, NUL, U+2028...)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text``, or its first ``limit`` characters and ``...`` with the full length when it is longer."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message; a long string (or any long repr) is cut to ``limit`` characters.

    >>> shown("rt")
    "'rt'"
    >>> shown("x" * 10_000, limit=5)
    "'xxxxx...' (10,000 characters)"
    """
    if isinstance(value, str) and len(value) > limit:
        cut = repr(value[:limit])
        return f"{cut[:-1]}...{cut[-1]} ({len(value):,} characters)"
    return shorten(repr(value), limit)


def listing(names, most: int = LISTED) -> str:
    """``names`` joined by commas, each :func:`shorten`-ed, at most ``most`` of them and how many more."""
    names = [shorten(str(n)) for n in names]
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return ", ".join(names[:most]) + more


class ConfigError(CogflexError, ValueError):
    """A configuration value is invalid.

    Parameters
    ----------
    field
        Dotted name of the offending field, e.g. ``"learning.dt"``.
    message
        What is wrong with it, in plain words.
    source
        The preset or file the value came from, when known.
    """

    def __init__(self, field: str, message: str, *, source: str | None = None):
        self.field = field
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{shorten(field)}: {message}")

    def within(self, section: str | None = None, *, source: str | None = None) -> ConfigError:
        """Return the same error with ``section.`` prefixed and/or a source attached."""
        field = f"{section}.{self.field}" if section else self.field
        return ConfigError(field, self.message, source=source or self.source)


class DivergenceError(CogflexError, FloatingPointError):
    """A simulation produced NaN or infinite values and was stopped."""


class FitError(CogflexError):
    """A fit cannot start (e.g. no start point with a finite log density); nothing was sampled."""


class InterruptedFit(CogflexError):
    """Sampling was interrupted (Ctrl-C); nothing was written."""


class DataError(CogflexError, ValueError):
    """A data file does not fit cogflex's trial schema.

    Parameters
    ----------
    source
        The file (or table name) the data came from.
    message
        What is wrong, naming the column and the first offending lines.
    column
        The offending column, when there is one.
    """

    def __init__(self, source: str, message: str, *, column: str | None = None):
        self.source = source
        self.column = column
        self.message = message
        where = f"column {shown(column)}: " if column else ""
        super().__init__(f"{source}: {where}{message}")
