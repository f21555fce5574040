"""The watcher's incident records in S3: one per braked challenger, written once
(``If-None-Match: *``), so the first run's record stands and a second run reads it."""

from __future__ import annotations

from bot.adapters.aws import s3
from bot.core import incident as incidents
from bot.core.incident import Incident
from bot.core.names import artifacts_uri, incident_key
from bot.settings import Target


def read(t: Target, commit: str) -> Incident | None:
    """The incident of the challenger config commit ``commit`` put there; None if none."""
    key = incident_key(t, commit)
    data = s3.get(t.artifacts_bucket, key, t.region)
    return None if data is None else incidents.from_bytes(data, artifacts_uri(t, key))


def record(t: Target, incident: Incident) -> Incident:
    """Write ``incident`` unless its record exists; the record that stands (the first)."""
    key = incident_key(t, incident.commit)
    if s3.put_once(t.artifacts_bucket, key, incidents.to_bytes(incident), t.region):
        return incident
    found = read(t, incident.commit)
    assert found is not None  # put_once refused: it is there
    return found
