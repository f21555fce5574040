"""Apply's checks before anything changes: each request file is a regular file whose
reviewed pull request head has a passing plan for its exact content, signed by the plan job,
recent and judged against the champion production still serves; the reviewed model's bytes
are the ones that plan signed; the rollout step is one the rules allow from what production
serves; and the pull request that last changed the file is approved by GitHub's rules. Also
the request files a cancelled run never applied ("missed")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.adapters import git
from bot.adapters.aws import alarms as cloudwatch
from bot.adapters.aws import artifacts, config_store, endpoint, pipeline, plan_store, s3
from bot.adapters.request_files import history, parse_request_text
from bot.core import alarms, codeowners, names
from bot.core.approvals import count_approvals
from bot.core.domain import Approval, Plan
from bot.core.integrity import model_digest
from bot.core.plan_json import UnreadablePlan
from bot.core.production_config import ProductionConfig, champion_identity
from bot.core.request import Request
from bot.core.request_history import previous_state
from bot.core.rollout_rules import check_rollout_step
from bot.errors import BotError, NotApproved, NotPlanned, RolloutRefused
from bot.settings import Target, settings, target

if TYPE_CHECKING:
    from bot.adapters.aws.plan_store import StoredPlan
    from bot.adapters.github import GitHubHost
    from bot.core.approvals import PullReviews

NOTHING = "nothing was applied"


@dataclass(frozen=True)
class Item:
    """One changed request file, checked and ready to apply."""

    target: Target
    path: str
    request: Request | None  # None: deleted
    plan: Plan | None
    request_commit: str  # the last commit up to the range's end that touched the file
    pull_request: int | None = None  # the merged PR of request_commit
    # That PR's approvers (request_commit's author when not on GitHub); set by _approve.
    approval: Approval = field(default_factory=lambda: Approval((), "pending"))
    missed: bool = False  # not changed in the range: a change that no run applied
    plan_digest: str | None = None  # the plan's name in the store (sha256 of its plan.json)


def parse_request(text: str, path: str) -> Request:
    return parse_request_text(text, path)[0]


def prepare(repo: Path, commit: str, path: str, status: str,
            now: datetime | None = None, host: GitHubHost | None = None,
            pulls: dict[str, int | None] | None = None) -> Item:
    """Everything apply needs for one file, or a refusal before anything changes: the file
    is a regular file, the plan of the reviewed head (``reviewed_head``) is signed by the plan
    job, of this content, passed, recent, and judged against the champion production still
    serves; the reviewed model's bytes are the ones the plan signed, and the rollout step is
    allowed. ``pulls`` caches the pull request of a commit (shared with ``approve``)."""
    t = target(PurePosixPath(path).stem)
    request_commit = _last_change(repo, commit, path)
    nothing = NOTHING
    live = config_store.read(t)
    _check_served_models(live, f"{path} at {commit[:12]}")
    if status == "D":
        return Item(t, path, None, None, request_commit)
    try:
        text = git.show(repo, commit, path)
    except git.NotAFile as error:
        raise NotPlanned(f"{error.message}; {nothing}") from None
    if text is None:
        raise NotPlanned(f"{path} is not in commit {commit[:12]}")
    request, lines = parse_request_text(text, path)
    now = now or datetime.now(UTC)
    head, how = reviewed_head(repo, commit, path, host, {} if pulls is None else pulls)
    stored = _plan_of(t, f"{path} at {commit[:12]}", request.content_sha256(), head, how,
                      live, now)
    plan = stored.plan
    try:
        if not s3.exists_uri(plan.artifact):
            raise NotPlanned(
                f"{path} at {commit[:12]}: the reviewed model {plan.artifact} is missing; "
                f"re-run plan; {nothing}"
            )
        artifacts.verify_model(plan.artifact)
    except NotPlanned:
        raise
    except BotError as error:  # bytes that are not the reviewed ones, or an unreadable model
        raise NotPlanned(f"{path} at {commit[:12]}: {error.message}; {nothing}") from None
    serving = _serving(repo, live, commit, request_commit)
    served, since = previous_state(history(repo, serving, path) if serving is not None else ())
    problems = check_rollout_step(path, request, lines, served, since, now)
    if problems:
        raise RolloutRefused(f"{'; '.join(str(p) for p in problems)} (apply checks the rollout "
                             f"rules against what production serves); {nothing}")
    _check_alarms(t, f"{path} at {commit[:12]}", request, served, live)
    if request.rollout.pipeline:
        pipeline.state_machine_arn(t)
    return Item(t, path, request, plan, request_commit, plan_digest=stored.digest)


def _check_alarms(t: Target, where: str, request: Request, served: Request | None,
                  config: ProductionConfig | None) -> None:
    """No step up while an alarm fires: ``RolloutRefused`` naming each alarm in ALARM that
    guards the challenger (the bot's own and the ones the request, or the request production
    serves, lists) when ``request`` raises the challenger's live share or promotes it. Going
    down or removing the challenger never reads an alarm."""
    if alarms.challenger_share(request) == 0:
        return
    before, after = alarms.shares(request, config, endpoint.read(t))
    if after <= before:
        return
    names = dict.fromkeys((*alarms.guarding(t, request), *alarms.guarding(t, served)))
    fired = alarms.blocking(before, after, cloudwatch.states(list(names), t.region))
    if fired:
        raise RolloutRefused(f"{where}: {alarms.refusal(before, after, fired)}; {NOTHING}")


def reviewed_head(repo: Path, commit: str, path: str, host: GitHubHost | None,
                  pulls: dict[str, int | None]) -> tuple[str, str]:
    """The pull request head whose plan the reviewers saw for ``path`` as it is at ``commit``,
    and how it was found: the second parent of the merge commit that brought the change in;
    for a squash or rebase merge, the pull request's head as the code host says; else (a
    direct push, or no code host) the commit that changed the file itself."""
    found = git.landing(repo, commit, path)
    if found is None:
        return commit, "the commit itself"
    landed, parents = found
    if len(parents) > 1:
        return parents[1], f"the second parent of merge {landed[:12]}"
    if host is not None:
        if landed not in pulls:
            pulls[landed] = host.pull_for_commit(landed)
        number = pulls[landed]
        if number is not None:
            return host.pull_head(number), f"the head of PR #{number}"
    return landed, "the commit itself, merged from no pull request"


def _plan_of(t: Target, where: str, sha: str, head: str, how: str,
             live: ProductionConfig | None, now: datetime) -> StoredPlan:
    """The plan of the reviewed ``head`` once it may be applied to content ``sha``; else
    ``NotPlanned`` in one line naming the plan, the head and what differs."""
    try:
        stored = plan_store.plan_of_head(t, head)
    except UnreadablePlan as error:
        raise NotPlanned(f"{where}: {error.message}; re-run plan on its pull request (head "
                         f"{head[:12]}); {NOTHING}") from None
    if stored is None:
        legacy = plan_store.legacy_plan(t, sha)
        if legacy is not None:
            raise NotPlanned(
                f"{where}: the only plan of this content, {legacy}, is of an older format that "
                f"names no pull request head; re-plan its pull request (head {head[:12]}); "
                f"{NOTHING}")
        raise NotPlanned(
            f"{where}: the reviewed head {head[:12]} ({how}) was never planned, no plan under "
            f"{names.head_index(t, head)}; run plan on its pull request first; {NOTHING}")
    plan, of = stored.plan, f"the plan {stored.uri} of head {head[:12]}"
    if plan.content_sha256 != sha:
        raise NotPlanned(
            f"{where}: {of} is of content {plan.content_sha256[:12]}, but the merged request "
            f"has content {sha[:12]} (changed in the merge?); re-plan; {NOTHING}")
    if not plan.passed:
        raise NotPlanned(f"{where}: {of} did not pass its gates; {NOTHING}")
    signed = datetime.fromisoformat(stored.signed_at)
    limit = settings().plan_max_age_days
    if now - signed > timedelta(days=limit):
        raise NotPlanned(
            f"{where}: {of} was signed {stored.signed_at}, {(now - signed).days} days ago, more "
            f"than the {limit:g} days a plan is trusted (PROMOTION_BOT_PLAN_MAX_AGE_DAYS); "
            f"re-plan; {NOTHING}")
    serves = champion_identity(live)
    applied = live is not None and (live.content_sha256, live.model_artifact) == (
        plan.content_sha256, plan.artifact)  # this plan's own apply, run again
    if serves != plan.champion_identity and not applied:
        raise NotPlanned(
            f"{where}: production changed since this plan: re-plan ({of} was judged against "
            f"{_champion(plan.champion_identity)}, production now serves {_champion(serves)}); "
            f"{NOTHING}")
    return stored


def _champion(identity: str) -> str:
    """A champion identity (``production_config.champion_identity``) in a few words."""
    if identity == "seed-baseline":
        return "the seed baseline"
    if identity.startswith("recorded:"):
        return f"the recorded metrics of content {identity.removeprefix('recorded:')[:12]}"
    digest = model_digest(identity)
    return f"model {digest[:12]}" if digest else identity


def _serving(repo: Path, live: ProductionConfig | None, commit: str,
             request_commit: str) -> str | None:
    """The commit whose request production serves: the one it was last applied from, when
    git knows it; else the one before the file's last change. None: nothing serves it."""
    if live is None:
        return None
    applied = git.resolve(repo, live.commit)
    if applied is not None and git.is_ancestor(repo, applied, commit):
        return applied
    return git.resolve(repo, f"{request_commit}^")


