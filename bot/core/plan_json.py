"""plan.json: a ``Plan`` as versioned JSON and back, the contract between plan and apply.

One place converts in both directions, so a renamed field fails mypy and the round-trip test
instead of a key lookup at apply time. ``format`` says which layout a file has; a file of
another format (an older bot's, or a newer one's) is refused with a clear message rather
than half read.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bot.core.domain import Plan
from bot.errors import BotError

#: The layout of plan.json this bot writes and reads. 1: the untyped layout before it had
#: a ``format`` field (top-level ``metrics``, ``curves``, ``changes``...). 2: before verdicts
#: (``improved`` was the point difference's sign, ``max_drop`` compared point differences).
#: 3: before ``identity`` (a plan was stored by its request content alone, bound to no pull
#: request head, data versions, champion or signing time: apply refuses it, re-plan).
FORMAT = 4


class UnreadablePlan(BotError):
    """A stored plan.json that this bot cannot trust to mean what it says."""


@functools.cache
def _adapter() -> TypeAdapter[Plan]:
    return TypeAdapter(Plan)


def to_json(plan: Plan) -> dict[str, Any]:
    """The plan as plan.json holds it: ``format`` first, then every field; ``passed`` is
    written for readers of the file and checked against the gates on reading."""
    body: dict[str, Any] = _adapter().dump_python(plan, mode="json")
    return {"format": FORMAT, **body, "passed": plan.passed}


def to_bytes(plan: Plan) -> bytes:
    return json.dumps(to_json(plan), indent=2).encode()


def from_json(data: object, where: str) -> Plan:
    """The plan stored in ``data`` (plan.json parsed), or ``UnreadablePlan`` saying why."""
    if not isinstance(data, dict):
        raise UnreadablePlan(f"{where}: plan.json must be a JSON object")
    found = data.get("format", 1)
    if found != FORMAT:
        raise UnreadablePlan(
            f"{where}: plan.json has format {found!r}, this promotion-bot reads format "
            f"{FORMAT}; re-run plan on the pull request to store it again"
        )
    body = {k: v for k, v in data.items() if k not in ("format", "passed")}
    try:
        plan = _adapter().validate_python(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise UnreadablePlan(
            f"{where}: plan.json: {field}: {first['msg']} ({error.error_count()} problem(s)); "
            "re-run plan to store it again"
        ) from None
    if data.get("passed") is not plan.passed:
        raise UnreadablePlan(f"{where}: plan.json says passed={data.get('passed')!r} but its "
                             f"gates say {plan.passed}; it was edited, re-run plan")
    return plan


def from_bytes(body: bytes, where: str) -> Plan:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise UnreadablePlan(f"{where}: plan.json is not valid JSON: {error}") from None
    return from_json(data, where)
