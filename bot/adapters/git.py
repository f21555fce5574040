"""The git repository: changed request files in a range, a file at a revision, history.

A thin wrapper over the ``git`` command, so it behaves exactly as git does on the runner.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from bot.core.audit import Commit
from bot.errors import BotError

REQUEST_SUFFIXES = (".yaml", ".yml")
_FIELD, _RECORD = "\x1f", "\x1e"  # what %x1f and %x1e print


def _run(repo: Path | str, *args: str, ok: tuple[int, ...] = (0,),
         env: dict[str, str] | None = None, secret: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    """``git ARGS`` in ``repo``; ``env`` adds to the environment; ``secret`` (a token) never
    appears in the error it raises."""
    command = ["git", "--literal-pathspecs", "-C", str(repo), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise BotError("git is not installed (needed to read promotion requests)") from None
    if done.returncode not in ok:
        detail = (done.stderr or done.stdout).strip().splitlines()
        message = (f"`git {' '.join(args)}` failed in {repo}: "
                   f"{detail[-1] if detail else f'exit {done.returncode}'}")
        raise BotError(message.replace(secret, "***") if secret else message)
    return done


def output(repo: Path | str, *args: str) -> str:
    """What ``git ARGS`` prints in ``repo``; a one-line BotError when it fails."""
    return _run(repo, *args).stdout


def rev_parse(repo: Path | str, rev: str) -> str:
    """The full commit id of ``rev``; a clear error when it does not name a commit."""
    done = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
                ok=(0, 1))
    if done.returncode != 0:
        raise BotError(f"{rev!r} is not a commit in {repo}")
    return done.stdout.strip()


def resolve(repo: Path | str, rev: str | None) -> str | None:
    """The full commit id of ``rev``, or None when it is empty, all zeros or not a commit here."""
    if not rev or not rev.strip("0"):
        return None
    done = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
                ok=(0, 1, 128))
    return done.stdout.strip() if done.returncode == 0 else None


def empty_tree(repo: Path | str) -> str:
    """The id of the empty tree (what a range starts from when it has no start)."""
    done = subprocess.run(["git", "-C", str(repo), "hash-object", "-t", "tree", "--stdin"],
                          input="", capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BotError(f"`git hash-object -t tree` failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def is_request(path: str, requests_dir: str = "promotion-requests") -> bool:
    """A request file: ``<requests_dir>/<target>.yaml`` (not nested, not another file type)."""
    p = PurePosixPath(path)
    return str(p.parent) == requests_dir.strip("/") and p.suffix in REQUEST_SUFFIXES


def changed_requests(
    repo: Path | str, before: str | None, after: str, requests_dir: str = "promotion-requests"
) -> list[tuple[str, str]]:
    """Request files changed from ``before`` to ``after`` as (path, A/M/D), sorted by path.

    A rename is a deletion of the old target and an addition of the new one; a missing or
    all-zero ``before`` (new branch, shallow clone) means everything in ``after`` is new.
    """
    end = rev_parse(repo, after)
    start = resolve(repo, before) or empty_tree(repo)
    out = output(repo, "diff", "--name-status", "--no-renames", "-z", start, end, "--",
               f"{requests_dir.strip('/')}/")
    fields = [f for f in out.split("\0") if f]
    found: dict[str, str] = {}
    for status, path in zip(fields[0::2], fields[1::2], strict=True):
        if is_request(path, requests_dir):
            found[path] = "M" if status[0] == "T" else status[0]
    return sorted(found.items())


class NotAFile(BotError):
    """A path that git records as something else than a regular file (a link, a folder)."""


def show(repo: Path | str, rev: str, path: str) -> str | None:
    """The content of ``path`` at ``rev``; None when the file does not exist there.

    A symbolic link (mode 120000), a folder or a submodule is refused with ``NotAFile``:
    its "content" would be another file's, chosen by whoever committed the link.
    """
    commit = rev_parse(repo, rev)
    listed = output(repo, "ls-tree", "-z", "--full-tree", commit, "--", path)
    if not listed.strip("\0"):
        return None
    mode = listed.split(" ", 1)[0]
    if mode not in ("100644", "100755"):
        kind = {"120000": "a symbolic link", "040000": "a folder",
                "160000": "a submodule"}.get(mode, f"not a regular file (mode {mode})")
        raise NotAFile(f"{path} at {commit[:12]} is {kind} in git (mode {mode}), not a regular "
                       "file; request files must be files in the repository, not links")
    return output(repo, "show", f"{commit}:{path}")


def commit_author(repo: Path | str, sha: str) -> str:
    """``Name <email>`` of the author of ``sha``."""
    return output(repo, "show", "-s", "--format=%an <%ae>", rev_parse(repo, sha)).strip()


def log(repo: Path | str, path: str, rev: str = "HEAD", max_count: int | None = None
        ) -> list[Commit]:
    """Commits of ``rev``'s history that touched ``path``, newest first."""
    limit = [f"--max-count={max_count}"] if max_count else []
    out = output(repo, "log", *limit,
               "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%b%x1e",
               rev_parse(repo, rev), "--", path)
    commits = []
    for record in out.split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) == 6:
            sha, author, email, date, subject, body = fields
            commits.append(Commit(sha, author, email, date, subject, body.strip()))
    return commits


