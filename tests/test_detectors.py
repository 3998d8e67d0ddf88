"""Both detectors on real faces (the astronaut's, pasted onto scenes at known places and angles)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from PIL import Image

from phototag import detectors
from phototag.testing.photos import FACE_FRACTION, face_crops, paste_face, scene

# Where the landmarks of an aligned (UTKFace-style) crop are, as a share of its side from the crop's centre
# (measured with MTCNN on UTKFace crops; the chain frames faces the same way).
EYES_Y, MOUTH_Y = -0.21, 0.18
TOLERANCE = 0.08  # of the crop side


@pytest.fixture(scope="module", params=detectors.NAMES)
def detector(request):
    return detectors.create(request.param)


def photo(angles, side=160, seed=5):
    """An 1100 x 400 scene with a face per angle, left to right; returns pixels and the faces."""
    rng = random.Random(seed)
    pool = face_crops()
    rng.shuffle(pool)
    canvas = scene(250 * len(angles), 400, rng)
    pasted = [paste_face(canvas, pool[i], (125 + 250 * i, 200), side, angle) for i, angle in enumerate(angles)]
    return np.asarray(canvas), pasted


def upright_offsets(det, face):
    """Landmarks of ``det`` in the pasted face's own upright frame, in shares of its side."""
    t = math.radians(face.angle)
    out = {}
    for name, (x, y) in det.landmarks.items():
        dx, dy = x - face.center[0], y - face.center[1]
        # undo the counter-clockwise (as displayed) rotation
        out[name] = ((math.cos(t) * dx - math.sin(t) * dy) / face.size, (math.sin(t) * dx + math.cos(t) * dy) / face.size)
    return out


def check_faces(found, pasted):
    assert len(found) == len(pasted), [d.box for d in found]
    for det, face in zip(found, pasted):  # both left to right
        assert math.dist((det.box[0] + det.box[2] / 2, det.box[1] + det.box[3] / 2), face.center) < 0.2 * face.size
        lm = upright_offsets(det, face)
        assert set(lm) == set(detectors.LANDMARKS)
        for eye in ("left_eye", "right_eye"):
            assert abs(lm[eye][1] - EYES_Y) < TOLERANCE, (face.angle, lm)
        for corner in ("mouth_left", "mouth_right"):
            assert abs(lm[corner][1] - MOUTH_Y) < TOLERANCE, (face.angle, lm)
        # "left" is the image's left side (the person's right) in the face's upright frame
        assert lm["left_eye"][0] < -0.05 < 0.05 < lm["right_eye"][0], lm
        assert lm["mouth_left"][0] < 0 < lm["mouth_right"][0], lm
        assert lm["left_eye"][1] < lm["nose"][1] < lm["mouth_left"][1], lm
        assert 0 < det.confidence <= 1


def test_upright_faces_and_their_landmarks(detector):
    pixels, pasted = photo([0.0, 0.0, 0.0, 0.0])
    check_faces(detector.detect(pixels), pasted)


def grid_photo(seed=6):
    """Four upright faces on a 700 x 700 scene, far enough from the edges to survive any rotation."""
    rng = random.Random(seed)
    pool = face_crops()
    rng.shuffle(pool)
    canvas = scene(700, 700, rng)
    for i, centre in enumerate([(200, 200), (500, 200), (200, 500), (500, 500)]):
        paste_face(canvas, pool[i], centre, 160)
    return canvas


@pytest.mark.parametrize("angle", [-60, -45, -30, 30, 45, 60])
def test_yunet_finds_tilted_faces_with_their_landmarks_in_order(angle):
    """The photo turned by ``angle``: the same four faces where the turn moved them, their landmarks
    in the same order along the turned face's axes (YuNet's landmarks lean towards upright on
    strongly tilted faces, by up to ~0.4 of the face at 60 degrees, so positions are not compared)."""
    canvas = grid_photo()
    yunet = detectors.create("yunet")
    upright = yunet.detect(np.asarray(canvas))
    assert len(upright) == 4
    tilted = yunet.detect(np.asarray(canvas.rotate(angle, resample=Image.Resampling.BICUBIC)))
    assert len(tilted) == 4
    t = math.radians(angle)
    across, down = np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])  # turned axes

    def centre(d):
        return np.array([d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2])

    for face in upright:
        offset = centre(face) - 350
        expected = 350 + offset[0] * across + offset[1] * down
        match = min(tilted, key=lambda d: np.linalg.norm(centre(d) - expected))
        assert np.linalg.norm(centre(match) - expected) < 0.25 * 160
        lm = {k: np.array(v) for k, v in match.landmarks.items()}
        assert (lm["right_eye"] - lm["left_eye"]) @ across > 0 and (lm["mouth_right"] - lm["mouth_left"]) @ across > 0
        assert (lm["mouth_left"] - lm["left_eye"]) @ down > 0 and (lm["mouth_right"] - lm["right_eye"]) @ down > 0


