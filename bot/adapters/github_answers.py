"""Reading GitHub's answers for ``bot.adapters.github``: which refusals are rate limits and
how long they ask to wait, the one-line reason of an error, the ``Link`` header's next page,
a user's login, a comment cut to what GitHub accepts (pure)."""

from __future__ import annotations

import email.utils
import time
from typing import Any
from urllib.parse import urlparse

# GitHub refuses longer comments with 422 instead of truncating them.
MAX_COMMENT = 65_536
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def secs(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"


def said(error: Any) -> str:
    data = error.data if isinstance(error.data, dict) else {}
    said = " ".join(str(data.get("message") or getattr(error, "message", "") or "").split())
    return f": {said[:200]}" if said else ""


def rate_limit(error: Any) -> str | None:
    """"primary" or "secondary" when ``error`` is GitHub refusing for a rate limit, else None.

    GitHub answers 403 or 429: a primary limit has ``X-RateLimit-Remaining: 0``, a secondary
    one says so in its message (or sends ``Retry-After``).
    """
    status = int(error.status)
    if status not in (403, 429):
        return None
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    data = error.data if isinstance(error.data, dict) else {}
    message = " ".join(str(data.get("message") or "").lower().split())
    if "secondary rate limit" in message or message.endswith(
            ("please retry your request again later.",
             "please wait a few minutes before you try again.")):
        return "secondary"
    if message.startswith("api rate limit exceeded") or headers.get(
            "x-ratelimit-remaining") == "0":
        return "primary"
    if "retry-after" in headers or status == 429:
        return "secondary"
    return None


def seconds_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def fit_comment(text: str) -> str:
    if len(text) <= MAX_COMMENT:
        return text
    note = "\n\n… (truncated: GitHub comments are limited to 65,536 characters; see the artifact)"
    return text[: MAX_COMMENT - len(note)] + note


def login_of(user: Any) -> str | None:
    return str(user.login) if user is not None and user.login else None


def next_link(link: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None."""
    for part in (link or "").split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel:
            return url.strip().strip("<>")
    return None


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in LOOPBACK
