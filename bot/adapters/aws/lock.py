"""One apply at a time per target: a lock object in S3 with owner, time and expiry.

The lock is created with a conditional put (``If-None-Match: *``), so of two applies that
race exactly one gets it; an expired lock is taken over with ``If-Match`` on its ETag, so
two runs cannot both take over the same stale lock. While apply holds it, a heartbeat
thread renews it (again with ``If-Match``), so it never expires under a run that is alive,
however long SageMaker takes; a holder whose renewal finds the lock changed has lost it and
stops before its next write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bot.adapters.aws import s3
from bot.adapters.aws.clients import error_code, unreachable
from bot.core import names
from bot.errors import LockHeld, LockLost
from bot.settings import Target

Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def key(t: Target) -> str:
    return names.lock_key(t)


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
    """What the lock object says: who holds it since when, until when, applying which commit."""

    owner: str
    acquired_at: str
    expires_at: str
    token: str
    commit: str = ""

    def expired(self, now: dt.datetime) -> bool:
        try:
            return dt.datetime.fromisoformat(self.expires_at) <= now
        except ValueError:
            return False

    def describe(self) -> str:
        return f"{self.owner} since {self.acquired_at} (expires {self.expires_at})"


class Lock:
    """A lock this process holds: renewed by a heartbeat, checked before every write."""

    def __init__(self, target: Target, holder: Holder, etag: str) -> None:
        self.target = target
        self.holder = holder
        self.etag = etag
        self._mutex = threading.Lock()
        self._lost: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def refresh(self) -> None:
        """Push the expiry out again; LockLost when someone took the lock over or broke it."""
        self.alive()
        with self._mutex:
            now = _now()
            holder = Holder(self.holder.owner, self.holder.acquired_at,
                            (now + dt.timedelta(seconds=self.target.lock_ttl_seconds)
                             ).isoformat(), self.holder.token, self.holder.commit)
            etag = _put(self.target, holder, if_match=self.etag)
            if etag is None:
                self._lost = (
                    f"lost the apply lock of {self.target.name} ({uri(self.target)}): it was "
                    "taken over or broken while this run held it")
            else:
                self.etag, self.holder = etag, holder
        self.alive()

    def alive(self) -> None:
        """Raise LockLost if the lock was lost or has expired unrenewed; no AWS call."""
        reason = self._lost
        if reason is None and self.holder.expired(_now()):
            reason = (f"the apply lock of {self.target.name} expired at "
                      f"{self.holder.expires_at} before it could be renewed")
        if reason is not None:
            self._lost = reason
            current = _read_quietly(self.target)
            raise LockLost(f"{reason}; stopped before writing anything more"
                           + (f"; {current.describe()} holds it now" if current else "")
                           + "; rerun apply to finish if nobody else does",
                           commit=current.commit if current else None)

    def check(self) -> None:
        """Before a write: still ours (renewed now), or LockLost."""
        self.refresh()

    def start_heartbeat(self, interval: float, warn: Warn) -> None:
        """Renew the lock every ``interval`` seconds on a thread until ``stop_heartbeat``."""

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except LockLost:
                    return
                except Exception as error:  # AWS hiccup: the next beat tries again
                    warn(f"could not renew the apply lock of {self.target.name}: "
                         f"{type(error).__name__}: {error}")

        self._beat = threading.Thread(target=beat, name=f"lock-heartbeat-{self.target.name}",
                                      daemon=True)
        self._beat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None

    @property
    def lost(self) -> bool:
        return self._lost is not None


def _put(t: Target, holder: Holder, *, once: bool = False, if_match: str | None = None
         ) -> str | None:
    """Write the lock object on a condition; its ETag, or None when the condition failed
    (or, for ``if_match``, the object is gone)."""
    body = json.dumps(holder.__dict__, indent=2).encode()
    try:
        put = s3.put(t.artifacts_bucket, key(t), body, t.region, once=once, if_match=if_match)
    except ClientError as error:
        if if_match is not None and error_code(error) in s3.MISSING:
            return None
        raise
    return None if put is None else str(put["ETag"])


def _read(t: Target) -> tuple[Holder | None, str | None]:
    got = s3.get_object(t.artifacts_bucket, key(t), t.region)
    if got is None:
        return None, None
    etag = str(got["ETag"])
    try:
        data: Any = json.loads(got["Body"].read())
        return Holder(str(data["owner"]), str(data["acquired_at"]), str(data["expires_at"]),
                      str(data.get("token", "")), str(data.get("commit", ""))), etag
    except (ValueError, KeyError, TypeError):
        return Holder("(unreadable lock object)", "?", "?", ""), etag


def _read_quietly(t: Target) -> Holder | None:
    try:
        return _read(t)[0]
    except Exception:  # only to say who holds it now; the loss is what matters
        return None


def holder(t: Target) -> Holder | None:
    """Who holds the lock of ``t`` now, or None."""
    return _read(t)[0]


def _take(t: Target, owner: str, commit: str, warn: Warn) -> Lock:
    now = _now()
    mine = Holder(owner, now.isoformat(),
                  (now + dt.timedelta(seconds=t.lock_ttl_seconds)).isoformat(), uuid.uuid4().hex,
                  commit)
    for _ in range(5):
        etag = _put(t, mine, once=True)
        if etag is not None:
            return Lock(t, mine, etag)
        current, etag = _read(t)
        if current is None or etag is None:
            continue  # released between our put and our read: try again
        if not current.expired(now):
            raise LockHeld(
                f"{t.name} is being applied by {current.describe()}; lock {uri(t)}. "
                f"If that run died, remove it with: promotion-bot break-lock {t.name}",
                commit=current.commit or None,
            )
        took = _put(t, mine, if_match=etag)
        if took is None:
            continue  # someone else took it over or released it first: look again
        taken = Lock(t, mine, took)
        warn(f"took over the expired apply lock of {t.name} held by {current.describe()}")
        return taken
    raise LockHeld(f"could not take the apply lock of {t.name} ({uri(t)}): it keeps changing")


@contextmanager
def acquire(t: Target, owner: str, warn: Warn = _stderr, commit: str = "") -> Iterator[Lock]:
    """Hold the apply lock of ``t`` for the ``with`` block, renewed every
    ``t.lock_heartbeat_seconds``; LockHeld when someone else has it."""
    lock = _take(t, owner, commit, warn)
    lock.start_heartbeat(t.lock_heartbeat_seconds, warn)
    try:
        yield lock
    except BaseException as error:
        lock.stop_heartbeat()
        # The error that stopped the run matters more than a lock left to expire; and when
        # AWS cannot be reached, releasing it would only wait for the same timeout again.
        if unreachable(error):
            warn(f"AWS cannot be reached, so the apply lock of {t.name} stays until "
                 f"{lock.holder.expires_at}; remove it with: promotion-bot break-lock {t.name}")
        else:
            with contextlib.suppress(Exception):
                _release(lock, warn)
        raise
    lock.stop_heartbeat()
    _release(lock, warn)


def _release(lock: Lock, warn: Warn) -> None:
    t = lock.target
    current, _ = _read(t)
    if current is not None and current.token == lock.holder.token:
        s3.delete(t.artifacts_bucket, key(t), t.region)
    elif not lock.lost:  # a run that knows it lost the lock has said so already
        warn(f"the apply lock of {t.name} was taken over or broken while this run held it")


def break_lock(t: Target) -> bool:
    """Remove the lock of ``t`` whoever holds it; whether there was one."""
    if _read(t)[0] is None:
        return False
    s3.delete(t.artifacts_bucket, key(t), t.region)
    return True