def _check_served_models(live: ProductionConfig | None, where: str) -> None:
    """The champion and previous champion apply may (re)deploy still have their reviewed
    bytes (their names say which); ``NotPlanned`` naming both digests otherwise."""
    if live is None:
        return
    for model in (live.champion, live.previous_champion):
        if model is not None and model_digest(model.model_artifact) is not None:
            try:
                artifacts.verify_model(model.model_artifact)
            except artifacts.TamperedModel as error:
                raise NotPlanned(f"{where}: production's {model.experiment_id} model: "
                                 f"{error.message}; {NOTHING}") from None


def _last_change(repo: Path, commit: str, path: str) -> str:
    touched = git.log(repo, path, rev=commit, max_count=1)
    return touched[0].sha if touched else commit


def approve(repo: Path, item: Item, host: GitHubHost | None,
             pulls: dict[str, int | None], commit: str | None = None) -> Item:
    """``item`` with the PR that last changed its file and that PR's counted approvers.

    ``commit`` is the range's end (where CODEOWNERS is read when the PR's base is unknown).
    """
    sha = item.request_commit
    if host is not None and sha not in pulls:
        pulls[sha] = host.pull_for_commit(sha)
    pull_request = pulls.get(sha)
    try:
        approval = approval_for(repo, sha, host, pull_request, item.path, commit or sha)
    except NotApproved as error:
        raise NotApproved(f"{item.path}: {error.message}") from None
    return replace(item, pull_request=pull_request, approval=approval)


