"""Desired versus live state, as the changes merging would make, per built-in resource
(pure); ``bot.flows.resources`` puts them together in apply's order."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.desired_state import ssm_values
from bot.core.domain import Change, EndpointSpec, LiveState
from bot.core.production_config import ProductionConfig


@dataclass(frozen=True)
class VariantValue:
    """An endpoint change's value read back: the variant's model, share and instances."""

    model: str  # s3:// URI of model.tar.gz
    weight: int  # percent of traffic
    instances: str  # "1x ml.m5.xlarge"


_VARIANT = re.compile(r"^(?P<model>\S+) @ (?P<weight>\d+)% \((?P<instances>[^)]*)\)$")


def _variants(spec: EndpointSpec | None) -> dict[str, str]:
    if spec is None:
        return {}
    return {
        v.name: f"{v.model_data_url} @ {v.weight}% ({v.instance_count}x {v.instance_type})"
        for v in spec.variants
    }


def variant_value(value: object) -> VariantValue | None:
    """An endpoint change's ``before`` or ``after`` (written by ``_variants``) read back;
    None when absent or of another form."""
    found = _VARIANT.match(str(value)) if value is not None else None
    if found is None:
        return None
    return VariantValue(found["model"], int(found["weight"]), found["instances"])


def ssm_changes(desired: dict[str, str], live: LiveState, prefix: str) -> list[Change]:
    applied = ssm_values(live.config.hyperparameters) if live.config is not None else None
    return [
        Change("ssm", f"{prefix}/{name}", live.ssm.get(name), desired.get(name),
               drift=applied is not None and applied.get(name) != live.ssm.get(name))
        for name in sorted(set(desired) | set(live.ssm))
        if desired.get(name) != live.ssm.get(name)
    ]


def config_changes(desired: ProductionConfig, live: LiveState, uri: str) -> list[Change]:
    before = live.config.model_dump(mode="json") if live.config is not None else {}
    after = desired.model_dump(mode="json")
    return [
        Change("s3-config", f"{uri}#{field}", before.get(field), after.get(field))
        for field in after
        if before.get(field) != after.get(field)
    ]


def endpoint_changes(desired: EndpointSpec | None, live: LiveState) -> list[Change]:
    if desired is None:
        return []
    name = desired.endpoint_name
    before, after = _variants(live.endpoint), _variants(desired)
    applied = live.config.challenger_traffic_percent if live.config is not None else None
    live_share = live.endpoint.variant("challenger") if live.endpoint else None
    drift = live.config is not None and (live_share.weight if live_share else None) != applied
    return [
        Change("endpoint", f"{name}/{variant}", before.get(variant), after.get(variant), drift)
        for variant in sorted(set(before) | set(after))
        if before.get(variant) != after.get(variant)
    ]


#: Production config fields a plan cannot know before merge (who approved): apply writes
#: them, but they are not changes the reviewer approves, so they are not counted.
PLACEHOLDER_FIELDS = ("approvers", "approval_source")


def counted(found: tuple[Change, ...]) -> tuple[Change, ...]:
    """The changes a reviewer approves: ``found`` without the placeholder fields, so that
    plan's count is what apply changes."""
    return tuple(c for c in found if not (
        c.target == "s3-config" and c.key.rsplit("#", 1)[-1] in PLACEHOLDER_FIELDS))
