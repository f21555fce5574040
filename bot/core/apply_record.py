"""The apply record: what apply did at one commit, kept in S3 as the apply's write-ahead log,
and its codec (``to_bytes`` / ``from_bytes``: JSON, format-versioned).

Every resource writes its intent into ``steps`` (the changes it is about to make, the names of
the backup or archive it is about to take) before it acts, and the record is saved before
the first AWS write of that step. A run killed at any point is resumed by the next one with
the same steps: it reports every change of the apply, whoever made it, and finds the backup
and archive it named instead of taking a second one.

Format 1 (no ``format`` field: the records stored before) is still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError

from bot.core import names
from bot.core.domain import Approval, Change
from bot.errors import BotError, validation_reasons

FORMAT = 2

Status = Literal["in-progress", "complete", "failed"]
StepState = Literal["intent", "done"]


@dataclass(frozen=True)
class ResourceStep:
    """One resource's entry in the log: ``intent`` is written before it acts, ``done`` after.

    ``changes`` are the changes of this apply on that resource (their ``before`` from before
    the apply's first write); ``details`` what it recorded: names it chose before acting
    (``backup_key``, ``archive_key``) and what it found after (a version, an ARN, ...).
    """

    kind: str
    state: StepState
    changes: tuple[Change, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyRecord:
    """What apply did at ``commit`` for one target (``applies/<commit>.json``)."""

    target: str
    path: str
    commit: str
    status: Status
    started_at: str  # when this apply began (ISO 8601, UTC): kept by a resumed run
    updated_at: str
    tag: str  # names this apply's backup and archive (``bot.core.names.apply_tag``)
    approval: Approval
    before: str | None = None
    request_commit: str | None = None
    requested_by: str | None = None
    content_sha256: str | None = None  # None: the request file was deleted
    experiment_id: str | None = None
    model_artifact: str | None = None
    plan_digest: str | None = None  # the plan apply used (plans/sha256/<digest>/)
    pull_request: int | None = None
    retired: bool = False
    caught_up: str | None = None
    steps: tuple[ResourceStep, ...] = ()  # this apply's log, one entry per resource, in order
    # Every change, drift and backup of every apply of this commit (an apply of a commit
    # applied before, e.g. to overwrite drift, adds to them):
    changes: tuple[Change, ...] = ()
    drift: tuple[Change, ...] = ()
    backup_keys: tuple[str, ...] = ()
    commented: bool = False
    finished_at: str | None = None
    error: str | None = None
    format: int = FORMAT

    def step(self, kind: str) -> ResourceStep | None:
        return next((s for s in self.steps if s.kind == kind), None)

    def with_step(self, step: ResourceStep) -> ApplyRecord:
        """This record with ``step`` in place of the step of its kind (appended if new)."""
        kinds = [s.kind for s in self.steps]
        steps = list(self.steps)
        if step.kind in kinds:
            steps[kinds.index(step.kind)] = step
        else:
            steps.append(step)
        return replace(self, steps=tuple(steps))

    def detail(self, name: str) -> Any:
        """A recorded detail by name, from whichever step recorded it (None if none)."""
        return next((s.details[name] for s in self.steps
                     if s.details.get(name) is not None), None)

    @property
    def finished(self) -> bool:
        return self.status == "complete"


for _stored in (ResourceStep, ApplyRecord):
    setattr(_stored, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010

_ADAPTER: TypeAdapter[ApplyRecord] = TypeAdapter(ApplyRecord)


def to_json(record: ApplyRecord) -> dict[str, Any]:
    dumped: dict[str, Any] = _ADAPTER.dump_python(record, mode="json")
    return dumped


def to_bytes(record: ApplyRecord) -> bytes:
    return json.dumps(to_json(record), indent=2, sort_keys=True).encode()


def from_json(value: object, where: str) -> ApplyRecord:
    """A stored record as the bot reads it (format 1 converted); a clear error naming
    ``where`` otherwise."""
    if not isinstance(value, dict):
        raise BotError(f"{where}: an apply record must be a JSON object")
    document = value if "format" in value else _from_format_1(value)
    if document.get("format") != FORMAT:
        raise BotError(f"{where}: apply record format {document.get('format')!r} is not one "
                       f"this bot reads (1 or {FORMAT}); update promotion-bot")
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as error:
        reasons = validation_reasons(error.errors(), "(record)", limit=5)
        raise BotError(f"{where}: not a valid apply record: {reasons}") from None


def from_bytes(data: bytes, where: str) -> ApplyRecord:
    try:
        value = json.loads(data)
    except ValueError as error:
        raise BotError(f"{where}: not valid JSON: {error}") from None
    return from_json(value, where)


def _from_format_1(old: dict[str, Any]) -> dict[str, Any]:
    """A record of format 1 (a flat dict: ``run_changes`` and ``resumable_backup`` for the
    resumed run, the last run's facts at the top) in format 2's shape."""
    commit = str(old.get("commit", ""))
    started = str(old.get("started_at") or old.get("updated_at") or "")
    complete = old.get("status") == "complete"
    run = old.get("run_changes") or []
    by_kind: dict[str, list[Any]] = {}
    for change in run:
        if isinstance(change, dict):
            by_kind.setdefault(str(change.get("target")), []).append(change)
    backup = old.get("resumable_backup") or old.get("backup_key") or (
        None if complete else (old.get("backup_keys") or [None])[-1])
    details: dict[str, dict[str, Any]] = {
        "ssm": {"backup_key": backup},
        "s3-config": {"config_version": old.get("config_version"),
                      "config_archive": old.get("config_archive")},
        "pipeline": {"execution_arn": old.get("execution_arn"),
                     "execution_status": old.get("execution_status")},
        "endpoint": {"endpoint": old.get("endpoint"),
                     "endpoint_actions": old.get("endpoint_actions") or [],
                     "variants": old.get("variants") or []},
    }
    steps = []
    for kind in ("ssm", "s3-config", "pipeline", "endpoint"):
        found = {k: v for k, v in details[kind].items() if v not in (None, [])}
        if by_kind.get(kind) or found:
            steps.append({"kind": kind, "state": "done" if complete else "intent",
                          "changes": by_kind.get(kind, []), "details": found})
    approval = old.get("approval") or {}
    new = {
        "format": FORMAT,
        "tag": names.apply_tag(commit, started),
        "steps": steps,
        "approval": {"approvers": list(approval.get("approvers") or []),
                     "source": approval.get("source") or "commit-author"},
        "started_at": started,
        "updated_at": str(old.get("updated_at") or started),
    }
    kept = ("target", "path", "commit", "status", "before", "request_commit", "requested_by",
            "content_sha256", "experiment_id", "model_artifact", "plan_digest", "pull_request",
            "retired",
            "caught_up", "changes", "drift", "backup_keys", "commented", "finished_at",
            "error")
    return {**{k: old[k] for k in kept if k in old}, **new}
