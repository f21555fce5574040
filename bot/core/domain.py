"""The frozen values that flow between the bot's steps: evaluation, comparison, plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict

from bot.core.endpoint_values import EndpointComparison
from bot.core.integrity import model_digest
from bot.core.production_config import ProductionConfig
from bot.core.provenance import DataUsed
from bot.core.request import Rollout
from bot.core.rollout_rules import Soak


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

    target: str  # the resource kind: "ssm", "s3-config", "pipeline", "endpoint", ...
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
    data: tuple[DataUsed, ...] = ()  # the training and test data, for the comment
    reverts: str | None = None  # the commit the pull request's head reverts (git revert)
    soak: Soak | None = None  # the challenger's current step, when one serves
    #: The percent of traffic each endpoint variant serves now, live (by variant name: the
    #: production config says what it should be; the watcher's brake makes them differ).
    live_weights: dict[str, int] | None = None
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
    """What is in AWS now for one target, one entry per resource kind (``bot.flows.resources``
    reads them just before planning or applying); a kind that is absent reads as None."""

    resources: dict[str, Any]

    def get(self, kind: str) -> Any:
        return self.resources.get(kind)

    @property
    def ssm(self) -> dict[str, str]:
        return dict(self.resources.get("ssm") or {})

    @property
    def config(self) -> ProductionConfig | None:
        config: ProductionConfig | None = self.resources.get("s3-config")
        return config

    @property
    def endpoint(self) -> EndpointSpec | None:
        endpoint: EndpointSpec | None = self.resources.get("endpoint")
        return endpoint


#: How an approval is known: approving reviews on GitHub, the merge commit's author (no
#: GitHub context), or "pending" before merge.
ApprovalSource = Literal["github-reviews", "commit-author", "pending"]


@dataclass(frozen=True)
class Approval:
    """Who approved a promotion and how we know."""

    approvers: tuple[str, ...]
    source: ApprovalSource


@dataclass(frozen=True)
class Fact:
    """One line of what apply did to a resource, for people: ``label`` names it in the PR
    comment, ``text`` is the terminal's line; ``in_noop``: said even when nothing changed."""

    label: str
    value: str
    text: str
    in_noop: bool = False


@dataclass(frozen=True)
class ResourceOutcome:
    """What apply did to one resource kind: its changes (by this run or by the interrupted
    run it resumed), what it recorded (``details``, for programs) and its lines for people."""

    kind: str
    changes: tuple[Change, ...]
    details: dict[str, Any]
    facts: tuple[Fact, ...] = ()
    lines: tuple[str, ...] = ()  # further terminal lines (e.g. the endpoint's actions)


@dataclass(frozen=True)
class Outcome:
    """What apply did to one target (or found already done), one entry per resource kind."""

    target: str
    path: str
    commit: str
    content_sha256: str | None  # None when the request file was deleted
    resources: tuple[ResourceOutcome, ...]  # in apply's order
    approval: Approval
    pull_request: int | None = None
    retired: bool = False  # the request file was deleted: challenger retired
    caught_up: str | None = None  # missed: the commit whose change no run had applied

    def resource(self, kind: str) -> ResourceOutcome | None:
        return next((r for r in self.resources if r.kind == kind), None)

    def detail(self, name: str) -> Any:
        """A recorded detail by name, from whichever resource recorded it (None if none)."""
        return next((r.details[name] for r in self.resources if r.details.get(name)
                     is not None), None)

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change of this apply, in apply's order."""
        return tuple(c for r in self.resources for c in r.changes)

    @property
    def drift(self) -> tuple[Change, ...]:
        """Live values changed by hand, overwritten by this apply."""
        return tuple(c for c in self.changes if c.drift)

    @property
    def noop(self) -> bool:
        return not self.changes

    # The built-in resources' details by name (``bot.flows.resources``):
    @property
    def backup_key(self) -> str | None:
        return _text(self.detail("backup_key"))

    @property
    def config_version(self) -> str | None:
        return _text(self.detail("config_version"))

    @property
    def config_archive(self) -> str | None:
        return _text(self.detail("config_archive"))

    @property
    def execution_arn(self) -> str | None:
        return _text(self.detail("execution_arn"))

    @property
    def execution_status(self) -> str | None:
        return _text(self.detail("execution_status"))

    @property
    def endpoint(self) -> str | None:
        return _text(self.detail("endpoint"))

    @property
    def variants(self) -> tuple[VariantSpec, ...]:
        return tuple(VariantSpec(**v) for v in self.detail("variants") or ())

    @property
    def endpoint_actions(self) -> tuple[str, ...]:
        return tuple(self.detail("endpoint_actions") or ())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# Stored values (plan.json, apply --outcomes) are read back by pydantic: refuse unknown fields.
for _stored in (ConfusionMatrix, Curve, Evaluation, Champion, MetricComparison, Comparison,
                GateResult, Change, PlanIdentity, Soak, Plan, VariantSpec, Approval, Fact,
                ResourceOutcome, Outcome):
    setattr(_stored, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010
