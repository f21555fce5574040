"""One apply at a time per target: a lock object in S3 with owner, time and expiry.

The lock is created with a conditional put (``If-None-Match: *``), so of two applies that
race exactly one gets it; an expired lock is taken over with ``If-Match`` on its ETag, so
two runs cannot both take over the same stale lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.adapters.aws.clients import client, error_code
from bot.errors import LockHeld
from bot.settings import Target

Warn = Callable[[str], None]
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)




def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def key(t: Target) -> str:
    prefix = t.artifacts_prefix.strip("/")
    return f"{prefix}/locks/{t.name}.json" if prefix else f"locks/{t.name}.json"


def uri(t: Target) -> str:
    return f"s3://{t.artifacts_bucket}/{key(t)}"


def default_owner() -> str:
    """Who is applying, as people will recognise it: the workflow run, else user@host."""
    env = os.environ
    if env.get("GITHUB_RUN_ID"):
        actor = env.get("GITHUB_ACTOR", "github-actions")
        where = env.get("GITHUB_REPOSITORY", "")
        return f"{actor} (workflow run {env['GITHUB_RUN_ID']} of {where})"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


@dataclass(frozen=True)
class Holder:
    """What the lock object says: who holds it since when, until when."""

    owner: str
    acquired_at: str
    expires_at: str
    token: str

    def expired(self, now: dt.datetime) -> bool:
        try:
            return dt.datetime.fromisoformat(self.expires_at) <= now
        except ValueError:
            return False

    def describe(self) -> str:
        return f"{self.owner} since {self.acquired_at} (expires {self.expires_at})"


@dataclass
class Lock:
    """A lock this process holds; ``refresh`` extends it during a long apply."""

    target: Target
    holder: Holder
    etag: str

    def refresh(self) -> None:
        """Push the expiry out again; LockHeld when someone took the lock over meanwhile."""
        from botocore.exceptions import ClientError

        now = _now()
        holder = Holder(self.holder.owner, self.holder.acquired_at,
                        (now + dt.timedelta(seconds=self.target.lock_ttl_seconds)).isoformat(),
                        self.holder.token)
        try:
            self.etag = _put(self.target, holder, IfMatch=self.etag)
        except ClientError as error:
            if error_code(error) not in (*_CONFLICT, "NoSuchKey", "404"):
                raise
            raise LockHeld(
                f"lost the apply lock of {self.target.name} ({uri(self.target)}): it expired and "
                "was taken over or broken; stopping, rerun apply to finish"
            ) from None
        self.holder = holder


def _put(t: Target, holder: Holder, **condition: str) -> str:
    body = json.dumps(holder.__dict__, indent=2).encode()
    put = client("s3", t.region).put_object(
        Bucket=t.artifacts_bucket, Key=key(t), Body=body, ContentType="application/json",
        **condition,
    )
    return str(put["ETag"])


def _read(t: Target) -> tuple[Holder | None, str | None]:
    from botocore.exceptions import ClientError

    try:
        got = client("s3", t.region).get_object(Bucket=t.artifacts_bucket, Key=key(t))
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None, None
        raise
    etag = str(got["ETag"])
    try:
        data: Any = json.loads(got["Body"].read())
        return Holder(str(data["owner"]), str(data["acquired_at"]), str(data["expires_at"]),
                      str(data.get("token", ""))), etag
    except (ValueError, KeyError, TypeError):
        return Holder("(unreadable lock object)", "?", "?", ""), etag


def holder(t: Target) -> Holder | None:
    """Who holds the lock of ``t`` now, or None."""
    return _read(t)[0]


def _take(t: Target, owner: str, warn: Warn) -> Lock:
    from botocore.exceptions import ClientError

    now = _now()
    mine = Holder(owner, now.isoformat(),
                  (now + dt.timedelta(seconds=t.lock_ttl_seconds)).isoformat(), uuid.uuid4().hex)
    for _ in range(5):
        try:
            return Lock(t, mine, _put(t, mine, IfNoneMatch="*"))
        except ClientError as error:
            if error_code(error) not in _CONFLICT:
                raise
        current, etag = _read(t)
        if current is None or etag is None:
            continue  # released between our put and our read: try again
        if not current.expired(now):
            raise LockHeld(
                f"{t.name} is being applied by {current.describe()}; lock {uri(t)}. "
                f"If that run died, remove it with: promotion-bot break-lock {t.name}"
            )
        try:
            taken = Lock(t, mine, _put(t, mine, IfMatch=etag))
        except ClientError as error:
            if error_code(error) not in (*_CONFLICT, "NoSuchKey", "404"):
                raise
            continue  # someone else took it over or released it first: look again
        warn(f"took over the expired apply lock of {t.name} held by {current.describe()}")
        return taken
    raise LockHeld(f"could not take the apply lock of {t.name} ({uri(t)}): it keeps changing")


@contextmanager
def acquire(t: Target, owner: str, warn: Warn = _stderr) -> Iterator[Lock]:
    """Hold the apply lock of ``t`` for the ``with`` block; LockHeld when someone else has it."""
    lock = _take(t, owner, warn)
    try:
        yield lock
    except BaseException:
        # The error that stopped the run matters more than a lock left to expire.
        with contextlib.suppress(Exception):
            _release(lock, warn)
        raise
    _release(lock, warn)


def _release(lock: Lock, warn: Warn) -> None:
    t = lock.target
    current, _ = _read(t)
    if current is not None and current.token == lock.holder.token:
        client("s3", t.region).delete_object(Bucket=t.artifacts_bucket, Key=key(t))
    else:
        warn(f"the apply lock of {t.name} was taken over or broken while this run held it")


def break_lock(t: Target) -> bool:
    """Remove the lock of ``t`` whoever holds it; whether there was one."""
    if _read(t)[0] is None:
        return False
    client("s3", t.region).delete_object(Bucket=t.artifacts_bucket, Key=key(t))
    return True
