"""Where production lives: the one home of bucket names, paths and resource names.

Every name defaults to the seed notebook's and can be overridden with a
``PROMOTION_BOT_*`` environment variable. Names that depend on the target take
``{target}`` (the request file's stem, e.g. ``fraud-detection``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import Field
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
    #: The KMS asymmetric key (SIGN_VERIFY) that signs stored plans: only the plan role may
    #: use it for ``kms:Sign``; plan and apply use it for ``kms:Verify``.
    signing_key: str = "alias/{target}-promotion-bot-plans"
    signing_algorithm: str = "ECDSA_SHA_256"
    #: Approving reviews (on the merged head, by people with write access) apply requires.
    required_approvals: int = Field(default=1, ge=1)


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
    signing_key: str
    signing_algorithm: str

    @property
    def config_uri(self) -> str:
        return f"s3://{self.config_bucket}/{self.config_key}"


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()


#: A target's name is a request file's stem and becomes part of bucket, parameter and
#: endpoint names (and the bot's comment markers): lower-case letters and digits in words
#: joined by single '-', at most 63 characters.
TARGET_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")


def target(name: str, s: Settings | None = None) -> Target:
    """Resolve every ``{target}`` placeholder for the target ``name``."""
    if not TARGET_NAME.match(name):
        from bot.errors import BotError

        raise BotError(f"{name!r} cannot be a target: a request file's name (without .yaml) "
                       "must be lower-case letters, digits and '-', as AWS names need")
    s = s or settings()
    values: dict[str, Any] = {
        k: (v.format(target=name) if isinstance(v, str) else v)
        for k, v in s.model_dump().items()
        if k not in ("requests_dir", "required_approvals")
    }
    return Target(name=name, **values)
