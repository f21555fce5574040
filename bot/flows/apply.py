"""Apply on merge: reconcile AWS to the request files changed in a git range, and catch up.

Every request changed in the range is checked first (a passing stored plan for its exact
content, an approval by the pull request that last changed it), so a refusal changes
nothing. Then each target is reconciled under its lock in a fixed order — SSM, production
config, pipeline, endpoint — and every step first looks at what is live, so a second run
changes nothing and a run after a failure finishes the job.

Runs can be skipped: GitHub keeps one pending run per concurrency group, so of three quick
merges the middle one's run is cancelled before it starts. So apply also takes every other
request file at the range's end whose content production does not serve yet ("missed") and
applies it too. A missed file that cannot be applied (no passing plan, no approval, its
lock held) is skipped with a warning: it never blocks the files of the range.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from bot.adapters import git
from bot.core.changes import changes as planned_changes
from bot.core.desired_state import Approval, Desired, desired
from bot.core.domain import Change, EndpointSpec, LiveState, VariantSpec
from bot.core.production_config import ProductionConfig
from bot.core.request import Request
from bot.errors import BotError, LockHeld, NotApproved, NotPlanned
from bot.settings import Target, settings, target

if TYPE_CHECKING:
    from bot.adapters.github import GitHubHost

STATUS_CONTEXT = "promotion-bot/apply"
NOTHING = "nothing was applied"
PLAN_FIELDS = ("content_sha256", "model_key", "artifact", "metrics", "evaluated_at")


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


def missed_line(path: str, sha: str) -> str:
    return f"{path} was changed in {sha[:12]} but never applied (a cancelled run?): applying it now"


@dataclass(frozen=True)
class _Item:
    """One changed request file, checked and ready to apply."""

    target: Target
    path: str
    request: Request | None  # None: deleted
    plan: dict[str, Any] | None
    request_commit: str  # the last commit up to the range's end that touched the file
    pull_request: int | None = None  # the merged PR of request_commit
    # That PR's approvers (request_commit's author when not on GitHub); set by _approve.
    approval: Approval = field(default_factory=lambda: Approval((), "pending"))
    missed: bool = False  # not changed in the range: a change that no run applied


def parse_request(text: str, path: str) -> Request:
    from bot.adapters.request_files import parse_request_text

    return parse_request_text(text, path)[0]


def _prepare(repo: Path, commit: str, path: str, status: str) -> _Item:
    """Everything apply needs for one file, or a refusal before anything changes."""
    from bot.adapters.aws import artifacts, pipeline

    t = target(PurePosixPath(path).stem)
    request_commit = _last_change(repo, commit, path)
    if status == "D":
        return _Item(t, path, None, None, request_commit)
    text = git.show(repo, commit, path)
    if text is None:
        raise NotPlanned(f"{path} is not in commit {commit[:12]}")
    request = parse_request(text, path)
    sha = request.content_sha256()
    where = f"{artifacts.plan_prefix(t, sha)}/plan.json"
    plan = artifacts.get_plan(t, sha)
    nothing = NOTHING
    if plan is None:
        raise NotPlanned(
            f"{path} at {commit[:12]}: this content (sha256 {sha[:12]}) was never planned, "
            f"no {where}; run plan on its pull request first; {nothing}"
        )
    if plan.get("passed") is not True:
        raise NotPlanned(
            f"{path} at {commit[:12]}: the plan of this content (sha256 {sha[:12]}) did not "
            f"pass its gates ({where}); {nothing}"
        )
    missing = [f for f in PLAN_FIELDS if f not in plan]
    if missing or plan["content_sha256"] != sha or plan.get("target", t.name) != t.name:
        raise NotPlanned(
            f"{path} at {commit[:12]}: the stored plan {where} does not belong to this content"
            f"{' (lacks ' + ', '.join(missing) + ')' if missing else ''}; re-run plan; {nothing}"
        )
    if not artifacts.exists(plan["artifact"]):
        raise NotPlanned(
            f"{path} at {commit[:12]}: the reviewed model {plan['artifact']} is missing; "
            f"re-run plan; {nothing}"
        )
    if request.rollout.pipeline:
        pipeline.state_machine_arn(t)
    return _Item(t, path, request, plan, request_commit)


def _last_change(repo: Path, commit: str, path: str) -> str:
    touched = git.log(repo, path, rev=commit, max_count=1)
    return touched[0].sha if touched else commit


def _approve(repo: Path, item: _Item, host: GitHubHost | None,
             pulls: dict[str, int | None]) -> _Item:
    """``item`` with the PR that last changed its file and that PR's approvers."""
    sha = item.request_commit
    if host is not None and sha not in pulls:
        pulls[sha] = host.pull_for_commit(sha)
    pull_request = pulls.get(sha)
    try:
        approval = approval_for(repo, sha, host, pull_request)
    except NotApproved as error:
        raise NotApproved(f"{item.path}: {error.message}") from None
    return replace(item, pull_request=pull_request, approval=approval)