def commit(repo: Path | str, rev: str) -> Commit:
    """The commit ``rev``: its author, date, subject and message body."""
    sha = rev_parse(repo, rev)
    out = output(repo, "show", "-s", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%b", sha)
    fields = out.rstrip("\n").split(_FIELD, 5)
    if len(fields) != 6:
        raise BotError(f"`git show {sha[:12]}`: unexpected output")
    return Commit(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5].strip())


def landed(repo: Path | str, rev: str, path: str) -> list[tuple[str, datetime]]:
    """Commits of ``rev``'s first-parent line that changed ``path``, newest first, dated.

    The first-parent line is what the branch itself went through: a PR merged with a
    merge commit counts from the merge, not from when its branch commit was written. The
    committer date is when a commit landed; the author date survives rebases and squashes.
    """
    out = output(repo, "log", "--first-parent", "--format=%H %cI", rev_parse(repo, rev), "--",
               path)
    found = []
    for line in out.splitlines():
        sha, _, date = line.partition(" ")
        if date:
            found.append((sha, datetime.fromisoformat(date).astimezone(UTC)))
    return found


#: The modes of a regular file in git's trees (``100755``: executable).
FILE_MODES = ("100644", "100755")
_NOT_A_FILE = {"120000": "a symbolic link", "040000": "a folder", "160000": "a submodule"}


@dataclass(frozen=True)
class FileVersion:
    """One version of a file on a branch's first-parent line, as git recorded it."""

    commit: str
    landed: datetime  # the committer date: when the commit landed on the branch
    content: bytes | None  # None: deleted here, not a regular file, or over the size limit
    deleted: bool = False
    #: Why there is no content although the file exists: not a regular file, too big.
    problem: str | None = None


