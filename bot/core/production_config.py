"""The production config YAML in S3: what is in production and who approved it."""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.core.hyperparameters import Hyperparameters


class ChampionModel(BaseModel):
    """The model the champion variant serves, kept so a promotion can be rolled back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: str = Field(description="The experiment that produced this model.")
    model_artifact: str = Field(pattern=r"^s3://[^/]+/.+", description="Its model.tar.gz.")
    model_key: str | None = Field(default=None, description="Hash of what determined it.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Its metrics on the test set when it was reviewed."
    )


class ProductionConfig(BaseModel):
    """The document at ``s3://<target>-config/production-model-config.yaml``.

    Written by apply after validating against ``schemas/production-config.schema.json``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(description="The model target, the request file's stem.")
    algorithm: str = Field(description="Training algorithm.")
    experiment_id: str = Field(description="The experiment whose configuration is promoted.")
    hyperparameters: Hyperparameters = Field(description="Promoted hyperparameters.")
    metrics: dict[str, float] = Field(description="Test-set metrics of the reviewed model.")
    test_date: str = Field(description="ISO 8601 time the candidate was evaluated.")
    approvers: list[str] = Field(min_length=1, description="Who approved the promotion.")
    approval_source: str = Field(description="'github-reviews' or 'commit-author'.")
    commit: str = Field(pattern=r"^[0-9a-f]{7,40}$", description="The applied commit.")
    pull_request: int | None = Field(default=None, description="The merged pull request.")
    content_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Hash of the request content that was planned."
    )
    model_artifact: str = Field(pattern=r"^s3://[^/]+/.+", description="Reviewed model.tar.gz.")
    model_key: str | None = Field(default=None, description="Hash of what determined the model.")
    champion: ChampionModel | None = Field(
        default=None, description="The model the production endpoint's champion serves."
    )
    previous_champion: ChampionModel | None = Field(
        default=None, description="The champion before the last promotion, for rollback."
    )
    challenger_traffic_percent: int | None = Field(
        default=None, ge=1, le=100, description="The challenger's share; absent when none."
    )


def champion_identity(config: ProductionConfig | None) -> str:
    """Who a candidate is judged against while production is ``config``: the champion's model
    artifact when the config records one, else the config's recorded metrics, else the seed
    notebook's baseline. A stored evaluation holds, and a plan may be applied, while it holds.
    """
    if config is None:
        return "seed-baseline"
    if config.champion is not None:
        return config.champion.model_artifact
    return f"recorded:{config.content_sha256}"


def to_yaml(config: ProductionConfig) -> str:
    """The config as written to S3: YAML, keys in the model's order, no Python tags."""
    return yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False)
