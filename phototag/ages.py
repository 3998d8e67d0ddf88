"""How a stored age (predicted years, a float) counts as a whole year and as a decade: one rule for
the keywords, the face regions, ``query --age``, ``stats`` and training's decade weights.

An age counts as the whole year it rounds to, half up: ``A - 0.5 <= age < A + 0.5`` is year ``A``
(29.4 is 29, 29.5 and 29.96 are 30). Its decade is that year's: 29.96 is in ``30-39``, never in
``20-29``. Negative predictions count as 0.
"""

from __future__ import annotations

import numpy as np

HALF = 0.5  # a whole year A holds the ages A - HALF <= age < A + HALF


def _round_half_up(age):
    """Round half up, on a float or an array; ``floor(age + 0.5)`` would round 0.49999999999999994 up."""
    years = np.floor(np.maximum(age, 0.0))
    return years + (np.maximum(age, 0.0) - years >= HALF)


def age_years(age: float | None) -> int | None:
    """The whole year a stored age counts as (None for no age)."""
    return None if age is None else int(_round_half_up(age))


def age_decade(age: float | None) -> int | None:
    """The first year of a stored age's decade: 29.4 -> 20, 29.5 -> 30 (None for no age)."""
    years = age_years(age)
    return None if years is None else years // 10 * 10


LAST_DECADE = 90  # training's reports and weights put this decade and the ones above together


def decade_label(decade: int, last: int | None = None) -> str:
    """``20-29`` for the decade starting at 20; ``90+`` for ``last`` (90) and above, when given."""
    return f"{last}+" if last is not None and decade >= last else f"{decade}-{decade + 9}"


def year_bounds(low: int | None, high: int | None) -> tuple[float | None, float | None]:
    """The stored ages of the whole years ``low`` to ``high`` (inclusive; None: open) as
    ``(lower, upper)`` with ``lower <= age < upper``, for SQL."""
    return (None if low is None else low - HALF), (None if high is None else high + HALF)


def decades(ages: np.ndarray, last: int = LAST_DECADE) -> np.ndarray:
    """The first year of each age's decade, ``last`` and above together; -1 where the age is NaN."""
    known = ~np.isnan(ages)
    first = np.minimum(_round_half_up(np.nan_to_num(ages)) // 10 * 10, last)
    return np.where(known, first, -1).astype(int)