def file_history(repo: Path | str, rev: str, path: str, max_bytes: int
                 ) -> tuple[FileVersion, ...]:
    """Every version of ``path`` that landed on ``rev``'s first-parent line (``landed``'s
    commits), newest first, with its content: three ``git`` processes however long the
    history (the log with each version's blob, their sizes, then the blobs).

    A version that is a link, a folder or a submodule, or is larger than ``max_bytes``, has
    no content but a ``problem`` (its "content" would be another file's, chosen by whoever
    committed the link; a huge one is never read into memory).
    """
    out = output(repo, "log", "--first-parent", "-m", "-z", "--raw", "--no-renames",
                 "--no-abbrev", "--format=%x1e%H %cI", rev_parse(repo, rev), "--", path)
    found: list[tuple[str, datetime, str, str]] = []  # commit, landed, mode, blob
    for record in out.split(_RECORD)[1:]:
        header, _, raw = record.partition("\0")
        sha, _, date = header.partition(" ")
        fields = raw.lstrip("\n").split("\0")
        entries = dict(zip(fields[1::2], fields[0::2], strict=False))  # path -> ":m m b b S"
        meta = entries.get(path, "").split()
        mode, blob = (meta[1], meta[3]) if len(meta) == 5 else ("040000", "")
        found.append((sha, datetime.fromisoformat(date).astimezone(UTC), mode, blob))
    blobs = [blob for _, _, mode, blob in found if mode in FILE_MODES]
    sizes = _blob_sizes(repo, blobs)
    contents = _blobs(repo, [b for b in blobs if sizes[b] <= max_bytes])
    versions = []
    for sha, landed_at, mode, blob in found:
        if mode == "000000":
            versions.append(FileVersion(sha, landed_at, None, deleted=True))
        elif mode not in FILE_MODES:
            kind = _NOT_A_FILE.get(mode, f"not a regular file (mode {mode})")
            versions.append(FileVersion(sha, landed_at, None, problem=f"is {kind} in git"))
        elif blob not in contents:
            versions.append(FileVersion(sha, landed_at, None, problem=(
                f"is {sizes[blob]:,} bytes, over the limit of {max_bytes:,}")))
        else:
            versions.append(FileVersion(sha, landed_at, contents[blob]))
    return tuple(versions)


