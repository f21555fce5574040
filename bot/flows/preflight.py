"""Apply's checks before anything changes: each request file has a passing stored plan
for its exact content and an approval by the pull request that last changed it; and the
request files a cancelled run never applied ("missed")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.adapters import git
from bot.core.domain import Approval, Plan
from bot.core.production_config import ProductionConfig
from bot.core.request import Request
from bot.errors import BotError, NotApproved, NotPlanned, is_aws_error
from bot.report.plan_json import UnreadablePlan
from bot.settings import Target, settings, target

if TYPE_CHECKING:
    from bot.adapters.github import GitHubHost

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


def prepare(repo: Path, commit: str, path: str, status: str) -> Item:
    """Everything apply needs for one file, or a refusal before anything changes."""
    from bot.adapters.aws import artifacts, pipeline

    t = target(PurePosixPath(path).stem)
    request_commit = _last_change(repo, commit, path)
    if status == "D":
        return Item(t, path, None, None, request_commit)
    text = git.show(repo, commit, path)
    if text is None:
        raise NotPlanned(f"{path} is not in commit {commit[:12]}")
    request = parse_request(text, path)
    sha = request.content_sha256()
    where = f"{artifacts.plan_prefix(t, sha)}/plan.json"
    nothing = NOTHING
    try:
        plan = artifacts.get_plan(t, sha)
    except UnreadablePlan as error:
        raise NotPlanned(f"{path} at {commit[:12]}: {error.message}; {nothing}") from None
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
    if not artifacts.exists(plan.artifact):
        raise NotPlanned(
            f"{path} at {commit[:12]}: the reviewed model {plan.artifact} is missing; "
            f"re-run plan; {nothing}"
        )
    if request.rollout.pipeline:
        pipeline.state_machine_arn(t)
    return Item(t, path, request, plan, request_commit)


def _last_change(repo: Path, commit: str, path: str) -> str:
    touched = git.log(repo, path, rev=commit, max_count=1)
    return touched[0].sha if touched else commit


def approve(repo: Path, item: Item, host: GitHubHost | None,
             pulls: dict[str, int | None]) -> Item:
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


def requests_at(repo: Path, commit: str) -> dict[str, str]:
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


def reason(error: BaseException) -> str:
    if isinstance(error, BotError):
        return error.message.removesuffix(f"; {NOTHING}")
    return f"{type(error).__name__}: {error}"


def missed_items(repo: Path, commit: str, at_commit: dict[str, str], in_range: set[str],
            range_targets: set[str], host: GitHubHost | None, pulls: dict[str, int | None],
            warn: Callable[[str], None]) -> list[Item]:
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
            item = approve(repo, prepare(repo, commit, path, "M"), host, pulls)
        except Exception as error:
            if not isinstance(error, BotError) and not is_aws_error(error):
                raise
            warn(f"{path} was changed in {changed_in[:12] or '?'} but never applied (a cancelled "
                 f"run?), and cannot be applied now: {reason(error)}; skipped {path}, the "
                 "other requests are applied")
            continue
        items.append(replace(item, missed=True))
    return items


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