def requests_at(repo: Path, commit: str,
                warn: Callable[[str], None] | None = None) -> dict[str, str]:
    """Every request file present at ``commit``, path → text; a link is left out (with a
    warning through ``warn``): a request file must be a regular file."""
    found = {}
    for path in git.request_paths(repo, settings().requests_dir, commit):
        try:
            text = git.show(repo, commit, path)
        except git.NotAFile as error:
            if warn is not None:
                warn(f"{error.message}; skipped {path}")
            continue
        if text is not None:
            found[path] = text
    return found


def _unapplied(repo: Path, commit: str, t: Target, sha: str,
               live: ProductionConfig | None) -> bool:
    """Whether production does not serve content ``sha`` of ``t`` as of ``commit`` yet."""
    if live is not None and live.content_sha256 == sha:
        # Served; unless a catch-up of this very commit stopped half-way: finish it.
        record = artifacts.get_apply_record(t, commit)
        return record is not None and not record.finished
    applied_at = git.resolve(repo, live.commit) if live is not None else None
    # Applied from this commit or a later one (a re-run of an old range): not ours to undo.
    return applied_at is None or not git.is_ancestor(repo, commit, applied_at)


def reason(error: BaseException) -> str:
    if isinstance(error, BotError):
        return error.message.removesuffix(f"; {NOTHING}")
    return f"{type(error).__name__}: {error}"