def _cat_file(repo: Path | str, mode: str, objects: list[str]) -> bytes:
    """``git cat-file --batch`` or ``--batch-check`` of ``objects``: one process for all."""
    done = subprocess.run(["git", "-C", str(repo), "cat-file", mode],
                          input="".join(f"{o}\n" for o in objects).encode(),
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise BotError(f"`git cat-file {mode}` failed in {repo}: "
                       f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _blob_sizes(repo: Path | str, blobs: list[str]) -> dict[str, int]:
    if not blobs:
        return {}
    lines = _cat_file(repo, "--batch-check", blobs).decode().splitlines()
    return {sha: int(size) for sha, _, size in (line.split() for line in lines)}


def _blobs(repo: Path | str, blobs: list[str]) -> dict[str, bytes]:
    """The contents of ``blobs``: each answer is a line ``<id> blob <size>``, the bytes and
    a newline."""
    if not blobs:
        return {}
    out, found, at = _cat_file(repo, "--batch", blobs), {}, 0
    while at < len(out):
        end = out.index(b"\n", at)
        sha, _, size = out[at:end].decode().split()
        found[sha] = out[end + 1:end + 1 + int(size)]
        at = end + 1 + int(size) + 1
    return found


def landing(repo: Path | str, rev: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    """The commit of ``rev``'s first-parent line that last changed ``path``, and its parents;
    None when none did. For a pull request merged with a merge commit, that is the merge (its
    second parent is the pull request's head); for a squash, a rebase or a direct push, the
    commit itself."""
    out = output(repo, "log", "--first-parent", "--max-count=1", "--format=%H %P",
                 rev_parse(repo, rev), "--", path).split()
    return (out[0], tuple(out[1:])) if out else None


def toplevel(folder: Path | str) -> Path:
    """The root of the git work tree holding ``folder``; BotError outside one."""
    return Path(output(folder, "rev-parse", "--show-toplevel").strip())


@dataclass(frozen=True)
class Checkout:
    """The git work tree a file is in, as a plan reads it once before it starts."""

    root: Path
    path: str  # the file's path in the work tree (what ``git log`` takes)
    head: str | None  # HEAD's commit id (None before the first commit)
    base: str | None  # the base asked for, as a commit id (None: not asked, or not a commit here)
    reverts: str | None  # the commit that the one asked about reverts (git revert's message)


def checkout_of(file: Path, commit_: str | None = None, base: str | None = None) -> Checkout:
    """Where ``file`` is in its git work tree, HEAD, ``base`` resolved, and which commit
    ``commit_`` (default HEAD) reverts; BotError outside a work tree."""
    folder = file.parent.resolve()
    root = toplevel(folder)
    head = resolve(root, "HEAD")
    asked = resolve(root, commit_ or head)
    return Checkout(root, (folder / file.name).relative_to(root.resolve()).as_posix(), head,
                    resolve(root, base), commit(root, asked).reverts if asked else None)


def request_paths(repo: Path | str, requests_dir: str = "promotion-requests",
                  rev: str = "HEAD") -> list[str]:
    """Every request file that ever existed in ``rev``'s history, sorted."""
    out = output(repo, "log", "--format=", "--name-only", rev_parse(repo, rev), "--",
               f"{requests_dir.strip('/')}/")
    return sorted({p for p in out.splitlines() if p and is_request(p, requests_dir)})


def is_ancestor(repo: Path | str, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is in the history of ``descendant``."""
    done = _run(repo, "merge-base", "--is-ancestor", rev_parse(repo, ancestor),
                rev_parse(repo, descendant), ok=(0, 1))
    return done.returncode == 0


#: Who the watcher's revert commits are by, unless git's environment names someone.
BOT_IDENTITY = {"GIT_AUTHOR_NAME": "promotion-bot", "GIT_AUTHOR_EMAIL": "promotion-bot@localhost",
                "GIT_COMMITTER_NAME": "promotion-bot",
                "GIT_COMMITTER_EMAIL": "promotion-bot@localhost"}


def _auth(remote_url: str, token: str | None) -> dict[str, str]:
    """The environment that lets ``git`` push to an https remote with ``token``: an
    ``Authorization`` header given through ``GIT_CONFIG_*`` (as actions/checkout does), so
    the token is in neither the command line nor the remote's URL nor any output."""
    if not token or not remote_url.startswith("https://"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
            "GIT_TERMINAL_PROMPT": "0"}


def remote_url(repo: Path | str, remote: str) -> str:
    """The URL of ``remote`` (a remote's name, or already a URL or path)."""
    done = _run(repo, "remote", "get-url", "--", remote, ok=(0, 2, 128))
    return done.stdout.strip() if done.returncode == 0 else remote


def remote_branch(repo: Path | str, remote: str, branch: str, token: str | None = None
                  ) -> str | None:
    """The commit ``branch`` points to on ``remote``; None when it has no such branch."""
    url = remote_url(repo, remote)
    out = _run(repo, "ls-remote", "--heads", "--", url, f"refs/heads/{branch}",
               env=_auth(url, token), secret=token).stdout
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def push_revert(repo: Path | str, commit_: str, onto: str, branch: str, remote: str,
                token: str | None = None) -> str:
    """Revert ``commit_`` on top of ``onto`` (a merge commit by its first parent, as
    ``git revert -m 1`` does) in a temporary work tree, and push it to ``remote`` as
    ``branch``; the revert commit's id. The checked-out work tree is left as it was."""
    sha, base = rev_parse(repo, commit_), rev_parse(repo, onto)
    parents = output(repo, "rev-list", "--parents", "-n", "1", sha).split()[1:]
    mainline = ["-m", "1"] if len(parents) > 1 else []
    identity = {k: v for k, v in BOT_IDENTITY.items() if not os.environ.get(k)}
    url = remote_url(repo, remote)
    with tempfile.TemporaryDirectory(prefix="promotion-bot-revert-") as scratch:
        tree = Path(scratch) / "tree"
        _run(repo, "worktree", "add", "--detach", "--quiet", str(tree), base)
        try:
            done = _run(tree, "revert", "--no-edit", *mainline, sha, ok=(0, 1),
                        env=identity)
            if done.returncode != 0:
                _run(tree, "revert", "--abort", ok=(0, 128))
                raise BotError(f"cannot revert {sha[:12]} on {base[:12]}: it conflicts with "
                               "what changed since; revert it by hand")
            reverted = rev_parse(tree, "HEAD")
            _run(tree, "push", "--quiet", "--", url, f"{reverted}:refs/heads/{branch}",
                 env=_auth(url, token), secret=token)
        finally:
            _run(repo, "worktree", "remove", "--force", str(tree), ok=(0, 128))
    return reverted
