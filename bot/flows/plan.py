"""Plan one request: validate, train (or reuse), evaluate, compare, gate, diff live state.

This is the orchestration behind ``promotion-bot plan``; each step it calls is pure or
sits behind an adapter, and only this module puts them together.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.adapters import data_files as data
from bot.adapters.aws import alarms as cloudwatch
from bot.adapters.aws import (
    artifacts,
    config_store,
    incidents,
    plan_store,
    registry,
    runtime,
    s3,
)
from bot.core import alarms as guard
from bot.core import comparison as cmp
from bot.core import incident as brakes
from bot.core import names, plan_json, request_history, training
from bot.core.domain import Approval, Champion, EndpointSpec, LiveState, Plan, PlanIdentity
from bot.core.endpoint_values import EndpointComparison
from bot.core.integrity import model_digest, sha256_hex
from bot.core.model_registry import MODEL_QUALITY_FILE, model_quality
from bot.core.production_config import ProductionConfig, champion_identity, to_yaml
from bot.core.provenance import DataUsed
from bot.core.request import Challenger, Request
from bot.core.request_history import History
from bot.core.rollout_rules import Soak
from bot.errors import BotError
from bot.flows import candidate, resources
from bot.flows.judge import judge
from bot.flows.resources import config as config_resource
from bot.flows.resources import model_registry as registry_resource
from bot.flows.resources.base import Context
from bot.report import plots
from bot.report.plan_comment import render_comment
from bot.settings import Target, target

if TYPE_CHECKING:
    import xgboost

    from bot.adapters.aws.plan_store import StoredPlan
    from bot.flows.candidate import Candidate

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PlanSource:
    """The request as the plan reads it, once, before anything starts: the validated file
    and what its git repository says of it."""

    request: Request
    shown: str  # the file's path in its repository, as the comment and problems name it
    root: Path  # the repository's work tree: repository data paths are relative to it
    commit: str = "0000000"  # the pull request's head: what the plan is of
    #: The file's versions on main (without a known base, on HEAD), newest first: which
    #: commit last changed what production retrains from.
    history: History = ()
    reverts: str | None = None  # the commit the head reverts, when it is a revert

    @property
    def target(self) -> str:
        return Path(self.shown).stem


@dataclass(frozen=True)
class PlanResult:
    """What a plan run produced: the plan and its comment."""

    plan: Plan
    comment: str

    @property
    def passed(self) -> bool:
        return self.plan.passed


def _now(timespec: str = "seconds") -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec=timespec)


def judge_candidate(
    t: Target, request: Request, request_path: str, test: data.ParquetTable,
    live_config: ProductionConfig | None, champion_model: bytes | None, obtained: Candidate,
    progress: Progress,
) -> Plan:
    """The evaluation part of the plan; what merging changes is added by ``with_live_changes``.

    The candidate came from the store, local training or a SageMaker training job
    (``bot.flows.candidate``); it and the champion are judged on the test set
    (``bot.flows.judge``).
    """
    progress(f"evaluating on {request.data.test} ...")
    champion, champion_booster = _champion(live_config, champion_model)
    judged = judge(request.gates, test, request.data.target_column, obtained.booster,
                   champion, champion_booster, progress, request.data.feature_columns)
    return Plan(
        target=t.name, request_path=request_path, content_sha256=request.content_sha256(),
        model_key=obtained.model_key, evaluation=judged.evaluation, champion=judged.champion,
        comparison=judged.comparison, gates=judged.gates, artifact=obtained.artifact,
        evaluated_at=_now(), experiment_id=request.experiment_id, trained=obtained.trained,
        champion_identity=champion_identity(live_config), notes=judged.notes,
        champion_evaluation=judged.champion_evaluation,
        primary_metric=request.gates.primary_metric, training=obtained.training,
    )


def _champion(live_config: ProductionConfig | None, model_bytes: bytes | None
              ) -> tuple[Champion, xgboost.Booster | None]:
    """Who the candidate is compared with: the champion's model (``model_bytes``) when
    production records it, else its recorded metrics, else the seed notebook's baseline."""
    if live_config is None:
        return Champion("seed baseline", "seed notebook's baseline, nothing in production",
                        dict(cmp.SEED_BASELINE)), None
    model = live_config.champion
    if model is None or model_bytes is None:
        return Champion(live_config.experiment_id, "production config (no model artifact)",
                        dict(live_config.metrics)), None
    booster = training.load_model(model_bytes)
    return Champion(model.experiment_id, "production-config",
                    dict(model.metrics or live_config.metrics), model.model_artifact), booster


def _context(t: Target, request: Request, plan: Plan | None, commit: str,
             pull_request: int | None, retrain_commit: str | None) -> Context:
    return Context(t, request, plan, commit, pull_request,
                   Approval(("(recorded on merge from approving reviews)",), "pending"),
                   retrain_commit)


