"""The request's text values that point outside it or are shown to reviewers: data
locations and printable text, checked by the models and described for editors."""

from __future__ import annotations

import unicodedata

#: ``check_data_uri`` as a JSON Schema pattern (ECMA 262, which editors use, and Python's re
#: read it alike), so that editors refuse what validate refuses: no control or common
#: invisible characters, then s3://BUCKET/KEY, or a relative path with no other scheme,
#: no drive letter and no '..' segment. tests/test_schemas.py holds the two to the same answers.
DATA_URI_PATTERN = (
    r"^(?![^\n]*[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff])"
    r"(?:s3://[^/]+/.+"
    r"|(?!s3://)(?![/\\~])(?!.:)(?!(?:file|http|https|ftp|data):)(?!.*://)"
    r"(?!(?:.*[/\\])?\.\.(?:[/\\]|$))(?=.*\S).+)$"
)


def check_printable(value: str, allowed: str = "") -> None:
    """Refuse control and invisible format characters (a line break, a bidi override...),
    except those in ``allowed``: a value shown to reviewers must look like what it is."""
    for char in value:
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"must not contain control characters such as {char!r}")


def check_data_uri(value: str) -> None:
    """Refuse anything but ``s3://bucket/key`` or a relative path that stays in the repo."""
    check_printable(value)
    if value.startswith("s3://"):
        bucket, _, key = value[len("s3://"):].partition("/")
        if not bucket or not key:
            raise ValueError("an s3:// URI needs a bucket and a key: s3://BUCKET/KEY")
        return
    if "://" in value or value.split(":", 1)[0] in ("file", "http", "https", "ftp", "data"):
        raise ValueError("must be an s3:// URI or a path inside the repository")
    if value.startswith(("/", "\\", "~")) or (len(value) > 1 and value[1] == ":"):
        raise ValueError("must be a path relative to the repository root, not absolute")
    if ".." in value.replace("\\", "/").split("/"):
        raise ValueError("must stay inside the repository ('..' is not allowed)")
    if not value.strip():
        raise ValueError("must not be empty")
