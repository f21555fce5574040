"""The audit trail of a target: git history of its request file, joined with stored plans
and apply records (who requested, who approved, what was applied, what was reverted, when).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bot.adapters import git
from bot.errors import BotError, is_aws_error
from bot.settings import settings, target

_PR_IN_SUBJECT = (re.compile(r"\(#(\d+)\)\s*$"), re.compile(r"^Merge pull request #(\d+)"))


@dataclass(frozen=True)
class Entry:
    """One commit that changed a request file, with what the bot knows about it."""

    target: str
    path: str
    commit: git.Commit
    pull_request: int | None
    content_sha256: str | None  # None when the file was deleted or unreadable
    experiment_id: str | None
    plan: dict[str, Any] | None
    applies: tuple[dict[str, Any], ...]
    reverts: git.Commit | None
    deleted: bool = False  # the commit deleted the request file
    note: str = ""


def _pull_request(commit: git.Commit, applies: tuple[dict[str, Any], ...]) -> int | None:
    for record in applies:
        if isinstance(record.get("pull_request"), int):
            return int(record["pull_request"])
    for pattern in _PR_IN_SUBJECT:
        found = pattern.search(commit.subject)
        if found:
            return int(found.group(1))
    return None


def trail(repo: Path, target_name: str | None = None) -> list[Entry]:
    """Every change of the requested target (or of every target), newest first per target."""
    from bot.adapters.request_files import parse_request_text

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
        for commit in commits:
            applies = tuple(r for r in records
                            if commit.sha in (r.get("request_commit"), r.get("commit")))
            text = git.show(repo, commit.sha, path)
            sha = experiment = plan = None
            note = unavailable
            if text is not None:
                try:
                    request = parse_request_text(text, path)[0]
                except BotError:
                    note = "request invalid at this commit"
                else:
                    sha, experiment = request.content_sha256(), request.experiment_id
                    plan = _plan(t, sha) if not unavailable else None
            reverted = commit.reverts
            entries.append(Entry(
                target=t.name, path=path, commit=commit,
                pull_request=_pull_request(commit, applies), content_sha256=sha,
                experiment_id=experiment, plan=plan, applies=applies,
                reverts=by_sha.get(reverted or "") or _find(repo, reverted),
                deleted=text is None, note=note,
            ))
    return entries


def _find(repo: Path, sha: str | None) -> git.Commit | None:
    if not sha or git.resolve(repo, sha) is None:
        return None
    found = git.log(repo, ".", rev=sha, max_count=1)
    return found[0] if found else None


def _apply_records(t: Any) -> tuple[list[dict[str, Any]], str]:
    """Stored apply records, or none and why when AWS cannot be reached (git still speaks)."""
    from bot.adapters.aws import artifacts

    try:
        return artifacts.apply_records(t), ""
    except BotError as error:
        return [], f"stored plans and applies unavailable: {error.message}"
    except Exception as error:
        if not is_aws_error(error):
            raise
        return [], f"stored plans and applies unavailable: {error}"


def _plan(t: Any, sha: str) -> dict[str, Any] | None:
    from bot.adapters.aws import artifacts

    return artifacts.get_plan(t, sha)


def _approval(record: dict[str, Any]) -> str:
    approval = record.get("approval") or {}
    who = ", ".join(approval.get("approvers") or []) or "nobody recorded"
    return f"{who} ({approval.get('source', 'unknown')})"


def _change(change: dict[str, Any]) -> list[str]:
    from bot.report.apply_outcome import change_lines, shorten

    drift = " [drift overwritten]" if change.get("drift") else ""
    return [f"{where} {what}: {shorten(before, 70)} → {shorten(after, 70)}{drift}"
            for where, what, before, after in change_lines(change)]


def _summary(changes: list[dict[str, Any]]) -> list[str]:
    """What an apply changed, one line per place: the PR comment and apply record hold all."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_target.setdefault(str(change.get("target")), []).append(change)
    lines = []
    for where, found in by_target.items():
        if where == "ssm":
            lines.append("ssm: " + ", ".join(line.split(" ", 1)[1].rsplit("/", 1)[-1]
                                            for c in found for line in _change(c)))
        elif where == "s3-config":
            lines.append(f"s3-config: {len(found)} field(s) rewritten")
        else:
            lines += [line for c in found for line in _change(c)]
    drifted = sum(1 for c in changes if c.get("drift"))
    if drifted:
        lines.append(f"drift: {drifted} hand-made value(s) overwritten (kept in the backup)")
    return lines


def _metrics(plan: dict[str, Any]) -> str:
    metrics = plan.get("metrics") or {}
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())
                     if isinstance(v, int | float))


def render(entries: list[Entry]) -> str:
    """The trail as the terminal shows it."""
    if not entries:
        return "no promotion requests in this history"
    out: list[str] = []
    current = None
    for e in entries:
        if e.path != current:
            current = e.path
            out += [""] if out else []
            out.append(f"{e.target} ({e.path})")
        c = e.commit
        pr = f"  PR #{e.pull_request}" if e.pull_request else ""
        out.append(f"  {c.date}  {c.sha[:12]}{pr}  {c.subject}")
        out.append(f"    requested by: {c.author} <{c.email}>")
        if e.reverts is not None:
            out.append(f"    reverts:      {e.reverts.sha[:12]} {e.reverts.subject}")
        elif c.reverts:
            out.append(f"    reverts:      {c.reverts[:12]}")
        if e.deleted:
            out.append("    request deleted: challenger retired")
        elif e.content_sha256 is not None:
            planned = "no stored plan"
            if e.plan is not None:
                verdict = "passed" if e.plan.get("passed") else "FAILED"
                planned = f"plan {verdict}, evaluated {e.plan.get('evaluated_at', '?')}"
                if _metrics(e.plan):
                    planned += f" ({_metrics(e.plan)})"
            out.append(f"    content:      {e.content_sha256[:12]} {e.experiment_id}: {planned}")
        if e.note:
            out.append(f"    note:         {e.note}")
        if not e.applies:
            out.append("    applied:      no apply recorded for this commit")
        for record in e.applies:
            status = record.get("status", "?")
            when = record.get("finished_at") or record.get("updated_at") or "?"
            out.append(f"    approved by:  {_approval(record)}")
            applied_at = str(record.get("commit"))[:12]
            out.append(f"    applied:      {status} at {when} (commit {applied_at})")
            changes = record.get("changes") or []
            if not changes:
                out.append("      no changes: production already matched")
            out += [f"      {line}" for line in _summary(changes)]
            for key in record.get("backup_keys") or []:
                out.append(f"      backup: {key}")
            if record.get("execution_arn"):
                out.append(f"      pipeline: {record['execution_arn']}")
            if record.get("error") and status != "complete":
                out.append(f"      error: {record['error']}")
    return "\n".join(out)