def read_live_state(t: Target, request: Request, commit: str, retrain_commit: str | None,
                    config: ProductionConfig | None) -> LiveState:
    """What merging would change, as it is now in AWS (cheap; on every plan run), with the
    production ``config`` the plan read first and judged against."""
    return resources.read_live(_context(t, request, None, commit, None, retrain_commit),
                               {config_resource.kind: config})


def with_live_changes(
    t: Target, request: Request, plan: Plan, live_config: ProductionConfig | None,
    live: LiveState, commit: str, pull_request: int | None, retrain_commit: str | None,
) -> Plan:
    """``plan`` with what merging changes: the desired state against ``live``."""
    context = _context(t, request, plan, commit, pull_request, retrain_commit)
    want = resources.desired_state(context, live)
    after = want.get(config_resource.kind)
    return replace(
        plan,
        changes=resources.changes(context, want, live),
        rollout=request.rollout,
        description=request.description,
        config_before=to_yaml(live_config) if live_config is not None else None,
        config_after=to_yaml(after) if after is not None else None,
    )


def braked(t: Target, config: ProductionConfig | None, live: EndpointSpec | None
           ) -> brakes.Incident | None:
    """The watcher's brake that stands: an incident of the config's commit while its
    challenger serves nothing (until the revert is merged and applied)."""
    challenger = live.variant("challenger") if live is not None else None
    if config is None or challenger is None or challenger.weight > 0:
        return None
    return incidents.read(t, config.commit)


def alarm_notes(t: Target, request: Request, config: ProductionConfig | None,
                live: EndpointSpec | None) -> tuple[str, ...]:
    """What the alarms guarding the challenger say about merging: apply's refusal when it
    raises the challenger's share while one is in ALARM, the ones in INSUFFICIENT_DATA, the
    team's that do not exist. A CloudWatch that cannot be read is said, not a failure."""
    names = guard.guarding(t, request)
    challenger = request.rollout.challenger
    if not names or challenger is None:
        return ()
    before, after = guard.shares(request, config, live)
    try:
        states = cloudwatch.states(names, t.region)
    except BotError as error:  # AwsError included: apply reads them again before a step up
        return (f"{guard.ALARM_NOTE}states could not be read ({error.message}); apply "
                "checks them again before it raises the challenger's traffic",)
    return guard.notes(challenger.alarms.names, states, before, after)


def champion_uri(live_config: ProductionConfig | None) -> str | None:
    """Where the champion's model is, when production records it."""
    model = live_config.champion if live_config is not None else None
    return model.model_artifact if model is not None else None


def endpoint_comparison(t: Target, request: Request, tables: data.RequestData,
                        progress: Progress, live: EndpointSpec | None
                        ) -> EndpointComparison | None:
    """Champion vs challenger on the ``live`` endpoint, when a challenger is serving."""
    if live is None or live.variant("challenger") is None:
        return None
    challenger = request.rollout.challenger
    legit = (challenger.comparison_records if challenger is not None
             else Challenger.model_fields["comparison_records"].default)
    progress(f"comparing live variants on every test fraud and {legit:,} legit records ...")
    target_column, test = request.data.target_column, tables.table("test")
    labels = test.read([target_column])[target_column].to_numpy()
    rows, legit_weight = runtime.sample(labels, legit, seed=0, size=labels.size)
    chosen = test.take(rows, test.features(target_column), training.BATCH_ROWS)
    return runtime.compare_endpoints(t, chosen, labels[rows], request.gates.decision_threshold,
                                legit_weight, seed=0)


def train_counts(tables: data.RequestData, training: dict[str, Any] | None
                 ) -> tuple[int, int]:
    """The training data's rows and frauds: as training counted them, else from its labels
    (a reused model, a training job: the label column read again)."""
    rows, frauds = (training or {}).get("rows"), (training or {}).get("frauds")
    if isinstance(rows, int) and isinstance(frauds, int):
        return rows, frauds
    return tables.label_counts("train")


def data_used(request: Request, plan: Plan, train: tuple[int, int]) -> tuple[DataUsed, ...]:
    """The training and test data with their rows and frauds (the test set's from the
    evaluation)."""
    return (DataUsed("train", request.data.train, *train),
            DataUsed("test", request.data.test, plan.evaluation.rows,
                     plan.evaluation.positives))


