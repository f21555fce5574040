"""Text from a request (or anything else a branch author controls) in a GitHub comment,
rendered inert (pure).

Every string that did not come from the bot itself goes through one of these before it is
put into a plan, failure or apply comment:

- ``text``: literal text in a paragraph or table cell: HTML (``<img>``, ``<!--``) and
  Markdown (headings, emphasis, links, tables) escaped, ``@`` mentions broken with a
  zero-width joiner so nobody is notified, on one line, cut to a length;
- ``quote``: the same for several lines, as a block quote;
- ``code``: an inline code span that no backtick inside can close;
- ``block``: a fenced code block that no fence inside can close.
"""

from __future__ import annotations

import re
import unicodedata

#: Placed after ``@`` so that GitHub does not read a mention (``@org/team``).
ZWJ = "\u200d"
#: ASCII punctuation Markdown gives a meaning to; a backslash makes each literal.
_MARKDOWN = frozenset("\\`*_{}[]()#+-.!|~=:/$")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029\x85\v\f]")


def _printable(value: str, keep_newlines: bool) -> str:
    """Control and format characters (bidi overrides, zero-width...) as spaces."""
    out = []
    for char in value:
        if keep_newlines and char == "\n":
            out.append(char)
        elif char == "\t" or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _cut(value: str, limit: int | None) -> str:
    if limit is None or len(value) <= limit:
        return value
    return value[: max(limit - 1, 0)] + "…"


def text(value: object, limit: int | None = 300) -> str:
    """``value`` as literal text on one line (a paragraph or a table cell)."""
    flat = _printable(_LINE_BREAKS.sub(" ", str(value)), keep_newlines=False)
    return _escape(_cut(flat, limit))


def quote(value: object, limit: int | None = 2000) -> str:
    """``value`` as literal text in a block quote, line breaks kept."""
    lines = _printable(_LINE_BREAKS.sub("\n", _cut(str(value), limit)), keep_newlines=True)
    return "\n".join(f"> {_escape(line)}".rstrip() for line in lines.split("\n"))


def code(value: object, limit: int | None = 300, *, cell: bool = False) -> str:
    """``value`` as an inline code span (one line); ``cell``: inside a table row, where ``|``
    must be escaped even in code."""
    flat = _cut(_printable(_LINE_BREAKS.sub(" ", str(value)), keep_newlines=False), limit)
    if cell:
        flat = flat.replace("|", "\\|")
    fence = "`" * (_longest_run(flat, "`") + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def block(value: object, language: str = "") -> str:
    """``value`` as a fenced code block that nothing inside can end early."""
    body = _printable(_LINE_BREAKS.sub("\n", str(value)), keep_newlines=True)
    fence = "`" * max(3, _longest_run(body, "`") + 1)
    return f"{fence}{language}\n{body.rstrip(chr(10))}\n{fence}"


def _escape(value: str) -> str:
    out = []
    for char in value:
        if char in _HTML:
            out.append(_HTML[char])
        elif char == "@":
            out.append("@" + ZWJ)
        elif char in _MARKDOWN:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _longest_run(value: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", value)
    return max((len(r) for r in runs), default=0)
