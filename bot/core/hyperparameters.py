"""XGBoost hyperparameters as a request declares them, and the strict base of every
request model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    """Every request model refuses unknown fields and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Hyperparameters(Strict):
    """XGBoost hyperparameters, validated by name and range.

    They are written as ``/<target>/hyperparameters/<name>`` in SSM on merge.
    """

    objective: Literal["binary:logistic", "binary:logitraw", "binary:hinge"] = Field(
        description="Learning objective; the bot scores probabilities, so binary ones only."
    )
    num_round: int = Field(ge=1, le=10_000, description="Number of boosting rounds.")
    max_depth: int = Field(ge=1, le=20, description="Maximum tree depth (1..20).")
    eta: float = Field(gt=0, le=1, description="Learning rate, in (0, 1].")
    subsample: float = Field(gt=0, le=1, description="Row subsample ratio, in (0, 1].")
    colsample_bytree: float = Field(
        gt=0, le=1, description="Column subsample ratio per tree, in (0, 1]."
    )
    min_child_weight: float | None = Field(
        default=None, ge=0, description="Minimum sum of instance weight in a child (>= 0)."
    )
    gamma: float | None = Field(
        default=None, ge=0, description="Minimum loss reduction to split a leaf (>= 0)."
    )
    scale_pos_weight: float | None = Field(
        default=None, gt=0, description="Weight of the positive (fraud) class (> 0)."
    )
    reg_lambda: float | None = Field(
        default=None, ge=0, alias="lambda", description="L2 regularization on weights (>= 0)."
    )
    reg_alpha: float | None = Field(
        default=None, ge=0, alias="alpha", description="L1 regularization on weights (>= 0)."
    )
    max_delta_step: float | None = Field(
        default=None, ge=0,
        description="Largest step of a leaf's value (>= 0; 0 means no limit). 1 to 10 keeps "
        "logistic regression on rare frauds from swinging leaves by tens of logits.",
    )
    seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1,
        description="Random seed of row and column subsampling (the bot's default is 0).",
    )
    colsample_bylevel: float | None = Field(
        default=None, gt=0, le=1, description="Column subsample ratio per tree level, in (0, 1]."
    )
    colsample_bynode: float | None = Field(
        default=None, gt=0, le=1, description="Column subsample ratio per split, in (0, 1]."
    )
    max_bin: int | None = Field(
        default=None, ge=2, le=65_536,
        description="Histogram bins per feature (the bot trains with tree_method hist).",
    )
    grow_policy: Literal["depthwise", "lossguide"] | None = Field(
        default=None, description="Split the nodes closest to the root first (depthwise), or "
        "those with the highest loss change (lossguide, with max_leaves).",
    )
    max_leaves: int | None = Field(
        default=None, ge=0, le=2**31 - 1,
        description="Most leaves per tree (0: no limit); with grow_policy lossguide.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=False)

    @field_validator("eta", "subsample", "colsample_bytree", "min_child_weight", "gamma",
                     "scale_pos_weight", "reg_lambda", "reg_alpha", "max_delta_step",
                     "colsample_bylevel", "colsample_bynode", mode="before")
    @classmethod
    def _int_is_a_float(cls, value: object) -> object:
        # YAML writes 1 for 1.0; strict mode would refuse it, a user would not expect that.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def as_dict(self) -> dict[str, str | int | float]:
        """The set hyperparameters by their XGBoost names (``lambda``, not ``reg_lambda``)."""
        return self.model_dump(by_alias=True, exclude_none=True)
