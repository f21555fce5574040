"""The one small interface every resource kind implements, and what it is given.

A resource is one kind of thing in AWS that merging a request changes (SSM parameters, the
production config, the retraining pipeline, the endpoint, ...). Its module says, for its
kind: the desired state (from the request and its plan), how to read it live, the changes
between the two (pure), how to apply them, and how to describe what it did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.domain import Approval, Change, Fact, LiveState, Plan
from bot.core.request import Request
from bot.errors import BotError
from bot.settings import Target


class StepFailed(BotError):
    """A resource's apply that ended without its change (e.g. AWS rolled it back): the
    reconciliation records ``details`` in the apply record's step, then the apply fails with
    the message. The resource has already put production back in one consistent state."""

    exit_code = 3

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


@dataclass(frozen=True)
class Context:
    """What a resource's desired state derives from. ``request`` None: the request file
    was deleted (the challenger retires, the champion stays)."""

    target: Target
    request: Request | None
    plan: Plan | None
    commit: str
    pull_request: int | None = None
    approval: Approval = field(default_factory=lambda: Approval((), "pending"))
    retrain_commit: str | None = None  # names the retraining execution (default: commit)
    #: What the change reverts, for people ("<commit[:12]> <subject>"; None: not a revert).
    reverts: str | None = None


@dataclass(frozen=True)
class Step:
    """One resource's apply, as the reconciliation gives it.

    ``planned``: the changes from live to ``want`` now; ``details``: what the log holds for
    this resource already (names chosen before acting, also by an interrupted run, and what
    ``intend`` returned); ``guard`` runs before every write and ``alive`` before every wait
    (the lock's checks); ``desired`` holds every resource's desired state.
    """

    context: Context
    want: Any
    live: LiveState
    desired: dict[str, Any]
    planned: tuple[Change, ...]
    details: dict[str, Any]
    tag: str
    guard: Callable[[], None]
    alive: Callable[[], None]
    now: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> Target:
        return self.context.target


class Resource(Protocol):
    """One resource kind (registered in ``bot.flows.resources.REGISTRY``, in apply's order)."""

    kind: str

    def read(self, context: Context) -> Any:
        """What is live now."""

    def desired(self, context: Context, live: LiveState, earlier: dict[str, Any]) -> Any:
        """The state merging makes true; None: leave this resource as it is. ``earlier``:
        the desired states of the kinds registered before this one."""

    def changes(self, context: Context, want: Any, live: LiveState) -> list[Change]:
        """From ``live`` to ``want`` (pure)."""

    def intend(self, step: Step) -> dict[str, Any]:
        """Names this apply chooses before it acts (recorded before the first write): keep
        those in ``step.details`` (an interrupted run's), else derive them from ``step.tag``."""

    def apply(self, step: Step) -> dict[str, Any]:
        """Make live match ``step.want`` (idempotent, resumable); the details to record.
        Raises ``StepFailed`` (with details to record) when the change did not take."""

    def describe(self, details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
        """What apply did, for people: facts, and further terminal lines."""
