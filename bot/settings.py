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

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import BotError


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
    #: SageMaker's XGBoost container version that trains (``training.backend: sagemaker``)
    #: and serves every model on the endpoint; its image is the region's, from sagemaker-core.
    xgboost_image_version: str = "3.0-5"
    #: The full image URI instead, for training and serving (empty: looked up per region).
    xgboost_image: str = ""
    #: The KMS asymmetric key (SIGN_VERIFY) that signs stored plans: only the plan role may
    #: use it for ``kms:Sign``; plan and apply use it for ``kms:Verify``.
    signing_key: str = "alias/{target}-promotion-bot-plans"
    signing_algorithm: str = "ECDSA_SHA_256"
    #: Approving reviews (on the merged head, by people with write access) apply requires.
    required_approvals: int = Field(default=1, ge=1)
    #: Apply refuses a plan signed longer ago than this: re-plan to judge it against today.
    plan_max_age_days: float = Field(default=30.0, gt=0)

    # How long SageMaker may take to bring the endpoint InService before apply gives up.
    endpoint_wait_seconds: float = 3600.0
    # The apply lock outlives the longest wait, and a heartbeat renews it while apply works.
    lock_ttl_seconds: int = 5400
    lock_heartbeat_seconds: float = 60.0

    # AWS: one retry policy and bounded timeouts for every boto3 client.
    aws_retry_mode: str = "adaptive"
    aws_max_attempts: int = 6
    aws_connect_timeout_seconds: float = 5.0
    aws_read_timeout_seconds: float = 10.0
    # Attempts of one call that times out: a silent endpoint fails fast instead of per attempt.
    aws_timeout_attempts: int = 2

    # GitHub: the slug of the GitHub App whose installation token the bot's jobs use; the
    # bot's comments are those of its user ``<slug>[bot]``. Empty: the token's own login,
    # as GitHub's GraphQL ``viewer`` names it.
    app_slug: str = Field(default="", pattern=r"^[a-z0-9][a-z0-9-]*$|^$")
    # GitHub: how long one command may wait in all for rate limits, and how it retries.
    github_max_wait_seconds: float = 300.0
    github_secondary_wait_seconds: float = 60.0
    github_attempts: int = 5
    github_backoff_seconds: float = 1.0
    github_timeout_seconds: float = 15.0

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.lock_ttl_seconds <= self.endpoint_wait_seconds:
            raise ValueError(
                f"lock_ttl_seconds ({self.lock_ttl_seconds}) must be longer than "
                f"endpoint_wait_seconds ({self.endpoint_wait_seconds:g}): a lock that expires "
                "while apply waits lets a second apply take it over")
        if not 0 < self.lock_heartbeat_seconds * 3 <= self.lock_ttl_seconds:
            raise ValueError(
                f"lock_heartbeat_seconds ({self.lock_heartbeat_seconds:g}) must be positive and "
                f"at most a third of lock_ttl_seconds ({self.lock_ttl_seconds})")
        if self.aws_retry_mode not in ("standard", "adaptive", "legacy"):
            raise ValueError(f"aws_retry_mode must be standard, adaptive or legacy, not "
                             f"{self.aws_retry_mode!r}")
        for name in ("aws_max_attempts", "aws_timeout_attempts", "github_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        return self

    #: The role SageMaker training jobs run as (backend: sagemaker); the plan passes it.
    training_role_arn: str = "arn:aws:iam::123456789012:role/{target}-sagemaker-training"
    #: Local training reads a table whole, in one pass (the fastest), while its values
    #: (rows x columns x 8 bytes) fit in this many MiB; a larger one is read in batches
    #: into the binned matrix, about one byte a value, so memory stays flat as data grows.
    training_in_memory_mib: float = Field(default=512.0, ge=0)


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
    xgboost_image_version: str
    xgboost_image: str
    lock_ttl_seconds: int
    signing_key: str
    signing_algorithm: str
    training_role_arn: str
    lock_heartbeat_seconds: float = 60.0

    @property
    def config_uri(self) -> str:
        return f"s3://{self.config_bucket}/{self.config_key}"

    @property
    def xgboost_container(self) -> str:
        """Which XGBoost container trains and serves, without looking its URI up: the
        image set, else ``sagemaker-xgboost:<version>`` (the same in every region)."""
        return self.xgboost_image or f"sagemaker-xgboost:{self.xgboost_image_version}"


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process, read once from the environment (a bad value: BotError)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            ("PROMOTION_BOT_" + "_".join(map(str, e["loc"])).upper() + ": " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise BotError(f"settings: {problems}") from None


_TARGET_FIELDS = frozenset(Target.__dataclass_fields__) - {"name"}


#: A target's name is a request file's stem and becomes part of bucket, parameter and
#: endpoint names (and the bot's comment markers): lower-case letters and digits in words
#: joined by single '-', at most 63 characters.
TARGET_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")


#: Names a target's name becomes part of, and the longest each may be: S3 bucket names are 3
#: to 63 characters (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html),
#: SageMaker endpoint names at most 63
#: (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointInfo.html).
_NAME_LIMITS = {"config_bucket": ("S3 bucket", 63), "artifacts_bucket": ("S3 bucket", 63),
                "data_bucket": ("S3 bucket", 63), "endpoint_name": ("SageMaker endpoint", 63)}


def target_name_problem(name: str, s: Settings | None = None) -> str | None:
    """Why ``name`` (a request file's stem) cannot be a target, or None when it can: the one
    rule behind ``validate``, ``plan`` and ``apply``. Besides its own form, every AWS name
    it becomes part of (with these settings) must be short enough for its service."""
    if not TARGET_NAME.match(name):
        return (f"{name!r} cannot be a target: a request file's name (without .yaml) must be "
                "lower-case letters and digits in words joined by single '-', at most 63 "
                "characters, as AWS names need"
                + (f" (got {len(name)} characters)" if len(name) > 63 else ""))
    values = (s or settings()).model_dump()
    for field, (kind, limit) in _NAME_LIMITS.items():
        template = str(values[field])
        resolved = template.format(target=name)
        uses = template.count("{target}")
        if len(resolved) > limit and uses:
            longest = len(name) - -(-(len(resolved) - limit) // uses)
            return (f"{name!r} cannot be a target: its {kind} name {resolved!r} would be "
                    f"{len(resolved)} characters, and AWS allows at most {limit}; name the "
                    f"file with at most {longest} characters")
    return None


def target(name: str, s: Settings | None = None) -> Target:
    """Resolve every ``{target}`` placeholder for the target ``name``."""
    s = s or settings()
    problem = target_name_problem(name, s)
    if problem is not None:
        raise BotError(problem)
    values: dict[str, Any] = {
        k: (v.format(target=name) if isinstance(v, str) else v)
        for k, v in s.model_dump().items()
        if k in _TARGET_FIELDS
    }
    return Target(name=name, **values)
