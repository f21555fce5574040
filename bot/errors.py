"""The errors a user can cause. The CLI prints them as one line each; anything else is a bug."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: where it is and why it is wrong."""

    path: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.field or '(document)'}: {self.reason}"


class BotError(Exception):
    """A mistake in the user's input or environment, reported without a traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(BotError):
    """A request file (or several) failed validation; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class NotPlanned(BotError):
    """Apply was asked to deploy content that has no stored passing plan."""

    exit_code = 1


class LockHeld(BotError):
    """Another apply holds the target's lock; ``commit`` is the commit it applies, if known."""

    exit_code = 1

    def __init__(self, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.commit = commit


class LockLost(LockHeld):
    """This apply held the lock and lost it (expired and taken over, or broken): it stopped
    before writing anything more, and leaves the outcome to whoever holds the lock now."""


class Stopped(BotError):
    """Apply was asked to stop (SIGTERM: a cancelled job): it stopped before its next write
    or wait, releasing the lock; a rerun resumes it."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports a process the signal ended


class RolloutRefused(BotError):
    """Apply was asked for a staged-rollout step the rollout rules forbid."""

    exit_code = 1


class NotApproved(BotError):
    """Apply found the merged change not approved by GitHub's rules while on GitHub."""

    exit_code = 1


class AwsError(BotError):
    """AWS refused a call, failed it or could not be reached. ``explanation`` is one line
    saying which call and why (no traceback, no credentials); ``bot.adapters.aws.clients``
    raises it for every call of the bot's boto3 clients."""

    explanation = ""


def first_line(error: BaseException) -> str:
    """An error's message reduced to one line for people (its type when it has no message)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def validation_reasons(errors: Sequence[Mapping[str, Any]], whole: str,
                       limit: int | None = None) -> str:
    """pydantic's ``ValidationError.errors()`` as one line: ``field.path: why`` each, ``whole``
    naming an error of the whole document, the first ``limit`` of them (all when None)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}"
                     for e in errors[:limit])

