"""Desired versus live state, as the list of changes merging would make (pure)."""

from __future__ import annotations

from bot.core.desired_state import Desired, ssm_values
from bot.core.domain import Change, EndpointSpec, LiveState


def _variants(spec: EndpointSpec | None) -> dict[str, str]:
    if spec is None:
        return {}
    return {
        v.name: f"{v.model_data_url} @ {v.weight}% ({v.instance_count}x {v.instance_type})"
        for v in spec.variants
    }


def ssm_changes(desired: dict[str, str], live: LiveState, prefix: str) -> list[Change]:
    applied = ssm_values(live.config.hyperparameters) if live.config is not None else None
    return [
        Change("ssm", f"{prefix}/{name}", live.ssm.get(name), desired.get(name),
               drift=applied is not None and applied.get(name) != live.ssm.get(name))
        for name in sorted(set(desired) | set(live.ssm))
        if desired.get(name) != live.ssm.get(name)
    ]


def config_changes(desired: Desired, live: LiveState, uri: str) -> list[Change]:
    before = live.config.model_dump(mode="json") if live.config is not None else {}
    after = desired.config.model_dump(mode="json")
    return [
        Change("s3-config", f"{uri}#{field}", before.get(field), after.get(field))
        for field in after
        if before.get(field) != after.get(field)
    ]


def endpoint_changes(desired: Desired, live: LiveState) -> list[Change]:
    if desired.endpoint is None:
        return []
    name = desired.endpoint.endpoint_name
    before, after = _variants(live.endpoint), _variants(desired.endpoint)
    applied = live.config.challenger_traffic_percent if live.config is not None else None
    live_share = live.endpoint.variant("challenger") if live.endpoint else None
    drift = live.config is not None and (live_share.weight if live_share else None) != applied
    return [
        Change("endpoint", f"{name}/{variant}", before.get(variant), after.get(variant), drift)
        for variant in sorted(set(before) | set(after))
        if before.get(variant) != after.get(variant)
    ]


def changes(desired: Desired, live: LiveState, ssm_prefix: str, config_uri: str
            ) -> tuple[Change, ...]:
    """Every change merging makes, in apply's order: SSM, config, pipeline, endpoint."""
    found = ssm_changes(desired.ssm, live, ssm_prefix)
    found += config_changes(desired, live, config_uri)
    if desired.pipeline_execution and not live.execution_exists:
        found.append(Change("pipeline", desired.pipeline_execution, None, "start execution"))
    found += endpoint_changes(desired, live)
    return tuple(found)



#: Production config fields a plan cannot know before merge (who approved): apply writes
#: them, but they are not changes the reviewer approves, so they are not counted.
PLACEHOLDER_FIELDS = ("approvers", "approval_source")


def counted(found: tuple[Change, ...]) -> tuple[Change, ...]:
    """The changes a reviewer approves: ``found`` without the placeholder fields, so that
    plan's count is what apply changes."""
    return tuple(c for c in found if not (
        c.target == "s3-config" and c.key.rsplit("#", 1)[-1] in PLACEHOLDER_FIELDS))
