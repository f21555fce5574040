"""The GitHub Actions event that started the run (``GITHUB_EVENT_PATH``): which pull request,
its head, which pushed range. Read from the runner's file, not from the API."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from bot.errors import BotError


def pr_number_from_event(env: Mapping[str, str] = os.environ) -> int | None:
    """The pull request number of the running workflow's event, or None outside a PR."""
    event = _event(env)
    pull = event.get("pull_request") if event else None
    if not isinstance(pull, dict):
        return None
    number = pull.get("number")
    return number if isinstance(number, int) else None


def pr_head_from_event(env: Mapping[str, str] = os.environ) -> str | None:
    """The head commit of the event's pull request (not GitHub's synthetic merge commit)."""
    event = _event(env)
    pull = event.get("pull_request") if event else None
    head = pull.get("head") if isinstance(pull, dict) else None
    sha = head.get("sha") if isinstance(head, dict) else None
    return sha if isinstance(sha, str) and sha else None


def push_range_from_event(env: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """The (before, after) commits of a push event; None for a new branch or outside a push."""
    event = _event(env)
    if not event:
        return None
    before, after = event.get("before"), event.get("after")
    if not isinstance(before, str) or not isinstance(after, str):
        return None
    if not before.strip("0") or not after.strip("0"):
        return None
    return before, after


def _event(env: Mapping[str, str]) -> dict[str, Any] | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            event = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise BotError(f"{path}: cannot read the GitHub event: {error}") from None
    return event if isinstance(event, dict) else None
