"""Apply's checks before anything changes: each request file is a regular file with a
passing plan for its exact content, signed by the plan job; the reviewed model's bytes are
the ones that plan signed; the rollout step is one the rules allow from what production
serves; and the pull request that last changed the file is approved by GitHub's rules. Also
the request files a cancelled run never applied ("missed")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.adapters import git
from bot.core.domain import Approval, Plan
from bot.core.plan_json import UnreadablePlan
from bot.core.production_config import ProductionConfig
from bot.core.request import Request
from bot.errors import BotError, NotApproved, NotPlanned, RolloutRefused
from bot.flows.rollout_history import rollout_problems
from bot.settings import Target, settings, target

if TYPE_CHECKING:
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


def parse_request(text: str, path: str) -> Request:
    from bot.adapters.request_files import parse_request_text

    return parse_request_text(text, path)[0]


def prepare(repo: Path, commit: str, path: str, status: str,
            now: datetime | None = None) -> Item:
    """Everything apply needs for one file, or a refusal before anything changes: the file
    is a regular file, its stored plan is signed by the plan job and passed, the reviewed
    model's bytes are the ones the plan signed, and the rollout step is allowed."""
    from bot.adapters.aws import artifacts, config_store, pipeline
    from bot.adapters.request_files import parse_request_text

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
    sha = request.content_sha256()
    where = f"{artifacts.plan_prefix(t, sha)}/plan.json"
    try:
        plan = artifacts.get_plan(t, sha)
    except UnreadablePlan as error:
        raise NotPlanned(f"{path} at {commit[:12]}: {error.message}; re-run plan on its pull "
                         f"request; {nothing}") from None
    if plan is None:
        raise NotPlanned(
            f"{path} at {commit[:12]}: this content (sha256 {sha[:12]}) was never planned, "
            f"no {where}; run plan on its pull request first; {nothing}"
        )
    if not plan.passed:
        raise NotPlanned(
            f"{path} at {commit[:12]}: the plan of this content (sha256 {sha[:12]}) did not "
            f"pass its gates ({where}); {nothing}"
        )
    if plan.content_sha256 != sha or plan.target != t.name:
        raise NotPlanned(
            f"{path} at {commit[:12]}: the stored plan {where} does not belong to this content; "
            f"re-run plan; {nothing}"
        )
    try:
        if not artifacts.exists(plan.artifact):
            raise NotPlanned(
                f"{path} at {commit[:12]}: the reviewed model {plan.artifact} is missing; "
                f"re-run plan; {nothing}"
            )
        artifacts.verify_model(plan.artifact)
    except NotPlanned:
        raise
    except BotError as error:  # bytes that are not the reviewed ones, or an unreadable model
        raise NotPlanned(f"{path} at {commit[:12]}: {error.message}; {nothing}") from None
    problems = rollout_problems(repo, _serving(repo, live, commit, request_commit), path,
                                request, lines, now or datetime.now(UTC))
    if problems:
        raise RolloutRefused(f"{'; '.join(str(p) for p in problems)} (apply checks the rollout "
                             f"rules against what production serves); {nothing}")
    if request.rollout.pipeline:
        pipeline.state_machine_arn(t)
    return Item(t, path, request, plan, request_commit)


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
    from bot.adapters.aws import artifacts
    from bot.core.integrity import model_digest

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
    from bot.adapters.aws import artifacts

    if live is not None and live.content_sha256 == sha:
        # Served; unless a catch-up of this very commit stopped half-way: finish it.
        record = artifacts.get_apply_record(t, commit)
        return record is not None and record.get("status") != "complete"
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
            item = approve(repo, prepare(repo, commit, path, "M", now), host, pulls, commit)
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
    from bot.core.approvals import judge

    if host is None:
        return Approval((git.commit_author(repo, commit),), "commit-author")
    if pull_request is None:
        raise NotApproved(
            f"commit {commit[:12]} did not come from a merged pull request, so nobody approved "
            f"it (merge promotions through reviewed pull requests); {NOTHING}"
        )
    pull = host.pull_reviews(pull_request)
    owners = _owners(repo, pull, path, at or commit)
    code_owners = None
    if owners:
        reviewers = {r.login for r in pull.reviews if not r.bot}
        code_owners = frozenset(login.lower() for login in reviewers
                                if _owns(host, owners, login))
    verdict = judge(pull, settings().required_approvals, code_owners, ", ".join(owners))
    if not verdict.approved:
        raise NotApproved(f"{verdict.refusal()}; {NOTHING}")
    return Approval(verdict.approvers, "github-reviews")


def _owners(repo: Path, pull: PullReviews, path: str, fallback: str) -> tuple[str, ...]:
    """Who CODEOWNERS names for ``path``, read where GitHub reads it: the base branch's
    CODEOWNERS as it is when the pull request merges
    (https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners#codeowners-and-branch-protection),
    that is at the merge commit's first parent (for a merge, squash or rebase alike), not
    at the base the pull request was opened on: a line added to the base meanwhile counts.
    At ``fallback`` when the merge commit is not in this repository; () without a line."""
    from bot.core import codeowners

    if not path:
        return ()
    candidates = [f"{pull.merge_sha}^1" if pull.merge_sha else None, fallback]
    base = next((found for rev in candidates if (found := git.resolve(repo, rev))), None)
    if base is None:
        return ()
    for location in codeowners.LOCATIONS:
        text = git.show(repo, base, location)
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
