"""The frozen values that flow between the bot's steps: evaluation, comparison, plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict

from bot.core.endpoint_values import EndpointComparison
from bot.core.integrity import model_digest
from bot.core.production_config import ProductionConfig
from bot.core.request import Rollout


@dataclass(frozen=True)
class ConfusionMatrix:
    tn: int
    fp: int
    fn: int
    tp: int


@dataclass(frozen=True)
class Curve:
    """Points of a curve (ROC: x=FPR, y=TPR; PR: x=recall, y=precision), downsampled."""

    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on the test set."""

    metrics: dict[str, float]
    confusion_matrix: ConfusionMatrix
    roc: Curve
    pr: Curve
    positives: int
    rows: int
    majority_accuracy: float  # accuracy of always predicting "legit"
    distinct_scores: int | None = None  # distinct ranking scores (1: a constant model)


@dataclass(frozen=True)
class Champion:
    """What production runs now, according to the production config in S3."""

    experiment_id: str
    source: str  # "production-config", "seed-baseline"
    metrics: dict[str, float]
    model_artifact: str | None = None


#: What the paired 95 % interval of a difference (candidate minus champion) shows: above 0,
#: below 0, or containing 0; "not tested" when there is no interval (unpaired comparison).
Verdict = Literal["better", "worse", "inconclusive", "not tested"]


@dataclass(frozen=True)
class MetricComparison:
    current: float
    baseline: float
    difference: float
    percent_change: float
    verdict: Verdict
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    se: float | None = None  # standard error of the difference (bootstrap SD; DeLong for AUC)
    # The smallest true difference this test set detects with 80 % power:
    detectable: float | None = None
    # True: difference, ci_low and ci_high are relative changes, current / baseline - 1
    # (alerts per fraud caught, cost):
    relative: bool = False


@dataclass(frozen=True)
class Comparison:
    """Candidate versus champion; paired when the champion's artifact was re-scored."""

    paired: bool
    method: str
    metrics: dict[str, MetricComparison]
    # The operating point as fraud operations see it (bot.core.comparison.OPERATING), paired:
    operating: dict[str, MetricComparison] = field(default_factory=dict)
    frauds: int | None = None  # frauds in the test set (paired)
    min_frauds: int | None = None  # fewest frauds for which intervals are claimed


@dataclass(frozen=True)
class GateResult:
    name: str
    threshold: float
    value: float | None
    passed: bool
    detail: str = ""
    evaluated: bool = True  # False: the champion has no value for this metric
    kind: str = ""  # "guard", "minimum", "max_drop", "non_inferior", "better_than_champion"
    metric: str = ""
    # Smallest difference this test set detects with 80 % power (from the difference's SE):
    detectable: float | None = None
    # What the gate judged, for a reader: the point estimate (a difference against the
    # champion, relative for alerts and cost) and its 95 % interval.
    point: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    # A passing gate's risk in one line (its point estimate is past the accepted margin, or
    # it passed without a verdict because the request accepts too few frauds); the headline
    # shows it instead of a plain pass.
    warning: str | None = None
    frauds: int | None = None  # frauds in the test set the verdict rests on


@dataclass(frozen=True)
class Judgement:
    """What the test set says about the candidate, alone and against the champion."""

    evaluation: Evaluation
    champion: Champion
    comparison: Comparison
    gates: tuple[GateResult, ...]
    notes: tuple[str, ...] = ()
    champion_evaluation: Evaluation | None = None  # when the champion's model was re-scored

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass(frozen=True)
class Compared:
    """What ``compare`` found, and what it compared."""

    candidate: str
    champion: str
    test: str
    primary_metric: str
    judgement: Judgement

    @property
    def passed(self) -> bool:
        return self.judgement.passed


@dataclass(frozen=True)
class Change:
    """One thing merging changes in AWS: ``before`` → ``after`` (None means absent)."""

    target: str  # "ssm", "s3-config", "pipeline", "endpoint"
    key: str
    before: Any
    after: Any
    drift: bool = False  # live differs from what main last applied

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "key": self.key, "before": self.before,
                "after": self.after, "drift": self.drift}


