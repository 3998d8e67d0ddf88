"""The photo decides its turn: its faces' readings and the detector's confidence on each face
turned back, weighed against a prior for upright; then each face is read within 90° of the turn."""

from __future__ import annotations

import numpy as np

from phototag import turns

NAN = np.nan


def evidence_of(estimates, scores, confidences):
    return turns.quarter_evidence(np.array(estimates, float), np.array(scores, float), np.array(confidences, float))


def test_evidence_weighs_the_readings_and_the_detector_against_upright():
    # upright reading scores 2.4, the upside-down one 3.4; the detector is surer of it turned back by 180°
    evidence = evidence_of([[3.0, -85.0, 178.0, 95.0]], [[2.4, 1.4, 3.4, 1.4]], [[0.80, 0, 0.90, 0]])
    assert evidence[0, 0] == 0
    assert np.isclose(evidence[0, 2], 1.0 * (3.4 - 2.4) + 10.0 * (0.90 - 0.80))
    # a face the shortcut kept upright (one estimate, the sure score): every turn has to beat it
    sure = evidence_of([[2.0, NAN, NAN, NAN]], [[5.0, NAN, NAN, NAN]], [[0.9, 0.0, 0.0, 0.0]])
    assert (sure[0, 1:] < -5).all()


def test_one_face_turns_its_photo_only_past_the_prior_for_upright():
    weak = evidence_of([[3.0, NAN, -178.0, NAN]], [[2.4, NAN, 2.6, NAN]], [[0.85, 0, 0.86, 0]])  # 0.3
    strong = evidence_of([[3.0, NAN, -178.0, NAN]], [[1.4, NAN, 3.4, NAN]], [[0.70, 0, 0.92, 0]])  # 4.2
    side = np.array([160.0])
    assert turns.photo_turn(weak, side, {0, 2}) == 0
    assert turns.photo_turn(strong, side, {0, 2}) == 2
    # where an orientation was applied the camera knew its roll: more is needed
    middling = evidence_of([[3.0, NAN, -178.0, NAN]], [[2.4, NAN, 2.4, NAN]], [[0.85, 0, 0.92, 0]])  # 0.7
    assert turns.photo_turn(middling, side, {0, 2}) == 2
    assert turns.photo_turn(middling, side, {0, 2}, oriented=True) == 0


def test_faces_together_outweigh_one_and_small_faces_count_less():
    one_way = [[3.0, NAN, 178.0, NAN]], [[1.4, NAN, 3.4, NAN]], [[0.7, 0, 0.9, 0]]
    other_way = [[3.0, NAN, 178.0, NAN]], [[2.4, NAN, 1.4, NAN]], [[0.9, 0, 0.8, 0]]
    evidence = np.concatenate([evidence_of(*one_way), evidence_of(*one_way), evidence_of(*other_way)])
    assert turns.photo_turn(evidence, np.array([150.0, 150.0, 150.0]), {0, 2}) == 2
    assert turns.photo_turn(evidence, np.array([20.0, 20.0, 150.0]), {0, 2}) == 0
    assert turns.photo_turn(evidence, np.array([150.0, 150.0, 150.0]), {0}) == 0  # only the candidates


def test_a_face_is_read_within_90_degrees_of_its_photos_turn_unless_clearly_its_own():
    estimates = np.array([5.0, -80.0, -176.0, 92.0])
    scores = np.array([2.3, 1.4, 3.3, 1.4])
    evidence = np.array([0.0, -0.5, 0.4, -0.5])
    assert turns.within_turn(-176.0, estimates, scores, 0, evidence) == 5.0  # its best upright estimate
    assert turns.within_turn(5.0, estimates, scores, 0, evidence) == 5.0  # within already
    assert turns.within_turn(-176.0, estimates, scores, 2, evidence) == -176.0
    clearly = np.array([0.0, -0.5, 1.5, -0.5])  # its own quarter beats the photo's by OWN_TURN or more
    assert turns.within_turn(-176.0, estimates, scores, 0, clearly) == -176.0
    # nothing read within 90° of the turn: the face keeps its angle
    lone = np.array([-176.0, NAN, NAN, NAN])
    assert turns.within_turn(-176.0, lone, np.array([5.0, NAN, NAN, NAN]), 0, evidence) == -176.0