def missed_items(repo: Path, commit: str, at_commit: dict[str, str], in_range: set[str],
            range_targets: set[str], host: GitHubHost | None, pulls: dict[str, int | None],
            warn: Callable[[str], None], now: datetime | None = None) -> list[Item]:
    """Request files at ``commit``, not changed in the range, that production does not serve.

    Each one that cannot be applied is skipped with a warning, never raised: the files of
    the range must not wait for an old change that nobody planned or approved.
    """
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
            item = approve(repo, prepare(repo, commit, path, "M", now, host, pulls), host, pulls,
                           commit)
        except BotError as error:  # AwsError included
            warn(f"{path} was changed in {changed_in[:12] or '?'} but never applied (a cancelled "
                 f"run?), and cannot be applied now: {reason(error)}; skipped {path}, the "
                 "other requests are applied")
            continue
        items.append(replace(item, missed=True))
    return items


def approval_for(repo: Path, commit: str, host: GitHubHost | None,
                 pull_request: int | None, path: str = "", at: str | None = None) -> Approval:
    """The PR's approvers as GitHub's rules count them (``bot.core.approvals``); the commit's
    author only when not on GitHub. ``path`` is the request file (for CODEOWNERS) and ``at``
    the commit to read CODEOWNERS at when the PR's base is not in this repository."""
    if host is None:
        return Approval((git.commit_author(repo, commit),), "commit-author")
    if pull_request is None:
        raise NotApproved(
            f"commit {commit[:12]} did not come from a merged pull request, so nobody approved "
            f"it (merge promotions through reviewed pull requests); {NOTHING}"
        )
    pull = host.pull_reviews(pull_request)
    reviewers = {r.login for r in pull.reviews if not r.bot}
    owned = tuple((frozenset(login.lower() for login in reviewers if _owns(host, owners, login)),
                   ", ".join(owners)) for owners in _owners(repo, pull, path, at or commit))
    counted = count_approvals(pull, settings().required_approvals, also_owned=owned)
    if not counted.approved:
        raise NotApproved(f"{counted.refusal()}; {NOTHING}")
    return Approval(counted.approvers, "github-reviews")


def _owners(repo: Path, pull: PullReviews, path: str,
            fallback: str) -> list[tuple[str, ...]]:
    """Who CODEOWNERS names for ``path``, read where GitHub reads it: the base branch's
    CODEOWNERS as it is when the pull request merges
    (https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners#codeowners-and-branch-protection),
    not at the base the pull request was opened on: a line added to the base meanwhile
    counts. That is the merge commit's first parent for a merge or a squash. A rebase merge
    of n commits makes n commits on the base, whose first parent holds the pull request's
    own earlier commits; the base as merged is then n commits back. The two cannot be told
    apart from the merge commit alone, so for a one-parent merge commit of a pull request of
    several commits both readings count, each needing a code owner's approval. At
    ``fallback`` when the merge commit is not in this repository. Each reading that names
    owners, in that order; [] without such a line."""
    if not path:
        return []
    merge = git.resolve(repo, pull.merge_sha) if pull.merge_sha else None
    if merge is None:
        readings = [git.resolve(repo, fallback)]
    else:
        readings = [git.resolve(repo, f"{merge}^1")]
        commits = len(pull.commits)
        if git.resolve(repo, f"{merge}^2") is None and commits > 1:
            readings.append(git.resolve(repo, f"{merge}~{commits}"))
    found: list[tuple[str, ...]] = []
    for base in readings:
        owners = _owners_at(repo, base, path) if base else ()
        if owners and owners not in found:
            found.append(owners)
    return found


def _owners_at(repo: Path, commit: str, path: str) -> tuple[str, ...]:
    for location in codeowners.LOCATIONS:
        text = git.show(repo, commit, location)
        if text is not None:
            return codeowners.owners(text, path)
    return ()


def _owns(host: GitHubHost, owners: tuple[str, ...], login: str) -> bool:
    """Whether ``login`` is one of ``owners`` (``@user`` or a member of ``@org/team``)."""
    for owner in owners:
        name = owner.removeprefix("@")
        if "/" in name:
            if host.is_team_member(name, login):
                return True
        elif owner.startswith("@") and name.lower() == login.lower():
            return True
    return False
