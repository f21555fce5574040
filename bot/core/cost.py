"""The request's ``gates.cost``: what an alert and a missed fraud dollar cost."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from bot.core.hyperparameters import Strict


class Cost(Strict):
    """What the business pays: for each alert reviewed and for each dollar of fraud missed.

    With it the plan compares the expected cost per 100,000 transactions of both models
    (alerts x ``per_alert`` + fraud amount missed x ``per_missed_fraud_dollar``), which needs
    the test data's ``Amount`` column, and can gate on its relative change.
    """

    per_alert: float = Field(ge=0, le=1_000_000,
                             description="Cost of reviewing one alert (flagged transaction).")
    per_missed_fraud_dollar: float = Field(
        default=1.0, ge=0, le=1_000,
        description="Cost of each dollar of fraud amount not caught; 1.0: the amount itself.")
    max_increase: float | None = Field(
        default=None, ge=0, le=10,
        description="Fail when the data shows the candidate's expected cost more than this "
        "share above the champion's (the 95 % CI of cost / champion's cost - 1 lies above it); "
        "0.05: 5 %.")
    non_inferior: float | None = Field(
        default=None, ge=0, le=10,
        description="Pass only when the data shows the candidate's expected cost at most "
        "this share above the champion's (the whole 95 % CI lies below it).")

    @field_validator("per_alert", "per_missed_fraud_dollar", mode="before")
    @classmethod
    def _int_is_a_float(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _something_costs(self) -> Cost:
        if self.per_alert == 0 and self.per_missed_fraud_dollar == 0:
            raise ValueError("per_alert and per_missed_fraud_dollar are both 0: nothing costs")
        return self
