"""What merging a pull request does to production, told from its plan (pure).

The plan carries the production config now and after merge; who is champion and who is
challenger at what share, before and after, gives the kind of change a reviewer is asked to
approve: the first model, a new challenger, a rollout step, a replaced challenger, a removed
challenger, a promotion, a rollback, or a change that leaves the models as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import yaml
from pydantic import ValidationError

from bot.core.domain import Plan
from bot.core.production_config import ProductionConfig

Kind = Literal["first", "new-challenger", "rollout-step", "replace-challenger",
               "remove-challenger", "promotion", "rollback", "update"]


@dataclass(frozen=True)
class Model:
    """A model production serves: its experiment, its artifact and recorded metrics."""

    experiment_id: str
    artifact: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Serving:
    """Who serves production: the champion, and the challenger with its share."""

    champion: Model | None
    challenger: Model | None = None
    share: int | None = None  # the challenger's percent of traffic

    def weight(self, variant: str) -> int | None:
        """The percent of traffic ``variant`` ("champion", "challenger") receives."""
        if variant == "challenger":
            return self.share
        if self.champion is None:
            return None
        return 100 - (self.share or 0)


@dataclass(frozen=True)
class Effect:
    """What merging changes in who serves production."""

    kind: Kind
    before: Serving
    after: Serving

    def model_named(self, artifact: str) -> Model | None:
        """The model of ``artifact`` among those serving before or after."""
        for serving in (self.before, self.after):
            for model in (serving.champion, serving.challenger):
                if model is not None and model.artifact == artifact:
                    return model
        return None


def _config(text: str | None) -> ProductionConfig | None:
    if not text:
        return None
    try:
        return ProductionConfig.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError):
        return None


def serving(config: ProductionConfig | None) -> Serving:
    """Who serves production by ``config`` (nobody when there is none)."""
    if config is None:
        return Serving(None)
    champion = config.champion
    current = (Model(champion.experiment_id, champion.model_artifact, dict(champion.metrics))
               if champion is not None else None)
    share = config.challenger_traffic_percent
    if share is None or share >= 100:
        return Serving(current)
    challenger = Model(config.experiment_id, config.model_artifact, dict(config.metrics))
    return Serving(current, challenger, share)


def effect(plan: Plan) -> Effect:
    """The kind of change merging ``plan`` makes, with who serves before and after."""
    before = serving(_config(plan.config_before))
    after = serving(_config(plan.config_after))
    return Effect(_kind(before, after, plan.artifact), before, after)


def _artifact(model: Model | None) -> str | None:
    return model.artifact if model is not None else None


def _kind(before: Serving, after: Serving, candidate: str) -> Kind:
    if before.champion is None:
        return "first"
    if _artifact(before.champion) != _artifact(after.champion):
        return "promotion" if _artifact(after.champion) == candidate else "rollback"
    was, now = _artifact(before.challenger), _artifact(after.challenger)
    if was is None:
        return "update" if now is None else "new-challenger"
    if now is None:
        return "remove-challenger"
    if was != now:
        return "replace-challenger"
    return "rollout-step" if before.share != after.share else "update"


def judged_against_itself(plan: Plan) -> bool:
    """The candidate is the champion's own model: its comparison shows nothing."""
    return plan.champion.model_artifact is not None and \
        plan.champion.model_artifact == plan.artifact
