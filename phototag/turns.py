"""The quarter turn a photo's faces agree it is turned by.

Turns are counted like face rotations: quarter turns counter-clockwise *as displayed* (1 = the
photo's content lies on its left side, 2 = upside down, 3 = on its right side). Each face within
:data:`TURN_TOLERANCE` of a quarter turn votes for it, a face between two votes for none, and the
photo is turned by ``k`` (1-3) when at least :data:`TURN_MAJORITY` of all its faces vote ``k``
(one face: it alone decides; two: both; three: two of them). A photo without faces is never turned.
"""

from __future__ import annotations

from collections.abc import Iterable

TURN_TOLERANCE = 30.0  # degrees from a quarter turn within which a face votes for it
TURN_MAJORITY = 2 / 3  # share of a photo's faces that must vote for the same turn


def suggested_turn(rotations: Iterable[float]) -> int:
    """The quarter turns (0-3, counter-clockwise as displayed) a photo is turned by, from its faces'
    rotations (degrees): see the module's rule; 0 when the faces do not agree."""
    rotations = list(rotations)
    votes = [0, 0, 0, 0]
    for rotation in rotations:
        quarter = round(rotation / 90)
        if abs(rotation - 90 * quarter) <= TURN_TOLERANCE:
            votes[quarter % 4] += 1
    best = max(range(1, 4), key=votes.__getitem__)
    return best if rotations and votes[best] >= TURN_MAJORITY * len(rotations) else 0
