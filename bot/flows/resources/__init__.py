"""Every resource kind merging a request changes, registered in apply's order.

Adding a kind is one module implementing ``base.Resource`` and one line in ``REGISTRY``;
``Desired``, ``LiveState`` and ``Outcome`` hold one entry per registered kind, plan shows
its changes, apply reconciles it under the lock and logs it in the apply record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from bot.core.desired_state import Desired
from bot.core.domain import Change, LiveState
from bot.flows.resources import alarms, config, endpoint, model_registry, pipeline, ssm
from bot.flows.resources.base import Context, Resource

REGISTRY: list[Resource] = [
    ssm,
    config,
    pipeline,
    alarms,
    endpoint,
    model_registry,
]


def registry() -> tuple[Resource, ...]:
    return tuple(REGISTRY)


@contextlib.contextmanager
def registered(resource: Resource) -> Iterator[None]:
    """``resource`` registered last for the ``with`` block (a kind a test brings)."""
    REGISTRY.append(resource)
    try:
        yield
    finally:
        REGISTRY.remove(resource)


def desired_state(context: Context, live: LiveState) -> Desired:
    """Every resource's desired state, in order (a kind may build on the kinds before it)."""
    want: Desired = {}
    for resource in registry():
        want[resource.kind] = resource.desired(context, live, dict(want))
    return want


def read_live(context: Context, known: Mapping[str, Any] | None = None) -> LiveState:
    """What is live now for every resource (``known``: entries this run read already)."""
    found: dict[str, Any] = {}
    for resource in registry():
        if known is not None and resource.kind in known:
            found[resource.kind] = known[resource.kind]
        else:
            found[resource.kind] = resource.read(context)
    return LiveState(found)


def changes(context: Context, want: Desired, live: LiveState) -> tuple[Change, ...]:
    """Every change merging makes, in apply's order."""
    return tuple(change for resource in registry()
                 for change in resource.changes(context, want.get(resource.kind), live))