@dataclass(frozen=True)
class PlanIdentity:
    """What a plan was made from, besides its target, request content and model: what its
    reviewers looked at. The signed statement covers every field (``bot.core.integrity``), so
    apply can tell a plan of the reviewed head, data and champion from any other."""

    head: str  # the pull request's head commit the plan was made at
    #: ``train``/``test`` → the S3 VersionId (else ETag) or, for a repository file, its sha256
    data_versions: dict[str, str]
    champion_model_sha256: str | None  # the champion's model digest (None: no model artifact)
    production_config_version: str | None  # the production config read (None: none yet)
    bot_version: str
    signed_at: str  # ISO 8601, UTC: when the plan was signed


@dataclass(frozen=True)
class Plan:
    """Everything a plan decides for one request content: what a reviewer judges, what the
    comment shows and what apply relies on.

    The evaluation part (metrics, comparison, gates) is computed once per content and
    champion; what merging changes depends on live state, so ``changes``, ``config_before``,
    ``config_after``, ``rollout`` and ``endpoint_comparison`` are read anew on every plan run
    (``bot.flows.plan.with_live_changes``). ``bot.core.plan_json`` stores it as plan.json.
    """

    target: str
    request_path: str
    content_sha256: str
    experiment_id: str
    model_key: str
    artifact: str  # s3:// URI of the reviewed model.tar.gz
    evaluated_at: str  # ISO 8601, UTC
    trained: bool  # False when the model was reused from the store
    champion_identity: str  # what the comparison depended on (production_config's)
    evaluation: Evaluation
    champion: Champion
    comparison: Comparison
    gates: tuple[GateResult, ...]
    notes: tuple[str, ...] = ()
    champion_evaluation: Evaluation | None = None  # when the champion's model was re-scored
    primary_metric: str | None = None  # the request's declared primary metric
    # What merging changes, from live state at plan time:
    changes: tuple[Change, ...] = ()
    rollout: Rollout | None = None
    description: str = ""  # the request's, shown on the plan (escaped: the author wrote it)
    config_before: str | None = None  # production config YAML now (None: absent)
    config_after: str | None = None  # production config YAML after merge
    endpoint_comparison: EndpointComparison | None = None
    training: dict[str, Any] | None = None  # how this plan trained the model (None: reused)
    identity: PlanIdentity | None = None  # set when the plan is signed and stored

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def metrics(self) -> dict[str, float]:
        return self.evaluation.metrics

    @property
    def model_sha256(self) -> str | None:
        """The sha256 of the reviewed model's bytes, which its content-addressed URI names
        (None for a URI of another layout, which apply refuses)."""
        return model_digest(self.artifact)


@dataclass(frozen=True)
class VariantSpec:
    """One production variant of the endpoint: which model serves what share of traffic."""

    name: str  # "champion" or "challenger"
    model_data_url: str  # s3:// URI of model.tar.gz
    weight: int  # percent of traffic
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1


@dataclass(frozen=True)
class EndpointSpec:
    """The production endpoint's variants, champion first."""

    endpoint_name: str
    variants: tuple[VariantSpec, ...]

    def variant(self, name: str) -> VariantSpec | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class LiveState:
    """What is in AWS now for one target, read by the adapters just before planning/applying."""

    ssm: dict[str, str]
    config: ProductionConfig | None
    endpoint: EndpointSpec | None
    execution_exists: bool = False


@dataclass(frozen=True)
class Approval:
    """Who approved a promotion and how we know."""

    approvers: tuple[str, ...]
    source: str  # "github-reviews", "commit-author" or "pending"


@dataclass(frozen=True)
class Outcome:
    """What apply did to one target (or found already done)."""

    target: str
    path: str
    commit: str
    content_sha256: str | None  # None when the request file was deleted
    changes: tuple[Change, ...]  # applied in this run
    drift: tuple[Change, ...]  # live values changed by hand, overwritten in this run
    backup_key: str | None
    config_version: str | None
    config_archive: str | None
    execution_arn: str | None
    execution_status: str | None
    endpoint: str | None
    variants: tuple[VariantSpec, ...]
    endpoint_actions: tuple[str, ...]
    noop: bool
    approval: Approval
    pull_request: int | None = None
    retired: bool = False  # the request file was deleted: challenger retired
    caught_up: str | None = None  # missed: the commit whose change no run had applied


# Stored values (plan.json, apply --outcomes) are read back by pydantic: refuse unknown fields.
for _stored in (ConfusionMatrix, Curve, Evaluation, Champion, MetricComparison, Comparison,
                GateResult, Change, PlanIdentity, Plan, VariantSpec, Approval, Outcome):
    setattr(_stored, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010