def _requests_at(repo: Path, commit: str) -> dict[str, str]:
    """Every request file present at ``commit``, path → text."""
    found = {}
    for path in git.request_paths(repo, settings().requests_dir, commit):
        text = git.show(repo, commit, path)
        if text is not None:
            found[path] = text
    return found


def _unapplied(repo: Path, commit: str, t: Target, sha: str,
               live: ProductionConfig | None) -> bool:
    """Whether production does not serve content ``sha`` of ``t`` as of ``commit`` yet."""
    from bot.adapters.aws import artifacts

    if live is not None and live.content_sha256 == sha:
        # Served; unless a catch-up of this very commit stopped half-way: finish it.
        record = artifacts.get_apply_record(t, commit)
        return record is not None and record.get("status") != "complete"
    applied_at = git.resolve(repo, live.commit) if live is not None else None
    # Applied from this commit or a later one (a re-run of an old range): not ours to undo.
    return applied_at is None or not git.is_ancestor(repo, commit, applied_at)


def _is_aws_error(error: BaseException) -> bool:
    return type(error).__module__.startswith(("botocore.", "boto3."))


def _reason(error: BaseException) -> str:
    if isinstance(error, BotError):
        return error.message.removesuffix(f"; {NOTHING}")
    return f"{type(error).__name__}: {error}"


def _missed(repo: Path, commit: str, at_commit: dict[str, str], in_range: set[str],
            range_targets: set[str], host: GitHubHost | None, pulls: dict[str, int | None],
            warn: Callable[[str], None]) -> list[_Item]:
    """Request files at ``commit``, not changed in the range, that production does not serve.

    Each one that cannot be applied is skipped with a warning, never raised: the files of
    the range must not wait for an old change that nobody planned or approved.
    """
    from bot.adapters.aws import config_store

    others = {p: text for p, text in at_commit.items() if p not in in_range}
    by_target: dict[str, list[str]] = {}
    for path in others:
        by_target.setdefault(PurePosixPath(path).stem, []).append(path)
    items = []
    for path, text in sorted(others.items()):
        name = PurePosixPath(path).stem
        if name in range_targets:
            warn(f"{path}: target {name} also has a request file changed in this range, which "
                 f"is the one applied; keep one file per target; {path} was skipped")
            continue
        if len(by_target[name]) > 1:
            warn(f"{path}: more than one request file for target {name} at {commit[:12]} "
                 f"({', '.join(by_target[name])}); keep one file per target; {path} was skipped")
            continue
        changed_in = ""
        try:
            changed_in = _last_change(repo, commit, path)
            t = target(name)
            sha = parse_request(text, path).content_sha256()
            if not _unapplied(repo, commit, t, sha, config_store.read(t)):
                continue
            item = _approve(repo, _prepare(repo, commit, path, "M"), host, pulls)
        except Exception as error:
            if not isinstance(error, BotError) and not _is_aws_error(error):
                raise
            warn(f"{path} was changed in {changed_in[:12] or '?'} but never applied (a cancelled "
                 f"run?), and cannot be applied now: {_reason(error)}; skipped {path}, the "
                 "other requests are applied")
            continue
        items.append(replace(item, missed=True))
    return items


def _warn(message: str) -> None:
    print(f"promotion-bot apply: warning: {message}", file=sys.stderr, flush=True)


def approval_for(repo: Path, commit: str, host: GitHubHost | None,
                 pull_request: int | None) -> Approval:
    """The PR's approving reviewers; the commit's author only when not on GitHub."""
    if host is None:
        return Approval((git.commit_author(repo, commit),), "commit-author")
    if pull_request is None:
        raise NotApproved(
            f"commit {commit[:12]} did not come from a merged pull request, so nobody approved "
            "it; production was not changed (merge promotions through reviewed pull requests)"
        )
    approvers = host.approvers(pull_request)
    if not approvers:
        raise NotApproved(
            f"pull request #{pull_request} (commit {commit[:12]}) has no approving review; "
            "production was not changed (require reviews in branch protection)"
        )
    return Approval(tuple(approvers), "github-reviews")


