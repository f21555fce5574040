"""What a test set can and cannot show for a gate against the champion, in words."""

from __future__ import annotations

import math

from bot.core.comparison import detectable_difference
from bot.core.domain import GateResult


def power_note(gate: GateResult) -> str | None:
    """What this test set can and cannot show for a gate against the champion, in words."""
    d = gate.detectable
    if d is None or not gate.evaluated:
        return None
    margin = -gate.threshold
    shown = f"{d:.3f}" if d >= 0.0005 else "below 0.001"
    smallest = (f"the smallest difference in {gate.metric} this test set detects is "
                f"{shown} (80 % power)")
    if gate.kind == "max_drop":
        note = (f"{smallest}; this gate blocks a candidate truly worse by "
                f"{margin + d:.3f} or more four times in five.")
        if margin < d:
            note += (f" Its margin {number(margin)} is below {d:.3f}: a drop between "
                     f"{number(margin)} and {margin + d:.3f} usually passes unseen.")
            if margin > 0 and gate.frauds:
                # The detectable difference shrinks with the square root of the frauds.
                needed = math.ceil(gate.frauds * (d / margin) ** 2)
                note += (f" Seeing a drop of {number(margin)} four times in five would take "
                         f"a test set of about {needed:,} frauds.")
        return note[0].upper() + note[1:]
    if gate.kind == "non_inferior":
        se = d / _DETECTABLE_PER_SE  # (ignores a threshold metric's step: an upper bound)
        equal_passes = 0.5 * math.erfc(-(margin / se - _Z_95) / math.sqrt(2)) if se else 1.0
        note = (f"{smallest}; an equal candidate passes this gate "
                f"{equal_passes:.0%} of the time.")
        if margin < d:
            note += (f" Its margin {number(margin)} is below {d:.3f}: this test set is too "
                     "small to show non-inferiority reliably.")
        return note[0].upper() + note[1:]
    if gate.kind == "better_than_champion":
        note = (f"{smallest}; a candidate truly better by less than that usually fails "
                "this gate.")
        return note[0].upper() + note[1:]
    return None


_Z_95 = 1.959963984540054
_DETECTABLE_PER_SE = detectable_difference(1.0) or 1.0


def number(value: float) -> str:
    """0.9 as ``0.90``, 0.925 as ``0.925``: at least two decimals, no trailing noise."""
    text = f"{value:.6f}".rstrip("0")
    decimals = len(text.partition(".")[2])
    return f"{value:.{max(decimals, 2)}f}"