def test_yunet_finds_small_and_large_faces():
    rng = random.Random(3)
    pool = face_crops()
    canvas = scene(1800, 1200, rng)
    pasted = [paste_face(canvas, pool[0], (300, 600), 80), paste_face(canvas, pool[1], (1150, 600), 900)]
    check_faces(detectors.create("yunet").detect(np.asarray(canvas)), pasted)


def test_no_faces_in_a_scene():
    assert detectors.create("yunet").detect(np.asarray(scene(1200, 800, random.Random(4)))) == []


def assert_found_on_its_right_side_and_read_as_upright(found, turned: np.ndarray, upright: np.ndarray) -> None:
    """``found`` (in ``turned``, a photo turned a quarter counter-clockwise) has its landmarks as the
    face lies, and the analyzer reads the turned photo's face as the upright copy's, tilted by 90°."""
    from phototag.analyzer import FaceAnalyzer

    eyes = np.array(found.landmarks["right_eye"]) - np.array(found.landmarks["left_eye"])
    assert eyes[1] < -abs(eyes[0])  # from the person's right eye to the left one: upwards, as the face lies
    analyzer = FaceAnalyzer()
    (face,) = analyzer.analyze(turned)
    (reference,) = analyzer.analyze(upright)
    assert abs(face.rotation - 90) < 10 and face.gender == reference.gender and abs(face.age - reference.age) < 0.5


def test_a_face_stored_turned_that_scores_low_is_found_on_its_surroundings_turned_back():
    """A photo turned by a quarter without an orientation tag: YuNet scores the sideways face under
    its threshold; a photo without a face has its weak detections looked at turned, which finds it,
    in the turned photo's pixels and with its sideways landmarks. The chain then reads it as the
    upright copy (its photo turned back)."""
    canvas = scene(448, 448, random.Random(3))
    pasted = paste_face(canvas, face_crops()[1], (224, 224), 150)
    upright = np.asarray(canvas)
    turned = np.ascontiguousarray(np.rot90(upright, 1))  # counter-clockwise: the face lies on its right side
    detector = detectors.create("yunet")
    assert detector.detect(turned, look_turned=False) == []
    (found,) = detector.detect(turned)
    x, y, w, h = found.box
    assert abs(x + w / 2 - 224) < 20 and abs(y + h / 2 - 224) < 20
    assert abs(max(w, h) - FACE_FRACTION * pasted.size) < 0.3 * pasted.size
    assert found.turned_look and not any(d.turned_look for d in detector.detect(upright))
    assert_found_on_its_right_side_and_read_as_upright(found, turned, upright)


def test_a_tight_crop_stored_turned_without_any_detection_is_found_on_the_whole_image_turned_back():
    """A face filling its photo (a tight crop, 100 px) turned by a quarter scores nothing at all, not
    even a weak detection to look at: the whole photo is then looked at turned, which finds it where
    it lies, sideways; the chain reads it as the upright copy. Faceless scenes stay faceless."""
    upright = np.asarray(face_crops()[12].image.convert("RGB").resize((100, 100)))
    turned = np.ascontiguousarray(np.rot90(upright, 1))
    detector = detectors.create("yunet")
    assert detector._detect(turned) == []  # no weak detection either
    (found,) = detector.detect(turned)
    x, y, w, h = found.box
    assert abs(x + w / 2 - 50) < 15 and abs(y + h / 2 - 50) < 15 and max(w, h) > 50
    assert found.turned_look
    assert_found_on_its_right_side_and_read_as_upright(found, turned, upright)
    rng = random.Random(8)
    assert not any(detector.detect(np.asarray(scene(640, 480, rng))) for _ in range(3))


def test_the_chain_asks_the_detector_again_without_looking_at_weak_detections_turned():
    """The chain's own second looks (a face's surroundings turned by each quarter, a photo turned
    back) weigh the turns themselves: a weak detection turned there must not answer for a quarter
    (two upright LAG photos were read upside down when it did)."""
    from phototag.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer()
    canvas = scene(448, 448, random.Random(3))
    paste_face(canvas, face_crops()[2], (224, 224), 180, angle=120)  # read beyond 45°: the photo decides
    pixels = np.asarray(canvas)
    asked, detect = [], analyzer.detector.detect

    def spy(rgb, scale=1.0, **options):
        asked.append(options.get("look_turned", True))
        return detect(rgb, scale, **options)

    analyzer.detector.detect = spy
    analyzer.predict([(pixels, detect(pixels))])
    assert asked and not any(asked)


def test_unknown_detector():
    with pytest.raises(ValueError, match="unknown detector"):
        detectors.create("haar")


def test_yunet_can_be_asked_from_two_threads_at_once():
    """The scan detects in its main thread while the chain's thread asks again for a turned face
    (FaceChain.predict): images of other sizes at the same time must not break YuNet's network."""
    from concurrent.futures import ThreadPoolExecutor

    detector = detectors.create("yunet")
    rng = random.Random(3)
    images = [np.asarray(scene(w, h, rng)) for w, h in ((640, 480), (300, 360), (500, 500), (240, 320))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(detector.detect, images * 15))
    assert len(results) == 60 and all(r == results[i % 4] for i, r in enumerate(results))
