"""Who owns a path according to a CODEOWNERS file, as GitHub reads it (pure).

Each line is a pattern and its owners (``@user``, ``@org/team`` or an e-mail address); the
last line whose pattern matches a path decides its owners. Patterns follow gitignore: a
leading or inner ``/`` anchors at the repository root, otherwise the pattern matches at any
depth; ``*`` stays within one directory, ``**`` crosses them; a pattern naming a directory
owns everything under it.
"""

from __future__ import annotations

import re

#: Where GitHub looks for the file, in its order.
LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


def owners(text: str, path: str) -> tuple[str, ...]:
    """The owners of ``path`` (relative to the repository root), as written, in file order;
    () when no line matches or the last match names nobody."""
    found: tuple[str, ...] = ()
    for line in text.splitlines():
        fields = _fields(line)
        if not fields:
            continue
        pattern, names = fields[0], fields[1:]
        if _compile(pattern).match(path.lstrip("/")):
            found = tuple(names)
    return found


def _fields(line: str) -> list[str]:
    fields = []
    for field in line.strip().split():
        if field.startswith("#"):
            break  # the rest of the line is a comment
        fields.append(field.replace("\\#", "#"))
    return fields


def _compile(pattern: str) -> re.Pattern[str]:
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    directory = pattern.endswith("/")
    body = pattern.strip("/")
    out, i = [], 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    below = "/.*" if directory else "(?:/.*)?"
    return re.compile(f"^{prefix}{''.join(out)}{below}$")
