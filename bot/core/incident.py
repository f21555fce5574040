"""The watcher's brake: when it takes a challenger's traffic away, and the incident record that
says why (kept in S3, written once, with its codec ``to_bytes`` / ``from_bytes``).

An incident is one braking of the challenger that production's config commit put there: its
id is the target and that commit, so a watcher that runs again finds the same incident, the
same branch and the same revert pull request, and does nothing more. Only an alarm in ALARM
brakes; OK and INSUFFICIENT_DATA (a quiet variant, a fresh alarm) never do.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from bot.core.alarms import AlarmState
from bot.errors import BotError, validation_reasons

FORMAT = 1
#: The marker of the watcher's comment on the pull request whose change it braked (with
#: ``:<target>``: a pull request merges one commit, so it is braked at most once a target).
COMMENT_MARKER = "watch-brake"


@dataclass(frozen=True)
class Incident:
    """Why the watcher braked ``target``'s challenger (``incidents/<target>/<commit>.json``)."""

    target: str
    commit: str  # the production config's commit: what raised the challenger's traffic
    pull_request: int | None  # the pull request that merged it (the config's)
    model_artifact: str  # the challenger's model, taken out of traffic
    weight_before: int  # the challenger's live share when the watcher braked, percent
    alarm: str
    state: str
    reason: str
    alarm_updated: str | None  # when the alarm entered its state (ISO 8601)
    braked_at: str  # when the watcher braked (ISO 8601, UTC)
    history: tuple[str, ...] = ()  # the alarm's recent state changes, newest first
    format: int = FORMAT

    @property
    def id(self) -> str:
        return incident_id(self.target, self.commit)

    @property
    def branch(self) -> str:
        return revert_branch(self.target, self.commit)


setattr(Incident, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010
_ADAPTER: TypeAdapter[Incident] = TypeAdapter(Incident)


def incident_id(target: str, commit: str) -> str:
    """``<target>-<commit[:12]>``: one incident per challenger a config commit put there."""
    return f"{target}-{commit[:12]}"


def revert_branch(target: str, commit: str) -> str:
    """The branch of the incident's revert pull request."""
    return f"promotion-bot/brake-{incident_id(target, commit)}"


def brakes(weight: int | None, states: dict[str, AlarmState]) -> AlarmState | None:
    """The alarm that brakes a challenger serving ``weight`` percent: the first in ALARM by
    name; None when the challenger serves nothing or no alarm is in ALARM."""
    if not weight or weight <= 0:
        return None
    firing = sorted((s for s in states.values() if s.state == "ALARM"), key=lambda s: s.name)
    return firing[0] if firing else None


def new(*, target: str, commit: str, pull_request: int | None, model_artifact: str,
        weight_before: int, alarm: AlarmState, history: tuple[str, ...],
        now: dt.datetime) -> Incident:
    updated = alarm.updated.astimezone(dt.UTC).isoformat() if alarm.updated else None
    return Incident(
        target=target, commit=commit, pull_request=pull_request, model_artifact=model_artifact,
        weight_before=weight_before, alarm=alarm.name, state=alarm.state, reason=alarm.reason,
        alarm_updated=updated, braked_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        history=history)


#: How the plan's note on a brake begins (a stored plan's old note is replaced by a new one).
BRAKE_NOTE = "The watcher braked the challenger"


def summary(incident: Incident) -> str:
    """The plan's note while a brake stands: when, which alarm, the revert's branch."""
    original = f" (pull request #{incident.pull_request})" if incident.pull_request else ""
    return (f"{BRAKE_NOTE} at {incident.braked_at}: alarm {incident.alarm} in "
            f"{incident.state}; its traffic is 0 % (drift) until the revert of "
            f"{incident.commit[:12]}{original}, the pull request of branch {incident.branch}, "
            "is merged.")


def with_brake(notes: tuple[str, ...], incident: Incident | None) -> tuple[str, ...]:
    """``notes`` without an earlier brake note, with this brake's when one stands."""
    kept = tuple(n for n in notes if not n.startswith(BRAKE_NOTE))
    return kept if incident is None else (*kept, summary(incident))


def pull_title(incident: Incident) -> str:
    return (f"Revert {incident.commit[:12]}: {incident.target}'s challenger braked "
            f"({incident.alarm} in {incident.state})")


def pull_body(incident: Incident) -> str:
    """The revert pull request's body: what the watcher did and the alarm's state, reason and
    recent history (untrusted text: the reason is CloudWatch's, kept in a code block)."""
    original = f" (pull request #{incident.pull_request})" if incident.pull_request else ""
    lines = [
        f"The watcher braked **{incident.target}**'s challenger at {incident.braked_at}: "
        f"alarm `{incident.alarm}` is in {incident.state}. The challenger's traffic went from "
        f"{incident.weight_before} % to 0 % and the champion serves everything; its model "
        "is Rejected in the Model Registry.",
        "",
        f"This pull request reverts {incident.commit}{original}, the change that gave the "
        "challenger its traffic. Until it is merged, plan shows the brake as drift.",
        "",
        "### Alarm",
        f"- state: {incident.state}" + (f" since {incident.alarm_updated}"
                                       if incident.alarm_updated else ""),
        "- reason:",
        "",
        "```text",
        _fence_safe(incident.reason or "(none given)"),
        "```",
    ]
    if incident.history:
        lines += ["", "### Recent history (newest first)", "", "```text",
                  *(_fence_safe(h) for h in incident.history), "```"]
    lines += ["", f"Incident `{incident.id}`."]
    return "\n".join(lines)


def original_comment(incident: Incident, revert_pull: int | None, revert_url: str | None
                     ) -> str:
    """The comment on the pull request whose change was braked."""
    where = f"[#{revert_pull}]({revert_url})" if revert_pull and revert_url else (
        f"#{revert_pull}" if revert_pull else "a revert pull request (not opened yet)")
    return (f"**The watcher braked this change's challenger** at {incident.braked_at}: alarm "
            f"`{incident.alarm}` is in {incident.state}. Its traffic is 0 % (was "
            f"{incident.weight_before} %); {where} reverts this change.")


def _fence_safe(text: str) -> str:
    return text.replace("```", "'''")


def to_bytes(incident: Incident) -> bytes:
    return json.dumps(_ADAPTER.dump_python(incident, mode="json"), indent=2,
                      sort_keys=True).encode()


def from_bytes(data: bytes, where: str) -> Incident:
    """A stored incident; a clear error naming ``where`` otherwise."""
    try:
        value: Any = json.loads(data)
    except ValueError as error:
        raise BotError(f"{where}: not valid JSON: {error}") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise BotError(f"{where}: not an incident record of format {FORMAT}")
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as error:
        reasons = validation_reasons(error.errors(), "(record)", limit=5)
        raise BotError(f"{where}: not a valid incident record: {reasons}") from None
