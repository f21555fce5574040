"""The audit trail of a target: git history of its request file, joined with stored plans
and apply records (who requested, who approved, what was applied, what was reverted, when).

The plan shown for a change is the one its reviewers saw: the plan of the pull request head
that was merged (a merge commit's second parent; for a squash or rebase, the head of the plan
apply used; for a direct push, the commit itself). Each apply names the plan it used.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from bot.adapters import git
from bot.adapters.aws import artifacts, plan_store, registry
from bot.adapters.request_files import parse_request_text
from bot.core.apply_record import ApplyRecord
from bot.core.audit import Commit, Entry
from bot.core.domain import Plan
from bot.core.model_registry import Registered
from bot.core.plan_json import UnreadablePlan
from bot.errors import BotError
from bot.settings import settings, target

_PR_IN_SUBJECT = (re.compile(r"\(#(\d+)\)\s*$"), re.compile(r"^Merge pull request #(\d+)"))


def _pull_request(commit: Commit, applies: tuple[ApplyRecord, ...]) -> int | None:
    for record in applies:
        if record.pull_request is not None:
            return record.pull_request
    for pattern in _PR_IN_SUBJECT:
        found = pattern.search(commit.subject)
        if found:
            return int(found.group(1))
    return None


def trail(repo: Path, target_name: str | None = None) -> list[Entry]:
    """Every change of the requested target (or of every target), newest first per target."""
    requests_dir = settings().requests_dir.strip("/")
    paths = git.request_paths(repo, requests_dir)
    if target_name is not None:
        paths = [p for p in paths if PurePosixPath(p).stem == target_name]
        if not paths:
            raise BotError(f"no request file for {target_name!r} in the history of {repo}")
    entries: list[Entry] = []
    for path in paths:
        t = target(PurePosixPath(path).stem)
        commits = git.log(repo, path)
        by_sha = {c.sha: c for c in commits}
        records, unavailable = _apply_records(t)
        registered = _registry(t) if not unavailable else {}
        landings = [sha for sha, _ in reversed(git.landed(repo, "HEAD", path))]
        for commit in commits:
            applies = tuple(r for r in records
                            if commit.sha in (r.request_commit, r.commit))
            sha = experiment = plan = head = digest = None
            note = unavailable
            linked = False
            try:
                text = git.show(repo, commit.sha, path)
            except git.NotAFile:
                text, linked, note = None, True, "not a regular file at this commit (a link?)"
            if text is not None:
                try:
                    request = parse_request_text(text, path)[0]
                except BotError:
                    note = "request invalid at this commit"
                else:
                    sha, experiment = request.content_sha256(), request.experiment_id
                    if not unavailable:
                        head = _reviewed_head(repo, t, commit.sha, landings, applies)
                        plan, digest, unreadable = _plan(t, head)
                        note = unreadable or note
            reverted = commit.reverts
            entries.append(Entry(
                target=t.name, path=path, commit=commit,
                pull_request=_pull_request(commit, applies), content_sha256=sha,
                experiment_id=experiment, plan=plan, applies=applies,
                reverts=by_sha.get(reverted or "") or _find(repo, reverted),
                deleted=text is None and not linked, note=note, reviewed_head=head,
                plan_digest=digest,
                registry=_registry_state(t, registered, plan),
            ))
    return entries


def _find(repo: Path, sha: str | None) -> Commit | None:
    if not sha or git.resolve(repo, sha) is None:
        return None
    found = git.log(repo, ".", rev=sha, max_count=1)
    return found[0] if found else None


def _apply_records(t: Any) -> tuple[list[ApplyRecord], str]:
    """Stored apply records, or none and why when AWS cannot be reached (git still speaks)."""
    try:
        return artifacts.apply_records(t), ""
    except BotError as error:  # AwsError included
        return [], f"stored plans and applies unavailable: {error.message}"


def _registry(t: Any) -> dict[str, Registered]:
    """The target's registered models by digest (none when the registry cannot be read:
    git and the stored plans still speak)."""
    try:
        return registry.packages(t)
    except BotError:  # AwsError included
        return {}


def _registry_state(t: Any, registered: dict[str, Registered], plan: Plan | None
                    ) -> tuple[str, str | None] | None:
    """The plan's model's status in the registry now, and its approval description."""
    found = registered.get(plan.model_sha256 or "") if plan is not None else None
    if found is None:
        return None
    try:
        return found.status, registry.describe(t, found.arn).approval_description
    except BotError:
        return found.status, None


def _reviewed_head(repo: Path, t: Any, sha: str, landings: list[str],
                   applies: tuple[ApplyRecord, ...]) -> str:
    """The pull request head whose plan the reviewers of change ``sha`` saw. ``landings`` are
    the commits of HEAD's first-parent line that changed the file, oldest first."""
    landed = sha if sha in landings else next(
        (c for c in landings if git.is_ancestor(repo, sha, c)), None)
    if landed is not None:
        parents = git.output(repo, "show", "-s", "--format=%P", landed).split()
        if len(parents) > 1:
            return parents[1]
    for record in applies:  # a squash or rebase: the head apply found on the code host
        digest = record.plan_digest
        if isinstance(digest, str):
            try:
                used = plan_store.get_plan(t, digest)
            except UnreadablePlan:
                continue
            if used is not None and used.identity is not None:
                return used.identity.head
    return sha


def _plan(t: Any, head: str) -> tuple[Plan | None, str | None, str]:
    """The last signed plan of ``head``, its digest, or none and why it cannot be read."""
    try:
        stored = plan_store.plan_of_head(t, head)
    except UnreadablePlan as error:
        return None, None, error.message
    return (None, None, "") if stored is None else (stored.plan, stored.digest, "")
