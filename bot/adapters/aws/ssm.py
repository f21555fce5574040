"""Hyperparameters in SSM Parameter Store, with timestamped backups.

Values live at ``/<target>/hyperparameters/<name>``; a backup is one String parameter
holding the JSON of every value at ``/<target>/backups/hyperparameters/<UTC timestamp>``.
A backup is never overwritten, so no earlier state is ever lost.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bot.adapters.aws.clients import client, error_code
from bot.errors import BotError
from bot.settings import Target

_DELETE_BATCH = 10  # DeleteParameters takes at most 10 names


@dataclass(frozen=True)
class Restored:
    """What ``restore`` did: the values now live and the backup of what they replaced."""

    values: dict[str, str]
    backup_key: str
    changed: tuple[str, ...]


def _ssm(t: Target) -> Any:
    return client("ssm", t.region)




def timestamp(now: dt.datetime | None = None) -> str:
    """UTC time with microseconds, sortable as text and valid in SSM names and S3 keys."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def _by_path(t: Target, path: str) -> dict[str, str]:
    pages = _ssm(t).get_paginator("get_parameters_by_path").paginate(
        Path=path, Recursive=False, WithDecryption=True
    )
    return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}


def read(t: Target) -> dict[str, str]:
    """The live hyperparameters of ``t`` by short name (``eta``, not the full path)."""
    prefix = t.ssm_prefix.rstrip("/") + "/"
    return {
        name[len(prefix):]: value
        for name, value in sorted(_by_path(t, t.ssm_prefix).items())
        if name.startswith(prefix)
    }


def _put_backup(t: Target, key: str, values: dict[str, str]) -> bool:
    """Create the backup ``key`` holding ``values``; False when a parameter of that name
    exists already (a backup is never overwritten)."""
    body = json.dumps(dict(sorted(values.items())), separators=(",", ":"))
    try:
        _ssm(t).put_parameter(
            Name=key, Value=body, Type="String", Overwrite=False,
            Description=f"promotion-bot backup of {t.ssm_prefix}/*",
        )
    except ClientError as error:
        if error_code(error) != "ParameterAlreadyExists":
            raise
        return False
    return True


def backup(t: Target, values: dict[str, str], now: dt.datetime | None = None) -> str:
    """Store ``values`` as a new backup named by the time and return its key; an existing
    backup is never replaced."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    for _ in range(1000):
        key = f"{t.ssm_backup_prefix.rstrip('/')}/{timestamp(moment)}"
        if _put_backup(t, key, values):
            return key
        # Same microsecond as an earlier backup: take the next one rather than overwrite it.
        moment += dt.timedelta(microseconds=1)
    raise BotError(f"SSM: could not find a free backup name under {t.ssm_backup_prefix}")


def backup_once(t: Target, key: str, values: dict[str, str]) -> bool:
    """Store ``values`` as the backup ``key`` (a name apply derived from itself, recorded
    before this call) unless it is there already: then it is this apply's own earlier copy
    (its answer was lost, or the run was killed before it could say so), kept as it is.
    Whether it was created now."""
    return _put_backup(t, key, values)


def write(t: Target, desired: dict[str, str],
          before_each: Callable[[], None] | None = None) -> list[str]:
    """Make SSM hold exactly ``desired``: put what differs, delete what is no longer wanted.

    ``before_each`` runs before every write call (apply's stop check). Deleting a parameter
    that is gone already is done: DeleteParameters lists it as invalid, it does not fail
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameters.html).
    Returns the full names of the parameters it changed, in order.
    """
    live = read(t)
    ssm = _ssm(t)
    prefix = t.ssm_prefix.rstrip("/")
    check = before_each or (lambda: None)
    changed: list[str] = []
    for name, value in sorted(desired.items()):
        if live.get(name) != value:
            check()
            ssm.put_parameter(Name=f"{prefix}/{name}", Value=value, Type="String",
                              Overwrite=True)
            changed.append(f"{prefix}/{name}")
    unwanted = [f"{prefix}/{name}" for name in sorted(set(live) - set(desired))]
    for i in range(0, len(unwanted), _DELETE_BATCH):
        check()
        ssm.delete_parameters(Names=unwanted[i:i + _DELETE_BATCH])
    return changed + unwanted


def backups(t: Target) -> list[str]:
    """Every backup key of ``t``, oldest first."""
    return sorted(_by_path(t, t.ssm_backup_prefix))


def load_backup(t: Target, backup_key: str) -> dict[str, str]:
    """The values stored in a backup; ``backup_key`` may be the full key or its timestamp."""
    prefix = t.ssm_backup_prefix.rstrip("/") + "/"
    key = backup_key if backup_key.startswith("/") else prefix + backup_key
    if not key.startswith(prefix):
        raise BotError(f"{backup_key} is not a backup of {t.name}: backups live under {prefix}")
    try:
        value = _ssm(t).get_parameter(Name=key)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            raise BotError(f"no SSM backup named {key}") from None
        raise
    try:
        values = json.loads(value)
    except ValueError as error:
        raise BotError(f"SSM backup {key} is not JSON: {error}") from None
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise BotError(f"SSM backup {key} is not a JSON object of strings")
    return values


def restore(t: Target, backup_key: str, now: dt.datetime | None = None) -> Restored:
    """Put a backup's values back (the seed's ``rollback_parameter_store``).

    The values it replaces are backed up first, so a restore can itself be undone.
    """
    values = load_backup(t, backup_key)
    safety = backup(t, read(t), now)
    changed = write(t, values)
    return Restored(values=values, backup_key=safety, changed=tuple(changed))
