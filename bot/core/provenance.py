"""What a plan judged, for the comment's provenance line: the data sets with their rows and
frauds (their versions are in the plan's identity, which is signed)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict


@dataclass(frozen=True)
class DataUsed:
    """A data set the plan used: its role, its location and what it holds (the version is
    the plan identity's ``data_versions[role]``; None: not counted)."""

    role: str  # "train" or "test"
    uri: str
    rows: int | None = None
    frauds: int | None = None


# Read back from plan.json by pydantic: refuse unknown fields.
setattr(DataUsed, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010
