"""Where production lives: the one home of bucket names, paths and resource names.

Every name defaults to the seed notebook's and can be overridden with a
``PROMOTION_BOT_*`` environment variable. Names that depend on the target take
``{target}`` (the request file's stem, e.g. ``fraud-detection``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment-wide settings, read from the environment."""

    model_config = SettingsConfigDict(env_prefix="PROMOTION_BOT_", frozen=True)

    region: str = "us-east-1"
    requests_dir: str = "promotion-requests"
    ssm_prefix: str = "/{target}/hyperparameters"
    ssm_backup_prefix: str = "/{target}/backups/hyperparameters"
    config_bucket: str = "{target}-config"
    config_key: str = "production-model-config.yaml"
    config_archive_prefix: str = "archive/"
    artifacts_bucket: str = "{target}-models"
    artifacts_prefix: str = "promotion-bot"
    data_bucket: str = "{target}-data"
    state_machine_name: str = "{target}-retraining"
    endpoint_name: str = "{target}-production"
    sagemaker_role_arn: str = "arn:aws:iam::123456789012:role/{target}-sagemaker"
    xgboost_image: str = (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    lock_ttl_seconds: int = 1800
    #: The role SageMaker training jobs run as (backend: sagemaker); the plan passes it.
    training_role_arn: str = "arn:aws:iam::123456789012:role/{target}-sagemaker-training"
    #: Version of SageMaker's built-in XGBoost algorithm image that training jobs run.
    training_image_version: str = "3.0-5"
    #: The full image URI instead (empty: the region's image of that version, from sagemaker-core).
    training_image: str = ""


@dataclass(frozen=True)
class Target:
    """The AWS names of one model target, resolved from the settings."""

    name: str
    region: str
    ssm_prefix: str
    ssm_backup_prefix: str
    config_bucket: str
    config_key: str
    config_archive_prefix: str
    artifacts_bucket: str
    artifacts_prefix: str
    data_bucket: str
    state_machine_name: str
    endpoint_name: str
    sagemaker_role_arn: str
    xgboost_image: str
    lock_ttl_seconds: int
    training_role_arn: str
    training_image_version: str
    training_image: str

    @property
    def config_uri(self) -> str:
        return f"s3://{self.config_bucket}/{self.config_key}"


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()


def target(name: str, s: Settings | None = None) -> Target:
    """Resolve every ``{target}`` placeholder for the target ``name``."""
    s = s or settings()
    values: dict[str, Any] = {
        k: (v.format(target=name) if isinstance(v, str) else v)
        for k, v in s.model_dump().items()
        if k != "requests_dir"
    }
    return Target(name=name, **values)
