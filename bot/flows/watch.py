"""The watcher: each target's challenger against its alarms; the brake when one fires.

For every request file of the checked-out default branch: the production config (which
commit and pull request production serves, the challenger's share), the live endpoint, the
request at the config's commit and the alarms it is watched by. When one of them is in ALARM
while the challenger serves traffic:

1. brake: challenger weight 0, champion 100, at once (``endpoint.brake``);
2. record why: the incident record in S3, written once (``bot.core.incident``);
3. reject the challenger's model in the Model Registry, with the alarm as the reason;
4. push a branch reverting the config's commit and open its pull request;
5. comment on the pull request that merged the braked change.

Each step finds what an earlier run did (the incident, the branch, the pull request, the
comment by its marker), so one incident has one revert pull request however often it runs.
A GitHub that cannot be reached does not stop the brake: the run says so and fails, and the
next run opens the pull request. A target that cannot be watched (AWS refuses a read, the
config's commit is not in the checkout) is said in one line and the others are still watched:
one broken target never keeps another's challenger from its brake. The alarm's history in
the pull request's body is DescribeAlarmHistory's latest state changes (the local AWS serves
it from what moto keeps: ``bot.local.moto_gaps``), else its state and reason now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot.adapters import git
from bot.adapters.aws import alarms, config_store, endpoint, incidents, registry
from bot.adapters.github import GitHubHost
from bot.adapters.request_files import parse_request_text
from bot.core import incident as inc
from bot.core.alarms import CHALLENGER_VARIANT, AlarmState, watched
from bot.core.incident import Incident
from bot.errors import AwsError, BotError
from bot.settings import Target, target

REQUESTS = "promotion-requests"


@dataclass(frozen=True)
class Watched:
    """What the watcher found and did for one target."""

    target: str
    line: str  # one line: what it found, what it did
    incident: Incident | None = None
    braked: bool = False  # this run took the challenger's traffic away
    revert_pull: int | None = None
    github_failed: str | None = None  # why the revert pull request could not be opened
    failed: str | None = None  # why this target could not be watched (a brake taken stands)


@dataclass(frozen=True)
class Git:
    """Where the watcher's revert branch goes: the repository, the branch it reverts on, the
    remote to push to and the token that may push (never printed)."""

    repo: Path
    base: str
    remote: str
    token: str | None = None


def targets(repo: Path) -> list[str]:
    """The request files of the checked-out branch, sorted."""
    listed = git.output(repo, "ls-tree", "--name-only", "HEAD", f"{REQUESTS}/")
    return sorted(p for p in listed.splitlines() if git.is_request(p, REQUESTS))


def watch(where: Git, github: GitHubHost | None,
          now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
          report: Callable[[Watched], None] = lambda w: None) -> list[Watched]:
    """Watch every target; what happened to each, in order."""
    done = []
    for path in targets(where.repo):
        name = PurePosixPath(path).stem
        try:
            result = watch_target(target(name), where, github, now)
        except AwsError as error:
            result = Watched(name, f"{name}: AWS failed while watching: {error.explanation}; "
                             "a brake already taken stands, rerun watch to finish",
                             failed=error.explanation)
        except BotError as error:
            result = Watched(name, f"{name}: could not watch: {error.message}",
                             failed=error.message)
        report(result)
        done.append(result)
    return done


def _request_at(where: Git, t: Target, commit: str) -> str | None:
    for suffix in git.REQUEST_SUFFIXES:
        path = f"{REQUESTS}/{t.name}{suffix}"
        text = git.show(where.repo, commit, path)
        if text is not None:
            return text
    return None


def watch_target(t: Target, where: Git, github: GitHubHost | None,
                 now: Callable[[], dt.datetime]) -> Watched:
    config = config_store.read(t)
    if config is None:
        return Watched(t.name, f"{t.name}: no production config: nothing to watch")
    found = incidents.read(t, config.commit)
    live = endpoint.read(t)
    challenger = live.variant(CHALLENGER_VARIANT) if live is not None else None
    weight = challenger.weight if challenger is not None else 0
    if found is None and (not config.challenger_traffic_percent or challenger is None):
        return Watched(t.name, f"{t.name}: no challenger serves: nothing to watch")
    text = _request_at(where, t, config.commit)
    if text is None:
        raise BotError(f"{t.name}: the production config's commit {config.commit[:12]} has no "
                       f"{REQUESTS}/{t.name}.yaml in {where.repo}: fetch the full history")
    request, _ = parse_request_text(text, f"{REQUESTS}/{t.name}.yaml@{config.commit[:12]}")
    names = watched(t, request)
    states = alarms.states(names, t.region) if names else {}
    firing = inc.brakes(weight, states)
    braked = False
    if firing is not None and challenger is not None:
        endpoint.brake(t)
        braked = True
        if found is None:
            found = incidents.record(t, inc.new(
                target=t.name, commit=config.commit, pull_request=config.pull_request,
                model_artifact=challenger.model_data_url, weight_before=weight, alarm=firing,
                history=_history(t, firing), now=now()))
    if found is None:
        shown = ", ".join(f"{n} {states[n].state}" if n in states else f"{n} missing"
                          for n in names) or "none"
        return Watched(t.name, f"{t.name}: challenger at {weight} %, alarms: {shown}")
    registry.reject(t, found.model_artifact,
                    f"braked by the watcher: alarm {found.alarm} in {found.state} "
                    f"({found.braked_at})")
    what = (f"{t.name}: braked the challenger ({found.weight_before} % → 0 %): alarm "
            f"{found.alarm} in {found.state}" if braked else
            f"{t.name}: braked before ({found.braked_at}, alarm {found.alarm})")
    try:
        number, url = _revert_pull(found, where, github)
    except BotError as error:
        return Watched(t.name, f"{what}; could not open the revert pull request: "
                       f"{error.message}", found, braked, None, error.message)
    return Watched(t.name, f"{what}; revert pull request #{number} {url}", found, braked,
                   number)


def _history(t: Target, alarm: AlarmState) -> tuple[str, ...]:
    """The alarm's recent state changes (DescribeAlarmHistory), else its state now."""
    recent = alarms.history(alarm.name, t.region)
    if recent:
        return recent
    when = alarm.updated.astimezone(dt.UTC).isoformat(timespec="seconds") if alarm.updated \
        else "(time unknown)"
    return (f"{when} {alarm.name} → {alarm.state}: {alarm.reason}",)


def _revert_pull(found: Incident, where: Git, github: GitHubHost | None) -> tuple[int, str]:
    """The incident's revert pull request: found, or its branch pushed (unless there) and
    opened; then the comment on the pull request of the braked change (found by marker)."""
    if github is None:
        raise BotError("no GitHub token or repository (GITHUB_TOKEN, GITHUB_REPOSITORY)")
    existing = github.pull_of_branch(found.branch)
    if existing is None:
        if git.remote_branch(where.repo, where.remote, found.branch, where.token) is None:
            git.push_revert(where.repo, found.commit, where.base, found.branch, where.remote,
                            where.token)
        existing = github.open_pull(found.branch, _branch_name(where.base),
                                    inc.pull_title(found), inc.pull_body(found))
    number, url = existing
    if found.pull_request:
        github.upsert_comment(found.pull_request, f"{inc.COMMENT_MARKER}:{found.target}",
                              inc.original_comment(found, number, url))
    return number, url


def _branch_name(base: str) -> str:
    return base.removeprefix("refs/heads/").removeprefix("origin/")

