"""The promotion request: one YAML file per target declaring production's desired state.

These pydantic models are the single source of truth for the request format; the JSON
Schema in ``schemas/`` is generated from them (``promotion-bot schemas``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.core.alarm_settings import Alarms
from bot.core.cost import Cost
from bot.core.hyperparameters import Hyperparameters, Strict
from bot.core.request_values import DATA_URI_PATTERN, check_data_uri, check_printable

METRICS = ("accuracy", "precision", "recall", "f1_score", "auc_roc", "pr_auc")
Metric = Literal["accuracy", "precision", "recall", "f1_score", "auc_roc", "pr_auc"]
Fraction = Annotated[float, Field(gt=0, le=1)]
Margin = Annotated[float, Field(ge=0, le=1)]

#: Gates every request gets unless it sets ``max_drop`` itself: a candidate the test data
#: shows to rank frauds clearly worse than the champion is refused (docs/request-format.md).
DEFAULT_MAX_DROP: dict[str, float] = {"auc_roc": 0.01, "pr_auc": 0.02, "recall": 0.05}

#: The increase of alerts a request accepts unless it says otherwise: a candidate the test
#: data shows to flag more than 15 % more records than the champion is refused
#: (docs/request-format.md#what-fraud-operations-see).
DEFAULT_MAX_ALERT_INCREASE = 0.15

#: The rollout plan of the seed notebook: challenger share and minimum soak per step.
DEFAULT_ROLLOUT_STEPS: tuple[tuple[int, float], ...] = ((1, 24), (10, 24), (50, 48), (100, 0))


class Data(Strict):
    """Where the training and test data live: ``s3://`` URIs or paths inside the repository."""

    train: str = Field(description="Training data (Parquet): s3://BUCKET/KEY or a repo path.",
                       json_schema_extra={"pattern": DATA_URI_PATTERN})
    test: str = Field(description="Test data (Parquet): s3://BUCKET/KEY or a repo path.",
                      json_schema_extra={"pattern": DATA_URI_PATTERN})
    target_column: str = Field(
        default="Class", min_length=1, max_length=200,
        description="The label column: 1 is fraud, 0 is legit.",
    )

    feature_columns: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="The feature columns in the order the models were trained on, for a "
        "champion model file without feature names (one trained outside the bot): it is "
        "then scored on these columns, by name. Absent: such a model is refused, never "
        "scored by position.",
    )

    @field_validator("feature_columns")
    @classmethod
    def _distinct_printable_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for name in value:
                check_printable(name)
            repeated = sorted({name for name in value if value.count(name) > 1})
            if repeated:
                raise ValueError(f"names a column twice: {', '.join(repeated[:5])}")
        return value

    @field_validator("train", "test")
    @classmethod
    def _s3_or_repo_path(cls, value: str) -> str:
        check_data_uri(value)
        return value

    @field_validator("target_column")
    @classmethod
    def _printable_column(cls, value: str) -> str:
        check_printable(value)
        return value


