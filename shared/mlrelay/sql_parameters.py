"""The `@name` query parameters of a BigQuery query: the one reader `mlrelay validate` (the
registry checks) and the snapshotter (binding, DuckDB's spelling) share.

It reads the query as BigQuery's lexer does, so what is in a string (`'@x'`, `'''@x'''`,
`r"@x"`, `b'@x'`), a quoted name (`` `@x` ``) or a comment (`-- @x`, `# @x`, `/* @x */`) is no
parameter, and neither is a system variable (`@@time_zone`). A parameter is one `@` followed
at once by a name, plain (`@min_year`) or quoted (`` @`min_year` ``).

Hand-written rather than sqlglot's tokenizer at run time: this module is imported by every
function at cold start (the registry is checked on load), and sqlglot costs about 130 ms to
import its BigQuery dialect and 8 MB in each deploy package. tests/unit/test_sql_parameters.py
proves the two agree over generated queries, sqlglot being a dev dependency only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mlrelay.errors import PermanentError

# characters that are tokens of their own in BigQuery (sqlglot's SINGLE_TOKENS): a name ends there
_PUNCTUATION = frozenset("!\"#%&'()*+,-./:;<=>?@[\\]^`{|}~")
_DIGITS = frozenset("0123456789")
_STRING_PREFIXES = frozenset({"r", "b", "rb", "br"})  # r'raw', b'bytes', rb'raw bytes'
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ParameterUse:
    """One `@name` in the SQL: `sql[start:end]` is the whole of it, from `@` to the name's end."""

    name: str
    start: int
    end: int


class UnclosedSql(PermanentError):
    """The SQL opens a string, a quoted name or a comment and never closes it."""

    def __init__(self, what: str, sql: str, start: int) -> None:
        line = sql.count("\n", 0, start) + 1
        super().__init__(
            "source.sql", f"the {what} opened on line {line} is never closed", f"close the {what}"
        )


def is_parameter_name(name: str) -> bool:
    """Whether `name` is one a `query_parameters` entry can have (letters, digits, underscores)."""
    return _NAME.fullmatch(name) is not None


def parameter_uses(sql: str) -> list[ParameterUse]:
    """Every `@name` the query uses, in order, outside strings, quoted names and comments."""
    uses: list[ParameterUse] = []
    at, size = 0, len(sql)
    while at < size:
        char = sql[at]
        if char in "'\"":
            at = _string_end(sql, at)
        elif char == "`":
            at = _quoted_name_end(sql, at)
        elif char == "#" or sql.startswith("--", at):
            at = _line_end(sql, at)
        elif sql.startswith("/*", at):
            close = sql.find("*/", at + 2)
            if close < 0:
                raise UnclosedSql("comment", sql, at)
            at = close + 2
        elif char == "@":
            run = at
            while run < size and sql[run] == "@":
                run += 1
            use = _parameter_at(sql, at) if run == at + 1 else None  # `@@name` is a system variable
            if use is not None:
                uses.append(use)
                at = use.end
            else:
                at = run
        else:
            at += 1
    return uses


def parameter_names(sql: str) -> list[str]:
    """The names of the `@name` parameters a query uses, each once, in order of first use."""
    return list(dict.fromkeys(use.name for use in parameter_uses(sql)))


def respell_parameters(sql: str, spell: Callable[[str], str]) -> str:
    """The SQL with each `@name` replaced by `spell(name)` (e.g. DuckDB's `$name`), every other
    character as it was."""
    parts: list[str] = []
    done = 0
    for use in parameter_uses(sql):
        parts += [sql[done : use.start], spell(use.name)]
        done = use.end
    parts.append(sql[done:])
    return "".join(parts)


def _parameter_at(sql: str, at: int) -> ParameterUse | None:
    """The parameter whose single `@` is at `at`, if a name follows it directly."""
    first = at + 1
    if first >= len(sql):
        return None
    char = sql[first]
    if char == "`":
        end = _quoted_name_end(sql, first)
        return ParameterUse(sql[first + 1 : end - 1], at, end)
    if char.isspace() or char in _PUNCTUATION or char in _DIGITS:
        return None
    end = first
    while end < len(sql) and not sql[end].isspace() and sql[end] not in _PUNCTUATION:
        end += 1
    name = sql[first:end]
    if name.lower() in _STRING_PREFIXES and sql[end : end + 1] in ("'", '"'):
        return None  # `@r'...'`: a raw string after a stray `@`, not a parameter named r
    return ParameterUse(name, at, end)


def _string_end(sql: str, start: int) -> int:
    """Just past the string opened at `start` ('...', "...", '''...''' or \"\"\"...\"\"\");
    a backslash escapes the next character, in raw strings too as far as the end is concerned."""
    quote = sql[start]
    close = quote * 3 if sql.startswith(quote * 3, start) else quote
    at = start + len(close)
    while at < len(sql):
        if sql[at] == "\\":
            at += 2
        elif sql.startswith(close, at):
            return at + len(close)
        else:
            at += 1
    raise UnclosedSql("string", sql, start)


def _quoted_name_end(sql: str, start: int) -> int:
    """Just past the quoted name opened by the backtick at `start`: a backslash escapes the next
    character, and so does a backtick a backtick (as sqlglot reads it; in BigQuery two names
    back to back are no valid query either way)."""
    at = start + 1
    while at < len(sql):
        if sql[at] == "\\" or sql.startswith("``", at):
            at += 2
        elif sql[at] == "`":
            return at + 1
        else:
            at += 1
    raise UnclosedSql("quoted name", sql, start)


def _line_end(sql: str, start: int) -> int:
    """Where the line comment at `start` ends: before the next line break, or at the end."""
    ends = [i for i in (sql.find("\n", start), sql.find("\r", start)) if i >= 0]
    return min(ends, default=len(sql))
