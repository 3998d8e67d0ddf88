"""The quarter turn a photo's faces agree it is turned by: after the fact, from the rotations the
index holds (:func:`suggested_turn`), and in the chain, from their readings and the detector
(:func:`photo_turn`, then each face read within 90° of it, :func:`within_turn`).

Turns are counted like face rotations: quarter turns counter-clockwise *as displayed* (1 = the
photo's content lies on its left side, 2 = upside down, 3 = on its right side). Each face within
:data:`TURN_TOLERANCE` of a quarter turn votes for it, a face between two votes for none, and the
photo is turned by ``k`` (1-3) when at least :data:`TURN_MAJORITY` of all its faces vote ``k``
(one face: it alone decides; two: both; three: two of them). A photo without faces is never turned.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .models import wrapped_angles

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


# The photo's turn as the chain decides it, from all its faces (chosen on pasted validation faces of
# one half of the sources' file names, checked on the other: see models/README.md "The photo decides
# its turn" and benchmarks/bench_turned.py):
READING_WEIGHT = 1.0  # evidence per unit of the rotation readings' score (one more agreeing reading)
DETECTOR_WEIGHT = 10.0  # evidence per unit of the detector's confidence on the face turned back
UPRIGHT_PRIOR = 0.5  # evidence a turned photo must gather beyond upright
ORIENTED_PRIOR = 1.0  # the same where an EXIF/HEIF orientation was applied (the camera knew its roll)
FULL_WEIGHT_SIDE = 100.0  # pixels: a smaller face's evidence counts in proportion to its side
OWN_TURN = 1.0  # evidence by which a face's own quarter must beat its photo's to keep it


def quarter_evidence(estimates: np.ndarray, scores: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """Per face (rows), the evidence that it lies at each quarter turn (columns 0-3) rather than
    upright: how much better the best reading of that quarter scores than the best upright one
    (estimates within 45° of the quarter; none scores 0), plus how much surer the detector is of the
    face turned back from that quarter (``confidences``: per face and quarter, 0 where not found)."""
    quarters = np.arange(4) * 90.0
    near = np.abs(wrapped_angles(estimates[:, None, :] - quarters[None, :, None])) <= 45  # face, quarter, estimate
    best = np.where(near, np.nan_to_num(scores, nan=0.0)[:, None, :], 0.0).max(axis=2)
    evidence = READING_WEIGHT * (best - best[:, :1]) + DETECTOR_WEIGHT * (confidences - confidences[:, :1])
    return evidence


def photo_turn(evidence: np.ndarray, sides: np.ndarray, candidates: set[int], oriented: bool = False) -> int:
    """The quarter turn (0-3) of a photo from its faces' ``evidence`` (:func:`quarter_evidence`),
    each weighted by its size: the candidate with the most evidence once a turned photo has paid
    the prior for upright (stronger when an orientation was applied)."""
    total = (evidence * np.minimum(1.0, sides / FULL_WEIGHT_SIDE)[:, None]).sum(axis=0)
    total[1:] -= ORIENTED_PRIOR if oriented else UPRIGHT_PRIOR
    return max(sorted(candidates), key=lambda q: total[q])


def within_turn(angle: float, estimates: np.ndarray, scores: np.ndarray, turn: int, evidence: np.ndarray) -> float:
    """A face's angle once its photo is turned by ``turn``: its own when within 90° of the turn, or
    when its own quarter's evidence beats the photo's by :data:`OWN_TURN`; else its best-scoring
    estimate within 90° of the turn (the first, mirror-averaged one between equals)."""
    own = round(angle / 90) % 4
    if abs(wrapped_angles(angle - 90 * turn)) <= 90 or evidence[own] - evidence[turn] >= OWN_TURN:
        return angle
    inside = [(score, -i, estimate) for i, (estimate, score) in enumerate(zip(estimates, scores))
              if score == score and abs(wrapped_angles(estimate - 90 * turn)) <= 90]
    return max(inside)[2] if inside else angle