def make_plan(
    source: PlanSource, out_dir: Path, *, pull_request: int | None = None,
    progress: Progress = _stderr, soak: Soak | None = None,
) -> PlanResult:
    """Plan ``source``'s request at its pull request head; write comment.md, plan.json and the
    PNGs to ``out_dir``, and store them in S3 once, signed, under the plan's own digest.
    ``soak``: how long the challenger's current step has served on main (the comment's)."""
    request, request_path, commit = source.request, source.shown, source.commit
    t = target(source.target)
    sha = request.content_sha256()
    live_config, config_version = config_store.read_versioned(t)
    cached = _stored_plan(t, sha, progress)
    retrain = request_history.retrain_commit(source.history, request)
    uris = {"train": request.data.train, "test": request.data.test}
    with data.request_data(uris, source.root, request.data.target_column) as tables:
        key = candidate.model_key(t, request, tables.versions)
        train = None  # the stored plan names its data (one stored before it did: read below)
        if (cached is not None and cached.plan.model_key == key
                and cached.plan.champion_identity == champion_identity(live_config)):
            # Same content, same champion and the same data: the evaluation still holds.
            progress(f"reusing the stored evaluation of content {sha[:12]} (nothing "
                     "retrained)")
            plan = replace(cached.plan, trained=False)
            with ThreadPoolExecutor(max_workers=2) as pool:
                reading = pool.submit(read_live_state, t, request, commit, retrain, live_config)
                pngs = s3.read_all(_pictures(t, cached.digest))
                live = reading.result()
        else:
            stored, champion_model = artifacts.plan_models(t, key, champion_uri(live_config))
            obtained = candidate.obtain(t, request, tables, key, stored, progress,
                                       pull_request)
            # A new model is stored, and live state read (network waits), on threads while
            # the test set is scored and the pictures are drawn.
            with ThreadPoolExecutor(max_workers=3) as pool:
                storing = pool.submit(obtained.store, t)
                counting = pool.submit(train_counts, tables, obtained.training)
                reading = pool.submit(read_live_state, t, request, commit, retrain, live_config)
                plan = judge_candidate(t, request, request_path, tables.table("test"),
                                       live_config, champion_model, obtained, progress)
                pngs = plots.pngs(plan.evaluation, plan.champion_evaluation)
                live = reading.result()
                storing.result()  # a plan only ever names a stored model
                train = counting.result()

        # This run registers the model (below): what merging changes counts it as registered.
        live = registry_resource.with_registered(live, plan)
        plan = with_live_changes(t, request, plan, live_config, live, commit, pull_request,
                                 retrain)
        plan = replace(plan, endpoint_comparison=endpoint_comparison(t, request, tables, progress,
                                                                     live.endpoint),
                       data=plan.data or data_used(
                           request, plan, train or train_counts(tables, None)),
                       reverts=source.reverts, soak=soak, live_weights={
                           v.name: v.weight for v in live.endpoint.variants}
                       if live.endpoint is not None else None,
                       notes=guard.with_notes(
                           brakes.with_brake(plan.notes, braked(t, live_config, live.endpoint)),
                           alarm_notes(t, request, live_config, live.endpoint)))
    plan = replace(plan, identity=PlanIdentity(
        head=commit, data_versions=tables.versions,
        champion_model_sha256=model_digest(plan.champion.model_artifact or ""),
        production_config_version=config_version, bot_version=__version__,
        signed_at=_now("microseconds")))  # two plans of one head: told apart by this
    body = plan_json.to_bytes(plan)
    prefix = names.plan_prefix(t, sha256_hex(body))
    links = {"plan.json": f"{prefix}/plan.json", **_pictures(t, sha256_hex(body))}
    comment = render_comment(plan, links, dict(os.environ))
    quality = model_quality(plan.evaluation)
    files = {"comment.md": comment.encode(), MODEL_QUALITY_FILE: quality, **pngs}
    # The model is registered (once) while the plan is stored; its model metrics are the
    # model quality statistics stored beside plan.json.
    with ThreadPoolExecutor(max_workers=1) as pool:
        registering = pool.submit(
            registry.register, t, plan, image=functools.partial(
                registry.serving_image, t,
                [v.model_data_url for v in live.endpoint.variants] if live.endpoint else []),
            pull_request=pull_request, plan_digest=sha256_hex(body),
            metrics_uri=f"{prefix}/{MODEL_QUALITY_FILE}", metrics_sha256=sha256_hex(quality))
        plan_store.put_plan(t, plan, files)  # signed: apply and re-plans trust only what verifies
        try:
            registering.result()
        except BotError as error:  # AwsError included: the registry mirrors git, git decides
            progress(f"model registry: the model was not registered ({error.message}); the "
                     "next plan of this model registers it, and apply approves only "
                     "registered models")
    files["plan.json"] = body
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    return PlanResult(plan, comment)


def _pictures(t: Target, digest: str) -> dict[str, str]:
    """Where the pictures of the stored plan ``digest`` are, by name (a reused evaluation
    reads the stored plan's, as it would draw the same)."""
    prefix = names.plan_prefix(t, digest)
    return {name: f"{prefix}/{name}" for name in sorted(plots.FILES.values())}


def _stored_plan(t: Target, sha: str, progress: Progress) -> StoredPlan | None:
    """The last signed plan of this content, if it can be reused; else evaluate afresh."""
    try:
        return plan_store.plan_of_content(t, sha)
    except plan_json.UnreadablePlan as error:
        progress(f"not reusing the stored plan: {error.message}")
        return None