class Gates(Strict):
    """What a candidate must reach before it may be merged.

    Comparisons with the champion are judged on the 95 % confidence interval of the paired
    difference (candidate minus champion), never on the point difference alone, so that an
    equal candidate is neither blocked nor called better by the test set's noise.
    """

    minimum: dict[Metric, Fraction] = Field(
        default_factory=lambda: {"accuracy": 0.90},  # type: ignore[arg-type]
        description="Minimum value per metric; accuracy >= 0.90 by default.",
    )
    max_drop: dict[Metric, Margin] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_DROP),  # type: ignore[arg-type]
        description="Per metric, a margin: fail when the data shows the candidate worse than "
        "the champion by more than it (the 95 % CI of the difference lies below -margin). "
        "Default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_MAX_DROP.items()) + ".",
    )
    non_inferior: dict[Metric, Margin] = Field(
        default_factory=dict,
        description="Per metric, a margin: pass only when the data shows the candidate at "
        "most that much worse than the champion (the 95 % CI lies above -margin). A stronger "
        "claim than max_drop, for large test sets.",
    )
    better_than_champion: list[Metric] = Field(
        default_factory=list,
        description="Metrics whose 95 % CI of the paired difference must lie above zero.",
    )
    max_alert_increase: float = Field(
        default=DEFAULT_MAX_ALERT_INCREASE, ge=0, le=100,
        description="The increase of alerts (records flagged at the decision threshold) "
        "accepted, as a share of the champion's: fail when the data shows the candidate "
        "flagging more than this much more (the 95 % CI of its alerts / the champion's - 1 "
        f"lies above it). Default {DEFAULT_MAX_ALERT_INCREASE}: 15 % more.",
    )
    cost: Cost | None = Field(
        default=None,
        description="Costs of an alert and of missed fraud: compares, and can gate on, the "
        "expected cost per 100,000 transactions.",
    )
    accept_few_frauds: str | None = Field(
        default=None, min_length=10, max_length=500,
        description="Why gates against the champion may pass without a verdict when the test "
        "set holds too few frauds for intervals that hold (fewer than 30); shown on the plan. "
        "Absent: such gates fail.",
    )
    primary_metric: Metric = Field(
        default="pr_auc",
        description="The metric a claim of improvement rests on, declared before the plan is "
        "seen; its verdict heads the comment, the others' are secondary.",
    )
    decision_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Score at or above which a record is fraud."
    )

    @field_validator("decision_threshold", "max_alert_increase", mode="before")
    @classmethod
    def _int_is_a_float(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("accept_few_frauds")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None:
            check_printable(value)
        return value


class RolloutStep(Strict):
    """One step of the staged rollout: the challenger's share and how long it soaks."""

    percent: int = Field(ge=1, le=100, description="Challenger's share of traffic (1..100).")
    soak_hours: float = Field(
        default=0.0, ge=0, description="Hours to serve this share before the next step may start."
    )

    @field_validator("soak_hours", mode="before")
    @classmethod
    def _int_is_a_float(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _default_steps() -> list[RolloutStep]:
    return [RolloutStep(percent=p, soak_hours=h) for p, h in DEFAULT_ROLLOUT_STEPS]


class Challenger(Strict):
    """The candidate served beside the champion on the production endpoint.

    ``traffic_percent`` is the one field a rollout PR edits: 1 → 10 → 50 → 100.
    100 means *promote*: the challenger becomes the champion and its variant is removed.
    """

    model_config = ConfigDict(json_schema_extra={
        # Without steps, the default ones: the share must be one of their percents. (With
        # steps of its own, only validate can check it: JSON Schema cannot compare a value
        # with another field's values.)
        "if": {"not": {"required": ["steps"]}},
        "then": {"properties": {"traffic_percent": {
            "enum": [percent for percent, _ in DEFAULT_ROLLOUT_STEPS]}}},
    })

    # steps comes before traffic_percent so that traffic_percent's validator can see them.
    steps: list[RolloutStep] = Field(
        default_factory=_default_steps, min_length=1,
        description="The allowed traffic shares in increasing order, ending at 100, each with "
        "how long the challenger must serve that share before moving to the next step.",
        json_schema_extra={"contains": {"properties": {"percent": {"const": 100}},
                                        "required": ["percent"]}},
    )
    traffic_percent: int = Field(
        ge=1, le=100,
        description="Share of live traffic, one of the steps' percents; 100 promotes the "
        "challenger to champion.",
    )
    instance_type: str = Field(
        default="ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
        description="SageMaker instance type of the challenger variant, e.g. ml.m5.xlarge.",
    )
    instance_count: int = Field(
        default=1, ge=1, le=10, description="Instances behind the challenger variant (1..10)."
    )
    override_reason: str | None = Field(
        default=None, min_length=10, max_length=500,
        description="Why a step is skipped or a soak shortened, one line of at most 500 "
        "characters; shown on the plan.",
    )
    alarms: Alarms = Field(
        default_factory=Alarms,
        description="CloudWatch alarms that guard the challenger: thresholds of the bot's "
        "own and the names of yours.",
    )
    comparison_records: int = Field(
        default=20_000, ge=1, le=1_000_000,
        description="Legit test records sampled for the live comparison when a rollout PR is "
        "planned; every fraud of the test set is sent too, to both variants.",
    )

    @field_validator("steps")
    @classmethod
    def _steps_increase_to_100(cls, steps: list[RolloutStep]) -> list[RolloutStep]:
        percents = [s.percent for s in steps]
        if percents != sorted(set(percents)) or percents[-1] != 100:
            raise ValueError(f"percents must strictly increase and end at 100 (got {percents})")
        return steps

    @field_validator("traffic_percent")
    @classmethod
    def _share_is_a_step(cls, value: int, info: ValidationInfo) -> int:
        steps = info.data.get("steps")
        if steps is not None and value not in (percents := [s.percent for s in steps]):
            raise ValueError(f"must be one of the rollout steps {percents} (got {value})")
        return value

    @field_validator("override_reason")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None:
            check_printable(value)
        return value

    @property
    def promoted(self) -> bool:
        return self.traffic_percent == 100


#: Training settings that only a SageMaker training job has.
SAGEMAKER_ONLY = ("instance_type", "instance_count", "max_runtime_minutes", "volume_gb")


class Training(Strict):
    """Where the candidate is trained: in the plan's own process, or by a SageMaker training job.

    ``sagemaker`` runs the built-in XGBoost algorithm on ``instance_count`` instances, the
    training data split into as many objects (``ShardedByS3Key``), and reads the model back
    into the same evaluation as a local one.
    """

    model_config = ConfigDict(json_schema_extra={
        # The instance settings only with backend: sagemaker (as _instances_only_for_sagemaker).
        "if": {"properties": {"backend": {"const": "sagemaker"}}, "required": ["backend"]},
        "else": {"properties": {name: False for name in SAGEMAKER_ONLY}},
    })

    backend: Literal["local", "sagemaker"] = Field(
        default="local",
        description="local: train inside the plan's process (the runner); sagemaker: a SageMaker "
        "training job with the built-in XGBoost algorithm.",
    )
    instance_type: str = Field(
        default="ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
        description="SageMaker training instance type (sagemaker backend), e.g. ml.m5.2xlarge.",
    )
    instance_count: int = Field(
        default=1, ge=1, le=20,
        description="Instances that train one model together (sagemaker backend), 1..20; the "
        "training data is split into this many objects.",
    )
    max_runtime_minutes: int = Field(
        default=60, ge=1, le=1440,
        description="SageMaker stops the training job after this many minutes (sagemaker "
        "backend), 1..1440.",
    )
    volume_gb: int = Field(
        default=30, ge=1, le=16384,
        description="Storage per training instance in GB, holding its share of the data "
        "(sagemaker backend).",
    )

    @model_validator(mode="after")
    def _instances_only_for_sagemaker(self) -> Training:
        if self.backend == "local":
            extra = [name for name in SAGEMAKER_ONLY if name in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to backend: sagemaker "
                                 "(this request trains locally)")
        return self


class Rollout(Strict):
    """What merging does besides parameters and config: retrain pipeline, challenger."""

    pipeline: bool = Field(default=False, description="Start the retraining pipeline.")
    challenger: Challenger | None = Field(
        default=None, description="Serve the reviewed model as a challenger; absent: none."
    )


class Request(Strict):
    """A promotion request: the desired production state of one model target."""

    experiment_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$",
        description="The experiment that produced these hyperparameters: letters, digits, "
        "'.', '_' or '-', at most 80 characters.",
    )
    description: str = Field(
        default="", max_length=2000,
        description="Why this promotion, at most 2000 characters; shown on the plan.",
    )
    algorithm: Literal["xgboost"] = Field(description="The training algorithm; only xgboost.")
    hyperparameters: Hyperparameters = Field(
        description="XGBoost hyperparameters, written to SSM on merge."
    )
    data: Data = Field(description="Training and test data of the candidate.")
    gates: Gates = Field(
        default_factory=Gates, description="What the candidate must reach to be merged."
    )
    rollout: Rollout = Field(
        default_factory=Rollout,
        description="Retraining pipeline and challenger endpoint wishes.",
    )
    training: Training = Field(
        default_factory=Training,
        description="Where the candidate is trained: locally (default) or by a SageMaker "
        "training job.",
    )

    @field_validator("description")
    @classmethod
    def _printable_text(cls, value: str) -> str:
        check_printable(value, allowed="\n\t")
        return value

    def content_sha256(self) -> str:
        """Hash of the normalized content: same meaning, same hash, whatever the formatting.

        The canonical form is the parsed request without every value equal to its default
        (``exclude_defaults``): a file that spells a default and one that leaves it out hash
        the same (``exclude_unset`` would tell them apart), and a field added later with a
        default leaves every existing request's hash, and so its stored plans, as it was.
        The other side of it: a changed default changes what a file that leaves it out means
        but not its hash (docs/request-format.md, "The content hash").
        """
        return sha256_of(self.model_dump(mode="json", by_alias=True, exclude_defaults=True))

    def model_key(self, data_versions: dict[str, str], trainer: str | None = None) -> str:
        """Hash of what determines the trained model, so gate-only edits never retrain.

        A training job's model also depends on how many instances split the data and on the
        algorithm image (``trainer``); a local model keeps the key it always had.
        """
        key: dict[str, object] = {
            "algorithm": self.algorithm,
            "hyperparameters": self.hyperparameters.as_dict(),
            "target_column": self.data.target_column,
            "data": data_versions,
        }
        if self.training.backend != "local":
            key["training"] = {"backend": self.training.backend,
                               "instance_count": self.training.instance_count,
                               "trainer": trainer}
        return sha256_of(key)


def retraining_key(request: Request) -> str:
    """What the production retraining pipeline depends on: algorithm, hyperparameters, data.

    A PR that changes only gates or rollout keeps this key, so it never retrains production.
    """
    return sha256_of({
        "algorithm": request.algorithm,
        "hyperparameters": request.hyperparameters.as_dict(),
        "data": request.data.model_dump(mode="json"),
    })


def sha256_of(value: object) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
