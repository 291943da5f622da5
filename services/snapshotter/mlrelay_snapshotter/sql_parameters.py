"""BigQuery-style `@name` query parameters, bound (never formatted) on engines that spell them
differently. Only placeholders outside string literals, quoted identifiers and comments change."""

from __future__ import annotations

import re

_TOKENS = re.compile(
    r"""('(?:[^'\\]|\\.|'')*')"""  # single-quoted string
    r"""|("(?:[^"\\]|\\.)*")"""  # double-quoted string / identifier
    r"""|(`[^`]*`)"""  # backtick identifier
    r"""|(--[^\n]*)"""  # line comment
    r"""|(/\*.*?\*/)"""  # block comment
    r"""|@([A-Za-z_][A-Za-z0-9_]*)""",
    re.DOTALL,
)


def placeholders(sql: str) -> list[str]:
    """The `@name` parameters a query uses, in order of first use."""
    seen: list[str] = []
    for match in _TOKENS.finditer(sql):
        name = match.group(6)
        if name and name not in seen:
            seen.append(name)
    return seen


def to_dollar_placeholders(sql: str) -> str:
    """`@name` -> `$name` (DuckDB's named parameters), leaving literals untouched."""

    def swap(match: re.Match[str]) -> str:
        return f"${match.group(6)}" if match.group(6) else match.group(0)

    return _TOKENS.sub(swap, sql)
