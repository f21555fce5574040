"""Where the bot's things live in AWS: the S3 key layout under the artifacts prefix, the
names of apply's backups and archives, and the tag on what the bot creates. The one home of
these names; adapters build every key from here.

Under ``s3://<artifacts bucket>/<artifacts prefix>/``:

- ``models/sha256/<sha256>/model.tar.gz``: a model, content-addressed, written once;
- ``models/keys/<model key>.json``: the signed index entry naming the model of a model key;
- ``plans/sha256/<plan.json's sha256>/{plan.json,plan.sig,comment.md,*.png}``: a plan,
  content-addressed, written once; ``plans/heads/<head commit>/<digest>.json`` and
  ``plans/contents/<request content sha256>/<digest>.json``: the signed entries that find it
  (``plans/<content sha256>/plan.json``: the layout before, never trusted);
- ``applies/<commit>.json``: the apply record (the apply's write-ahead log);
- ``locks/<target>.json``: the apply lock;
- ``incidents/<target>/<commit>.json``: why the watcher braked the challenger that the
  production config's commit put there (written once);
- ``training-data/<key>/`` and ``training-jobs/``: training's shards and job output.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from bot.settings import Target

#: The tag on every SageMaker model, endpoint config, endpoint and training job the bot
#: creates: only what carries it is ever deleted by the bot.
MANAGED_TAG_KEY = "promotion-bot:managed"
MANAGED_TAG = {"Key": MANAGED_TAG_KEY, "Value": "true"}


def prefix(t: Target) -> str:
    """The artifacts prefix with a trailing slash ("" when there is none)."""
    return f"{t.artifacts_prefix.strip('/')}/" if t.artifacts_prefix.strip("/") else ""


def key(t: Target, *parts: str) -> str:
    """A key under the artifacts prefix."""
    return prefix(t) + "/".join(parts)


def model_key(t: Target, digest: str) -> str:
    return key(t, "models", "sha256", digest, "model.tar.gz")


def model_index_key(t: Target, model_key_: str) -> str:
    return key(t, "models", "keys", f"{model_key_}.json")


def artifacts_uri(t: Target, key_: str) -> str:
    """The S3 URI of ``key_`` in the artifacts bucket."""
    return f"s3://{t.artifacts_bucket}/{key_}"


def model_uri(t: Target, digest: str) -> str:
    """Where the model whose model.tar.gz has sha256 ``digest`` is (or would be) stored."""
    return artifacts_uri(t, model_key(t, digest))


def plan_key(t: Target, digest: str, name: str = "") -> str:
    """The key of the plan whose plan.json has sha256 ``digest`` (no trailing slash), or of
    its file ``name``."""
    return key(t, "plans", "sha256", digest, *([name] if name else []))


def plan_prefix(t: Target, digest: str) -> str:
    """The S3 URI (no trailing slash) of the plan whose plan.json has sha256 ``digest``."""
    return artifacts_uri(t, plan_key(t, digest))


def plan_entry_key(t: Target, by: Literal["heads", "contents"], value: str,
                   digest: str = "") -> str:
    """The signed entry of plan ``digest`` listed by pull request head or by request content
    ``value``; without ``digest``, the folder (trailing slash) they are listed under."""
    return key(t, "plans", by, value, f"{digest}.json" if digest else "")


def head_index(t: Target, head: str) -> str:
    """The S3 URI (trailing slash) under which the plans of pull request head ``head`` are
    listed, one signed entry per plan."""
    return artifacts_uri(t, plan_entry_key(t, "heads", head))


def legacy_plan_key(t: Target, content_sha256: str) -> str:
    """plan.json of a content in the layout before plans were bound to a head."""
    return key(t, "plans", content_sha256, "plan.json")


def apply_record_key(t: Target, commit: str) -> str:
    return key(t, "applies", f"{commit}.json")


def apply_records_prefix(t: Target) -> str:
    return key(t, "applies", "")


def incident_key(t: Target, commit: str) -> str:
    """The watcher's incident record of the challenger that config commit ``commit`` put
    there (``bot.core.incident``)."""
    return key(t, "incidents", t.name, f"{commit}.json")


def lock_key(t: Target) -> str:
    return key(t, "locks", f"{t.name}.json")


def training_data_prefix(t: Target, data_key: str) -> str:
    return f"s3://{t.artifacts_bucket}/{key(t, 'training-data', data_key)}"


def training_jobs_prefix(t: Target) -> str:
    return f"s3://{t.artifacts_bucket}/{key(t, 'training-jobs')}"


def compact_time(iso: str) -> str:
    """An ISO 8601 time as names use it: UTC, sortable as text (``20261204T090000.000000Z``)."""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def apply_tag(commit: str, started_at: str) -> str:
    """What names one apply's backup and archive: when it started (``started_at``, ISO 8601;
    sortable) and its commit, e.g. ``20261204T090000.000000Z-0123456789ab``. The apply
    record keeps it from the first run on, so a resumed or retried write finds its own
    earlier copy."""
    return f"{compact_time(started_at)}-{commit[:12]}"


def ssm_backup_name(t: Target, tag: str) -> str:
    """The SSM backup an apply takes before its first write to the hyperparameters."""
    return f"{t.ssm_backup_prefix.rstrip('/')}/{tag}"


def config_archive_key(t: Target, tag: str) -> str:
    """Where an apply archives the production config it replaces (in the config bucket)."""
    return f"{t.config_archive_prefix}{tag}-{t.config_key.rsplit('/', 1)[-1]}"
