"""Plan one request: validate, train (or reuse), evaluate, compare, gate, diff live state.

This is the orchestration behind ``promotion-bot plan``; each step it calls is pure or
sits behind an adapter, and only this module puts them together.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.changes import changes
from bot.core.desired_state import desired
from bot.core.domain import Approval, Champion, Evaluation, Plan
from bot.core.production_config import ProductionConfig, to_yaml
from bot.core.request import Request
from bot.report.plan_comment import plan_to_json, render_comment
from bot.settings import Target, target

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PlanResult:
    """What a plan run produced: its plan.json and the comment."""

    plan: dict[str, Any]
    comment: str

    @property
    def passed(self) -> bool:
        return bool(self.plan["passed"])


def champion_identity(config: ProductionConfig | None) -> str:
    """What the comparison depended on: a cached evaluation is valid while this holds."""
    if config is None:
        return "seed-baseline"
    if config.champion is not None:
        return config.champion.model_artifact
    return f"recorded:{config.content_sha256}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def evaluate_request(
    t: Target, request: Request, request_path: str, repo_root: Path,
    live_config: ProductionConfig | None, progress: Progress, pull_request: int | None = None,
) -> Plan:
    """Train (or reuse) the candidate and score it and the champion on the test set."""
    from bot.adapters.aws import artifacts
    from bot.core import comparison as cmp
    from bot.core import evaluation, gates, training
    from bot.flows import candidate, scoring

    obtained = candidate.obtain(t, request, repo_root, progress, pull_request)
    model_key, booster, artifact, trained, model_training = (
        obtained.model_key, obtained.booster, obtained.artifact, obtained.trained,
        obtained.training)

    champion_config = live_config.champion if live_config is not None else None
    champion_booster = None
    if champion_config is not None:
        progress(f"scoring the candidate and re-scoring the champion "
                 f"{champion_config.experiment_id} on {request.data.test} ...")
        champion_booster = training.load_model(
            artifacts.read_object(champion_config.model_artifact))
    else:
        progress(f"evaluating on {request.data.test} ...")
    scored = scoring.score_test_set(request.data.test, repo_root, request.data.target_column,
                                    booster, champion_booster)
    y, scores = scored.labels, scored.candidate
    threshold = request.gates.decision_threshold
    result = evaluation.evaluate(y, scores, threshold)

    champion_eval: Evaluation | None = None
    if live_config is not None and live_config.champion is not None:
        model = live_config.champion
        champion_scores = scored.champion
        assert champion_scores is not None
        champion_eval = evaluation.evaluate(y, champion_scores, threshold)
        comparison = cmp.paired(y, scores, champion_scores, threshold)
        champion = Champion(model.experiment_id, "production-config", champion_eval.metrics,
                            model.model_artifact)
    elif live_config is not None:
        comparison = cmp.unpaired(result.metrics, live_config.metrics)
        champion = Champion(live_config.experiment_id, "production config (no model artifact)",
                            dict(live_config.metrics))
    else:
        comparison = cmp.unpaired(result.metrics, cmp.SEED_BASELINE)
        champion = Champion("seed baseline", "seed notebook's baseline, nothing in production",
                            dict(cmp.SEED_BASELINE))

    notes = []
    if gates.accuracy_is_uninformative(result):
        notes.append(
            f"Accuracy {result.metrics['accuracy']:.4f} says nothing here: only "
            f"{result.positives / max(result.rows, 1):.3%} of test rows are fraud, so predicting "
            f"\"legit\" for everything scores {result.majority_accuracy:.4f}. "
            "Judge the model on recall, precision and PR AUC."
        )
    challenger = request.rollout.challenger
    if challenger is not None and challenger.override_reason:
        notes.append(f"**Rollout override: {challenger.override_reason}**")
    plan = Plan(
        target=t.name, request_path=request_path, content_sha256=request.content_sha256(),
        model_key=model_key, evaluation=result, champion=champion, comparison=comparison,
        gates=gates.check(request.gates, result, comparison), artifact=artifact,
        evaluated_at=_now(), experiment_id=request.experiment_id, trained=trained,
        notes=tuple(notes),
        champion_evaluation=champion_eval, training=model_training,
    )
    return plan


def _retrain_commit(repo_root: Path, request_path: str, request: Request) -> str | None:
    """The commit that last changed what production retrains from, if git knows it."""
    from bot.errors import BotError
    from bot.flows.rollout_history import retrain_commit

    try:
        return retrain_commit(repo_root, "HEAD", request_path, request)
    except BotError:  # not a git repository, or no commit yet: this change starts one
        return None


def with_live_changes(
    t: Target, request: Request, plan_json: dict[str, Any], live_config: ProductionConfig | None,
    commit: str, pull_request: int | None, repo_root: Path, request_path: str,
) -> dict[str, Any]:
    """Recompute what merging changes from live AWS state (cheap; done on every plan run)."""
    from bot.adapters.aws.live import read_live

    want = desired(t, request, plan_json, live_config, commit, pull_request,
                   Approval(("(recorded on merge from approving reviews)",), "pending"),
                   retrain_commit=_retrain_commit(repo_root, request_path, request))
    live = read_live(t, want.pipeline_execution)
    found = changes(want, live, t.ssm_prefix, t.config_uri)
    return {
        **plan_json,
        "changes": [c.to_json() for c in found],
        "rollout": request.rollout.model_dump(mode="json"),
        "config_before": to_yaml(live_config) if live_config is not None else None,
        "config_after": to_yaml(want.config),
    }


def endpoint_comparison(t: Target, request: Request, repo_root: Path,
                        progress: Progress) -> dict[str, Any] | None:
    """Champion vs challenger on the live endpoint, when a challenger is serving."""
    from bot.adapters import data_files as data
    from bot.adapters.aws import endpoint, runtime

    live = endpoint.read(t)
    if live is None or live.variant("challenger") is None:
        return None
    challenger = request.rollout.challenger
    records = challenger.comparison_records if challenger is not None else 100
    progress(f"comparing live variants on {records} test records ...")
    test_df = data.head_table(request.data.test, repo_root, records, request.data.target_column)
    target_column = request.data.target_column
    result = runtime.compare_endpoints(
        t, test_df.drop(columns=[target_column]), test_df[target_column].to_numpy(),
        request.gates.decision_threshold, records,
    )
    return runtime.to_json(result)


def make_plan(
    path: Path, repo_root: Path, out_dir: Path, *, commit: str = "0000000",
    pull_request: int | None = None, progress: Progress = _stderr,
) -> PlanResult:
    """Plan ``path`` and write comment.md, plan.json and the PNGs to ``out_dir`` and S3."""
    from bot.adapters.aws import artifacts, config_store
    from bot.adapters.request_files import load_request
    from bot.report import plots

    request_path = _display(path, repo_root)
    request, _ = load_request(path, display_path=request_path)
    t = target(path.stem)
    sha = request.content_sha256()
    live_config = config_store.read(t)
    cached = artifacts.get_plan(t, sha)
    pngs: dict[str, bytes] = {}
    if cached is not None and cached.get("champion_identity") == champion_identity(live_config):
        progress(f"reusing the stored evaluation of content {sha[:12]} (nothing retrained)")
        plan_json = {**cached, "trained": False}
    else:
        plan = evaluate_request(t, request, request_path, repo_root, live_config, progress,
                                pull_request)
        plan_json = plan_to_json(plan)
        plan_json["champion_identity"] = champion_identity(live_config)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = plots.write_pngs(plan.evaluation, out_dir, plan.champion_evaluation)
        pngs = {p.name: p.read_bytes() for p in written.values()}

    plan_json = with_live_changes(t, request, plan_json, live_config, commit, pull_request,
                                  repo_root, request_path)
    plan_json["endpoint_comparison"] = endpoint_comparison(t, request, repo_root, progress)
    prefix = artifacts.plan_prefix(t, sha)
    links = {"plan.json": f"{prefix}/plan.json",
             **{name: f"{prefix}/{name}" for name in sorted(pngs or _stored_pngs(cached))}}
    comment = render_comment(plan_json, links)
    files = {"plan.json": json.dumps(plan_json, indent=2).encode(),
             "comment.md": comment.encode(), **pngs}
    artifacts.put_plan(t, sha, files)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (out_dir / name).write_bytes(body)
    for name in _stored_pngs(cached) if not pngs else ():
        (out_dir / name).write_bytes(artifacts.read_object(f"{prefix}/{name}"))
    return PlanResult(plan_json, comment)


def _stored_pngs(cached: dict[str, Any] | None) -> list[str]:
    return ["confusion_matrix.png", "roc_curve.png", "pr_curve.png"] if cached else []


def _display(path: Path, repo_root: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo_root.resolve()))
    except ValueError:
        return str(path)