def _retired(t: Target, live: LiveState) -> Desired | None:
    """A deleted request retires the challenger and leaves the champion and SSM as they are."""
    config = live.config
    if config is None:
        return None
    endpoint = live.endpoint
    if config.champion is not None and endpoint is not None:
        served = endpoint.variant("champion")
        endpoint = EndpointSpec(t.endpoint_name, (VariantSpec(
            "champion", config.champion.model_artifact, 100,
            served.instance_type if served else "ml.m5.xlarge",
            served.instance_count if served else 1),))
    return Desired(
        ssm=dict(live.ssm),
        config=config.model_copy(update={"challenger_traffic_percent": None}),
        pipeline_execution=None,
        endpoint=endpoint if config.champion is not None else None,
    )


def _change_json(c: Change) -> dict[str, Any]:
    return {"target": c.target, "key": c.key, "before": c.before, "after": c.after,
            "drift": c.drift}


def _iso(moment: dt.datetime | None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat()


class _Run:
    """Reconciles one target, keeping its apply record up to date after every step."""

    def __init__(self, repo: Path, item: _Item, commit: str, before: str | None,
                 now: dt.datetime | None) -> None:
        from bot.adapters.aws import artifacts

        pull_request, approval = item.pull_request, item.approval
        self.item, self.t, self.commit, self.now = item, item.target, commit, now
        self.previous = artifacts.get_apply_record(self.t, commit) or {}
        carried = self.previous.get("status") != "complete"
        request = item.request
        self.record: dict[str, Any] = {
            "target": self.t.name,
            "path": item.path,
            "commit": commit,
            "before": before,
            "request_commit": item.request_commit,
            "requested_by": git.commit_author(repo, item.request_commit),
            "content_sha256": request.content_sha256() if request else None,
            "experiment_id": request.experiment_id if request else None,
            "model_artifact": item.plan["artifact"] if item.plan else None,
            "pull_request": pull_request,
            "approval": {"approvers": list(approval.approvers), "source": approval.source},
            "retired": request is None,
            "caught_up": item.request_commit if item.missed else None,
            "started_at": self.previous.get("started_at") or _iso(now),
            "changes": list(self.previous.get("changes", [])),
            "drift": list(self.previous.get("drift", [])),
            "backup_keys": list(self.previous.get("backup_keys", [])),
            "commented": bool(self.previous.get("commented")) and not carried,
        }
        self.carried_backup = self.record["backup_keys"][-1] if (
            carried and self.record["backup_keys"]) else None
        self.applied: list[Change] = []

    def save(self, status: str, **fields: Any) -> None:
        from bot.adapters.aws import artifacts

        self.record.update(fields, status=status, updated_at=_iso(self.now))
        artifacts.put_apply_record(self.t, self.commit, self.record)

    def did(self, found: list[Change]) -> None:
        self.applied += found
        self.record["changes"] += [_change_json(c) for c in found]
        self.record["drift"] += [_change_json(c) for c in found if c.drift]

    def reconcile(self, want: Desired | None, live: LiveState, held: Any) -> Outcome:
        from bot.adapters.aws import config_store, endpoint, pipeline, ssm

        t = self.t
        planned = list(planned_changes(want, live, t.ssm_prefix, t.config_uri)) if want else []
        resuming = bool(self.previous) and self.previous.get("status") != "complete"
        if resuming and live.config is not None and live.config.commit == self.commit:
            # An interrupted run of this apply wrote the config: what still differs is our
            # own unfinished work (e.g. the endpoint), not somebody's hand.
            planned = [replace(c, drift=False) for c in planned]

        def of(kind: str) -> list[Change]:
            return [c for c in planned if c.target == kind]

        backup_key = None
        if want is not None and want.ssm != live.ssm:
            backup_key = ssm.backup(t, live.ssm, self.now)
            self.save("in-progress", backup_keys=[*self.record["backup_keys"], backup_key])
            ssm.write(t, want.ssm)
            self.did(of("ssm"))
            self.save("in-progress")
            held.refresh()

        written = config_store.write(t, want.config, self.now) if want is not None else None
        if written is not None and written.changed:
            self.did(of("s3-config"))
            self.save("in-progress", config_version=written.version,
                      config_archive=written.archive_uri)

        arn = status = None
        if want is not None and want.pipeline_execution:
            arn, started = pipeline.start(t, want.pipeline_execution, self._payload(want))
            status = str(pipeline.status(arn)["status"])
            if started:
                self.did(of("pipeline") or [
                    Change("pipeline", want.pipeline_execution, None, "start execution")])
                self.save("in-progress", execution_arn=arn, execution_status=status)

        endpoint_name: str | None = None
        variants: tuple[VariantSpec, ...] = ()
        actions: tuple[str, ...] = ()
        if want is not None and want.endpoint is not None:
            held.refresh()
            result = endpoint.reconcile(t, want.endpoint)
            endpoint_name, variants, actions = result.endpoint_name, result.variants, \
                result.actions
            if actions:
                self.did(of("endpoint") or [Change("endpoint", endpoint_name, None, "reconciled")])
        elif live.endpoint is not None:
            endpoint_name, variants = live.endpoint.endpoint_name, live.endpoint.variants

        return Outcome(
            target=t.name, path=self.item.path, commit=self.commit,
            content_sha256=self.record["content_sha256"], changes=tuple(self.applied),
            drift=tuple(c for c in self.applied if c.drift),
            backup_key=backup_key or self.carried_backup,
            config_version=written.version if written else None,
            config_archive=written.archive_uri if written else None,
            execution_arn=arn, execution_status=status, endpoint=endpoint_name,
            variants=tuple(variants), endpoint_actions=tuple(actions),
            noop=not self.applied,
            approval=Approval(tuple(self.record["approval"]["approvers"]),
                              self.record["approval"]["source"]),
            pull_request=self.record["pull_request"], retired=self.item.request is None,
            caught_up=self.item.request_commit if self.item.missed else None,
        )

    def _payload(self, want: Desired) -> dict[str, Any]:
        return {
            "target": self.t.name,
            "experiment_id": want.config.experiment_id,
            "commit": self.commit,
            "content_sha256": want.config.content_sha256,
            "hyperparameters": want.ssm,
            "hyperparameters_path": self.t.ssm_prefix,
            "config_uri": self.t.config_uri,
            "model_artifact": want.config.model_artifact,
        }

    def finish(self, outcome: Outcome, commented: bool) -> None:
        """Record the outcome unless a finished record already says all of it."""
        if outcome.noop and self.previous.get("status") == "complete" and (
                commented == self.record["commented"]):
            return
        self.save(
            "complete", commented=commented, backup_key=outcome.backup_key,
            config_version=outcome.config_version or self.previous.get("config_version"),
            config_archive=outcome.config_archive or self.previous.get("config_archive"),
            execution_arn=outcome.execution_arn, execution_status=outcome.execution_status,
            endpoint=outcome.endpoint, endpoint_actions=list(outcome.endpoint_actions),
            variants=[v.__dict__ for v in outcome.variants], finished_at=_iso(self.now),
        )


def apply(
    repo: Path, before: str | None, after: str, host: GitHubHost | None,
    now: dt.datetime | None = None, report: Callable[[Outcome], None] | None = None,
    warn: Callable[[str], None] = _warn,
) -> list[Outcome]:
    """Reconcile AWS to every request file changed in ``before..after``, in path order, then to
    every other request file at ``after`` that production does not serve yet (missed).

    A file of the range that is not planned or not approved refuses the whole run before
    anything changes; a missed one is skipped with a warning through ``warn``.
    """
    from bot.adapters.aws import lock
    from bot.adapters.aws.live import read_live
    from bot.core.desired_state import execution_name
    from bot.flows.rollout_history import retrain_commit

    commit = git.rev_parse(repo, after)
    found = git.changed_requests(repo, before, commit, settings().requests_dir)
    items = [_prepare(repo, commit, path, status) for path, status in found]
    names = [i.target.name for i in items if i.request is not None]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise NotPlanned(f"more than one request file for target(s) {', '.join(twice)} in "
                         f"{commit[:12]}; keep one file per target; {NOTHING}")
    at_commit = _requests_at(repo, commit)
    # x.yml renamed to x.yaml: the target lives on in the other file, nothing is retired.
    alive = {PurePosixPath(p).stem for p in at_commit}
    items = [i for i in items if i.request is not None or i.target.name not in alive]
    pulls: dict[str, int | None] = {}
    items = [_approve(repo, i, host, pulls) for i in items]  # NotApproved: nothing changed
    items += _missed(repo, commit, at_commit, {p for p, _ in found}, set(names), host, pulls,
                     warn)
    if not items:
        return []
    if host is not None:
        ranged = ", ".join(i.target.name for i in items if not i.missed)
        missed = ", ".join(i.target.name for i in items if i.missed)
        host.set_status(commit, STATUS_CONTEXT, "pending", "; ".join(
            [*([f"applying {ranged}"] if ranged else []),
             *([f"catching up {missed} (changes no run applied)"] if missed else [])]))
    owner = f"{lock.default_owner()} applying {commit[:12]}"
    outcomes: list[Outcome] = []
    skipped: list[str] = []
    for item in items:
        t, pull_request = item.target, item.pull_request
        run = _Run(repo, item, commit, before, now)
        locked = False
        try:
            with lock.acquire(t, owner) as held:
                locked = True
                request, plan = item.request, item.plan
                if request is not None and plan is not None:
                    retrain = retrain_commit(repo, commit, item.path, request) or commit
                    name = (execution_name(t, retrain, request)
                            if request.rollout.pipeline else None)
                    live = read_live(t, name)
                    want: Desired | None = desired(t, request, plan, live.config, commit,
                                                   pull_request, item.approval,
                                                   retrain_commit=retrain)
                else:
                    live = read_live(t, None)
                    want = _retired(t, live)
                outcome = run.reconcile(want, live, held)
                commented = run.record["commented"]
                if host is not None and pull_request is not None and (
                        not outcome.noop or not commented):
                    host.upsert_comment(pull_request, f"apply:{t.name}", comment(outcome))
                    commented = True
                run.finish(outcome, commented)
        except LockHeld as error:
            if not item.missed or locked:
                _failed(run, host, commit, pull_request, error)
                raise
            # Nothing changed yet: someone else is applying this target; the next run catches
            # up again.
            warn(f"{missed_line(item.path, item.request_commit).removesuffix(': applying it now')}"
                 f", and cannot be applied now: {error.message}; skipped {item.path}")
            skipped.append(t.name)
            continue
        except BaseException as error:
            _failed(run, host, commit, pull_request, error)
            raise
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    if host is not None:
        done = [o for o in outcomes if not o.noop]
        host.set_status(commit, STATUS_CONTEXT, "success", (
            f"applied {', '.join(o.target for o in done)}" if done
            else "no changes: production already matches")
            + (f"; skipped {', '.join(skipped)} (locked)" if skipped else ""))
    return outcomes


def _failed(run: _Run, host: GitHubHost | None, commit: str, pull_request: int | None,
            error: BaseException) -> None:
    """Say where apply stopped; best effort, the error that stopped it matters more."""
    message = f"{type(error).__name__}: {error}"
    if not isinstance(error, LockHeld):  # the holder's record is the holder's to write
        with contextlib.suppress(Exception):
            run.save("failed", error=message)
    if host is None:
        return
    with contextlib.suppress(Exception):
        host.set_status(commit, STATUS_CONTEXT, "failure",
                        f"{run.t.name}: {message}; rerun apply to finish")
    if pull_request is not None:
        with contextlib.suppress(Exception):
            host.upsert_comment(pull_request, f"apply:{run.t.name}", (
                f"### ❌ promotion-bot apply of `{run.t.name}` stopped\n\n"
                f"```\n{message}\n```\n\nProduction may be partly updated; every step is "
                "idempotent, so rerunning apply finishes the job. Backups made so far: "
                + (", ".join(f"`{k}`" for k in run.record["backup_keys"]) or "none")))


_MODEL_URI = re.compile(r"(s3://[^\s/]+/)\S*?models/([0-9a-f]{12})[0-9a-f]+/model\.tar\.gz")
_LONG_HEX = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{28,}\b")


def shorten(value: Any, width: int = 90) -> str:
    """A value for people: model URIs and hashes shortened, long text cut."""
    if value is None:
        return "(absent)"
    text = _LONG_HEX.sub(r"\1", _MODEL_URI.sub(r"\1…/\2…/model.tar.gz", str(value)))
    return text if len(text) <= width else text[: width - 1] + "…"


def change_lines(change: Change | dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(where, what, before, after) for people: config fields by name, dicts key by key."""
    c = change if isinstance(change, dict) else _change_json(change)
    where, key, before, after = str(c.get("target")), str(c.get("key")), c.get("before"), \
        c.get("after")
    if where == "s3-config":
        key = key.rsplit("#", 1)[-1]
        if isinstance(before, dict) and isinstance(after, dict):
            return [(where, f"{key}.{k}", before.get(k), after.get(k))
                    for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return [(where, key, before, after)]


def _approval_line(approval: Approval) -> str:
    how = {"github-reviews": "approving reviews on GitHub",
           "commit-author": "merge commit author: no GitHub context"}.get(
        approval.source, approval.source)
    return f"approved by: {', '.join(approval.approvers)} ({how})"


def describe(outcome: Outcome) -> str:
    """The outcome as the terminal shows it: one block per target."""
    o = outcome
    pr = f", PR #{o.pull_request}" if o.pull_request else ""
    head = f"{o.target}: {o.path} at {o.commit[:12]}{pr}"
    missed = [f"  {missed_line(o.path, o.caught_up)}"] if o.caught_up else []
    if o.noop:
        lines = [f"{o.target}: no changes: production already matches {o.path} at {o.commit[:12]}",
                 *missed]
        if o.backup_key:
            lines.append(f"  backup (from the interrupted run): {o.backup_key}")
        if o.execution_arn:
            lines.append(f"  pipeline: {o.execution_arn} {o.execution_status}")
        return "\n".join(lines)
    lines = [head, *missed, f"  {_approval_line(o.approval)}"]
    if o.retired:
        lines.append("  request file deleted: challenger retired, champion left in place")
    for c in o.changes:
        lines += [f"  {where:<9} {what}: {shorten(before)} → {shorten(after)}"
                  for where, what, before, after in change_lines(c)]
    for c in o.drift:
        lines.append(f"  DRIFT {c.key}: live {shorten(c.before)} was changed by hand; overwritten "
                     f"with {shorten(c.after)} (the hand-made value is in the backup)")
    if o.backup_key:
        lines.append(f"  backup: {o.backup_key}")
    if o.config_version:
        archived = f" (previous archived at {o.config_archive})" if o.config_archive else ""
        lines.append(f"  config version: {o.config_version}{archived}")
    if o.execution_arn:
        lines.append(f"  pipeline: {o.execution_arn} {o.execution_status}")
    if o.endpoint:
        lines.append(f"  endpoint {o.endpoint}: " + ", ".join(
            f"{v.name} {v.weight}% {shorten(v.model_data_url)}" for v in o.variants))
        lines += [f"    {a}" for a in o.endpoint_actions]
    return "\n".join(lines)


def comment(outcome: Outcome) -> str:
    """The outcome as the merged PR's comment (Markdown)."""
    o = outcome
    if o.noop:
        return (f"### promotion-bot apply: `{o.target}`\n\nNo changes: production already "
                f"matches `{o.path}` at `{o.commit[:12]}`.")
    rows = [f"### ✅ promotion-bot applied `{o.target}` at `{o.commit[:12]}`", ""]
    if o.caught_up:
        rows += [f"> ⏭️ {missed_line(o.path, o.caught_up)}", ""]
    rows += [_approval_line(o.approval), ""]
    if o.retired:
        rows += ["The request file was deleted: challenger retired, champion left in place.", ""]
    rows += ["| where | what | before | after |", "| --- | --- | --- | --- |"]
    rows += [f"| {where}{' ⚠️ drift' if c.drift else ''} | `{what}` | `{shorten(before, 80)}` "
             f"| `{shorten(after, 80)}` |"
             for c in o.changes for where, what, before, after in change_lines(c)]
    rows.append("")
    if o.drift:
        rows += [f"> ⚠️ **Drift:** {len(o.drift)} live value(s) had been changed by hand; "
                 "overwritten by the desired state, the hand-made values are in the backup.", ""]
    facts = [("SSM backup", o.backup_key), ("config version", o.config_version),
             ("previous config archived", o.config_archive),
             ("pipeline execution", f"{o.execution_arn} ({o.execution_status})"
              if o.execution_arn else None),
             ("endpoint", f"{o.endpoint}: " + ", ".join(
                 f"{v.name} {v.weight}%" for v in o.variants) if o.endpoint else None)]
    rows += [f"- **{label}:** `{value}`" for label, value in facts if value]
    return "\n".join(rows)
