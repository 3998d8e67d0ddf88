"""The face chain: crop geometry, de-rotation, mirror averaging and batching (tiny untrained models)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from phototag.chain import EYE_HEIGHT, EYE_MOUTH_SHARE, FaceChain, crop, derotate, face_square, quarter_turns
from phototag.models import load_models
from phototag.records import Detection
from phototag.testing.photos import face_files
from conftest import needs_shared_data


def detection(eyes_y=100.0, angle=0.0, centre=(200.0, 200.0)) -> Detection:
    """Landmarks of an upright face (eyes 40 px apart, mouth 50 px below them), rotated about ``centre``."""
    points = {"left_eye": (180, eyes_y), "right_eye": (220, eyes_y), "nose": (200, eyes_y + 25),
              "mouth_left": (185, eyes_y + 50), "mouth_right": (215, eyes_y + 50)}
    t = np.radians(angle)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # counter-clockwise as displayed
    c = np.array(centre)
    landmarks = {k: tuple(rot @ (np.array(v, float) - c) + c) for k, v in points.items()}
    return Detection(box=(160, eyes_y - 40, 80, 110), landmarks=landmarks, confidence=0.99)


def test_face_square_follows_the_training_framing():
    cx, cy, side = face_square(detection())
    assert side == pytest.approx(50 / EYE_MOUTH_SHARE)
    assert cx == pytest.approx(200)
    assert cy - side / 2 + EYE_HEIGHT * side == pytest.approx(100)  # eyes at 0.29 of the side


def test_face_square_is_rotation_aware():
    upright = face_square(detection(eyes_y=150))
    rotated = face_square(detection(eyes_y=150, angle=40))
    assert rotated[2] == pytest.approx(upright[2])
    t = np.radians(40)
    dx, dy = upright[0] - 200, upright[1] - 200
    expected = (200 + np.cos(t) * dx + np.sin(t) * dy, 200 - np.sin(t) * dx + np.cos(t) * dy)
    assert rotated[:2] == pytest.approx(expected, abs=1e-6)


def test_quarter_turns_from_the_landmarks():
    assert [quarter_turns(detection(angle=a)) for a in (0, 30, -40, 80, 180, -170, -90)] == [0, 0, 0, 1, 2, 2, 3]
    assert quarter_turns(Detection(box=(0, 0, 10, 10), landmarks={}, confidence=1.0)) == 0


def test_face_square_without_landmarks_uses_the_box():
    det = Detection(box=(10, 20, 80, 96.5), landmarks={}, confidence=0.9)
    cx, cy, side = face_square(det)
    assert (cx, cy) == (50, 68.25) and side == pytest.approx(100)


def test_derotate_undoes_a_counter_clockwise_rotation():
    rng = np.random.default_rng(0)
    pattern = np.kron(rng.integers(0, 255, (12, 12, 3)), np.ones((16, 16, 1))).astype(np.uint8)  # 192 px
    rotated = np.asarray(Image.fromarray(pattern).rotate(30, resample=Image.Resampling.BILINEAR))
    restored = derotate(rotated, 30.0, 96)
    reference = pattern[48:144, 48:144].astype(float)
    assert np.abs(restored.astype(float) - reference).mean() < 12


def test_crop_resamples_and_pads_outside_the_image():
    image = np.full((50, 50, 3), 200, np.uint8)
    out = crop(image, 0, 0, 40, 20)
    assert out.shape == (20, 20, 3)
    assert (out[:5, :5] == 0).all() and (out[15:, 15:] == 200).all()


def test_crops_sample_as_pillow_does():
    """OpenCV cuts the crops (``warp``); they are Pillow's ``Image.transform`` (bilinear, pixel
    centres at +0.5, black outside the image) within one level: inside, across the image's edges and
    turned."""
    from phototag.chain import rotated
    from phototag.testing.photos import astronaut_face

    pixels = np.asarray(astronaut_face().convert("RGB").resize((301, 257)))
    image = Image.fromarray(pixels)

    def pillow(box_or_data, size, kind):
        return np.asarray(image.transform(size, kind, box_or_data, Image.Resampling.BILINEAR)).astype(int)

    for cx, cy, side, size in ((150.3, 120.8, 97.0, 64), (10.0, 250.0, 180.0, 113), (290.0, 5.5, 61.2, 128)):
        half = side / 2
        expected = pillow((cx - half, cy - half, cx + half, cy + half), (size, size), Image.Transform.EXTENT)
        assert np.abs(crop(pixels, cx, cy, side, size).astype(int) - expected).max() <= 1
    wide = crop(pixels, 150.0, 128.0, 200.0, 150)
    for angle in (17.3, -61.0, 180.0):
        t = np.radians(angle)
        a, b = np.cos(t) * 96 / 80, np.sin(t) * 96 / 80
        data = (a, b, 75 - (a + b) * 40, -b, a, 75 - (a - b) * 40)
        expected = np.asarray(Image.fromarray(wide).transform((80, 80), Image.Transform.AFFINE, data,
                                                               Image.Resampling.BILINEAR)).astype(int)
        assert np.abs(derotate(wide, angle, 96, 80).astype(int) - expected).max() <= 1
    for angle, centre in ((30.0, (100.5, 90.2)), (-75.0, (10.0, 240.0))):
        expected = np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR, center=centre)).astype(int)
        assert np.abs(rotated(pixels, angle, centre).astype(int) - expected).max() <= 1
    assert not crop(pixels, -500.0, 100.0, 50.0, 32).any()  # all outside: black
    strip = np.ascontiguousarray(np.tile(pixels[:40], (1, 120, 1)))  # 36,120 px wide: beyond OpenCV's 32,767
    expected = np.asarray(Image.fromarray(strip).transform((64, 64), Image.Transform.EXTENT,
                                                           (35000.0, 0.0, 35030.0, 30.0), Image.Resampling.BILINEAR))
    assert np.abs(crop(strip, 35015.0, 15.0, 30.0, 64).astype(int) - expected.astype(int)).max() <= 1
    assert not crop(strip, -500.0, 10.0, 50.0, 32).any()


@pytest.fixture(scope="module")
def chain(tiny_model_dir):
    return FaceChain(load_models(tiny_model_dir, engine="keras"), batch_size=4)  # Keras pads the last batch


def test_mirror_averaged_readings_are_antisymmetric(chain):
    crops = np.random.default_rng(1).integers(0, 255, (6, 32, 32, 3)).astype(np.uint8)
    assert np.allclose(chain.rotation(crops[:, :, ::-1]), -chain.rotation(crops), atol=1e-3)
    assert chain.angles(crops).shape == (6,) and (np.abs(chain.angles(crops)) <= 180).all()


FULL_CIRCLE = [0.0, 25.0, -50.0, 58.0, 90.0, -90.0, 125.0, 180.0, -160.0, -120.0]


@needs_shared_data
def test_the_shipped_regressor_reads_angles_over_the_full_circle():
    """Real faces turned to any angle (the regressor was trained within ±90°): every angle within
    10° (on crops the shipped regressor's 95th percentile within ±90° is 4.5°, models/README.md)."""
    chain = FaceChain(load_models(engine="litert"))
    size = chain.models.rotation_input_size
    pad = size // 4
    crops = []
    for path, angle in zip(face_files(), FULL_CIRCLE):
        face = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        wide = np.pad(face, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        turned = Image.fromarray(wide).rotate(angle, resample=Image.Resampling.BILINEAR)
        crops.append(np.asarray(turned)[pad:pad + size, pad:pad + size])
    errors = np.abs((chain.angles(np.stack(crops)) - np.array(FULL_CIRCLE) + 180) % 360 - 180)
    assert errors.max() < 10, errors.round(1)


def test_predict_batches_faces_of_many_photos(chain):
    rng = np.random.default_rng(2)
    photos = [rng.integers(0, 255, (400, 400, 3)).astype(np.uint8) for _ in range(3)]
    items = [(photos[0], [detection(), detection(angle=20)]), (photos[1], []),
             (photos[2], [detection(eyes_y=150)] * 5)]
    results = chain.predict(items)
    assert [len(r) for r in results] == [2, 0, 5]  # 7 faces: more than one batch of 4
    for face in results[0] + results[2]:
        assert -180 <= face.rotation <= 180 and 0 <= face.p_female <= 1 and face.age >= 0
        assert face.gender == ("f" if face.p_female >= 0.5 else "m")
    assert results[0][0].box == detection().box


def test_a_sure_upright_face_skips_the_turned_readings_and_an_upside_down_one_does_not(monkeypatch):
    """The shipped chain on the astronaut's face pasted upright, then the photo upside down: the
    upright face keeps its first reading (no turned readings, the same angle as with them); the
    upside-down one is read at every turn and found near 180°."""
    from phototag.analyzer import FaceAnalyzer
    from phototag.testing.photos import FaceCrop, astronaut_face, paste_face, scene

    analyzer = FaceAnalyzer()
    full = FaceChain(analyzer.chain.models, upright_shortcut=False)
    canvas = scene(480, 480, random.Random(3))
    paste_face(canvas, FaceCrop(astronaut_face(), 30, True, "astronaut"), (240, 240), 220, angle=8)
    read, turned = analyzer.chain.rotation.read, []  # per reading: whether it was a turned one

    def spy(crops, flip_average=None):
        turned.append(flip_average is False)
        return read(crops, flip_average)
    monkeypatch.setattr(analyzer.chain.rotation, "read", spy)
    for turns, expected, shortcut in ((0, 8, True), (2, -172, False)):
        pixels = np.asarray(canvas.rotate(90 * turns, expand=True))
        items = [(pixels, analyzer.detect(pixels)[:1])]
        turned.clear()
        ((face,),), ((reference,),) = analyzer.predict(items), full.predict(items, detect=analyzer.detector.detect)
        assert (not any(turned)) == shortcut
        assert abs((face.rotation - expected + 180) % 360 - 180) < 10, face.rotation
        assert face.rotation == pytest.approx(reference.rotation, abs=0.01)


def test_a_photo_found_turned_is_finished_only_in_its_upright_copy(monkeypatch):
    """The astronaut's photo upside down: the photo is found turned and its face read in the upright
    copy; the face is not also framed again, read for gender and age and embedded in the turned frame."""
    from phototag.analyzer import FaceAnalyzer
    from phototag.testing.photos import FaceCrop, astronaut_face, paste_face, scene

    analyzer = FaceAnalyzer()
    canvas = scene(480, 480, random.Random(3))
    paste_face(canvas, FaceCrop(astronaut_face(), 30, True, "astronaut"), (240, 240), 220, angle=8)
    finish, finished = analyzer.chain.finish, []

    def spy(angles, wide_crops, frame_angles=None):
        finished.append(len(angles))
        return finish(angles, wide_crops, frame_angles)
    monkeypatch.setattr(analyzer.chain, "finish", spy)
    (face,) = analyzer.analyze(np.asarray(canvas.rotate(180)))
    assert finished == [1]  # the upright copy's face only
    assert abs((face.rotation + 172 + 180) % 360 - 180) < 10, face.rotation


def test_faces_framed_again_beside_a_photo_found_turned_are_looked_for_in_their_own_photo(monkeypatch):
    """A batch of a photo found turned (settled in its upright copy) and an upright photo whose face's
    landmarks disagree with its reading: that face is looked for again in its own photo, by its own
    position among all the batch's faces (not its position among the faces left to finish)."""
    from phototag import chain as chain_module
    from phototag.analyzer import FaceAnalyzer
    from phototag.testing.photos import FaceCrop, astronaut_face, paste_face, scene

    analyzer = FaceAnalyzer()
    photos = []
    for seed in (3, 4):
        canvas = scene(480, 480, random.Random(seed))
        paste_face(canvas, FaceCrop(astronaut_face(), 30, True, "astronaut"), (240, 240), 220, angle=8)
        photos.append(canvas)
    turned, upright = np.asarray(photos[0].rotate(180)), np.asarray(photos[1])
    items = [(turned, analyzer.detect(turned)), (upright, analyzer.detect(upright))]
    located, looked_in = chain_module.located_upright, []

    def spy(image, det, quarter, detect):
        looked_in.append(image)
        return located(image, det, quarter, detect)
    monkeypatch.setattr(chain_module, "located_upright", spy)
    monkeypatch.setattr(chain_module, "ASTRAY_LANDMARKS", -1.0)  # every face's landmarks "astray"
    faces = analyzer.predict(items)
    assert [len(f) for f in faces] == [1, 1]
    assert any(image is upright for image in looked_in)
    assert abs(faces[1][0].rotation - 8) < 10, faces[1][0].rotation


def test_a_face_the_detector_is_unsure_of_is_also_looked_at_upside_down(monkeypatch):
    """An upside-down face can read as upright by itself (blurred album scans): where YuNet is unsure
    of a face (under SURE_DETECTION) the photo's decision also weighs it turned upside down; a face
    it is sure of costs nothing more, and an upright face stays upright."""
    from dataclasses import replace

    from phototag import chain as chain_module
    from phototag.analyzer import FaceAnalyzer
    from phototag.testing.photos import face_crops, paste_face, scene

    analyzer = FaceAnalyzer()
    canvas = scene(480, 480, random.Random(3))
    paste_face(canvas, face_crops()[0], (240, 240), 220)
    pixels = np.asarray(canvas)
    (sure,) = analyzer.detect(pixels)
    assert sure.confidence >= chain_module.SURE_DETECTION
    located, quarters = chain_module.located_upright, []

    def spy(image, det, quarter, detect):
        quarters.append(quarter)
        return located(image, det, quarter, detect)
    monkeypatch.setattr(chain_module, "located_upright", spy)
    (face,) = analyzer.predict([(pixels, [sure])])[0]
    assert quarters == []
    (again,) = analyzer.predict([(pixels, [replace(sure, confidence=chain_module.SURE_DETECTION - 0.1)])])[0]
    assert 2 in quarters and abs(again.rotation - face.rotation) < 1 and again.age == face.age


def test_an_unsure_face_read_sideways_is_also_looked_at_the_other_way_round(monkeypatch):
    """Read on its side, a face the detector is unsure of may lie on its other side (a blurred scan
    upside down reads as a face the right way up): its photo's decision weighs its opposite quarter
    too, not the photo upside down, and a sideways face still reads sideways."""
    from dataclasses import replace

    from phototag import chain as chain_module
    from phototag.analyzer import FaceAnalyzer
    from phototag.testing.photos import face_crops, paste_face, scene

    analyzer = FaceAnalyzer()
    canvas = scene(480, 480, random.Random(3))
    paste_face(canvas, face_crops()[0], (240, 240), 220)
    pixels = np.ascontiguousarray(np.rot90(np.asarray(canvas), 1))  # stored turned: the face on its left side
    (found,) = analyzer.detect(pixels)
    located, quarters = chain_module.located_upright, []

    def spy(image, det, quarter, detect):
        quarters.append(quarter)
        return located(image, det, quarter, detect)
    monkeypatch.setattr(chain_module, "located_upright", spy)
    (face,) = analyzer.predict([(pixels, [replace(found, confidence=chain_module.SURE_DETECTION - 0.1)])])[0]
    assert 1 in quarters and 3 in quarters and 2 not in quarters
    assert abs(face.rotation - 90) < 10


def test_a_tilted_face_is_found_again_upright_and_framed_by_those_landmarks(monkeypatch):
    """The astronaut's face pasted tilted by 50°: YuNet's landmarks sit nearer upright than the face;
    turned back by the first reading, its surroundings show it upright and the landmarks found there
    frame it (one small detection); a face tilted by 8° is not framed again."""
    from phototag import chain as chain_module
    from phototag.analyzer import FaceAnalyzer
    from phototag.chain import landmark_angle, located_tilted
    from phototag.testing.photos import FaceCrop, astronaut_face, paste_face, scene

    analyzer = FaceAnalyzer()
    calls = []
    monkeypatch.setattr(chain_module, "located_tilted",
                        lambda *args: calls.append(args[2]) or located_tilted(*args))
    for tilt, framed in ((50.0, True), (8.0, False)):
        canvas = scene(480, 480, random.Random(3))
        paste_face(canvas, FaceCrop(astronaut_face(), 30, True, "astronaut"), (240, 240), 200, angle=tilt)
        pixels = np.asarray(canvas)
        calls.clear()
        (face,) = analyzer.analyze(pixels)
        assert bool(calls) == framed and abs(face.rotation - tilt) < 5, (tilt, face.rotation, calls)
        if framed:
            detection = analyzer.detect(pixels)[0]
            assert abs(landmark_angle(detection) - tilt) > 10  # the landmarks alone: nearer upright
            # (the chain may read it in the photo's upright copy, turned by a quarter: its reading there
            # is in that copy's frame, so the photo's own is used here)
            image, found = located_tilted(pixels, detection, face.rotation, analyzer.detector.detect)
            assert abs(landmark_angle(found)) < 5 and image.shape[1] < 480  # upright, on the surroundings


def test_a_face_found_again_outside_the_image_is_none():
    from phototag.chain import located_tilted, located_upright
    from phototag.detectors import create

    pixels, detect = np.zeros((100, 100, 3), np.uint8), create("yunet").detect
    outside = Detection(box=(150.0, 150.0, 20.0, 20.0), confidence=0.9, landmarks={})
    assert located_tilted(pixels, outside, 30.0, detect) is None
    assert located_upright(pixels, outside, 1, detect) is None


def test_a_face_missed_by_the_second_look_as_it_lies_still_witnesses_its_photo_upright(monkeypatch):
    """The look at a face's surroundings as they lie often misses a tilted face that the photo's own
    detection found: the photo's decision then takes that detection's confidence for upright, so a
    turned look a little surer does not turn an upright photo. A face found only turned
    (``turned_look``) has no such confidence as it lies."""
    from dataclasses import replace

    from phototag import chain as chain_module
    from phototag.analyzer import FaceAnalyzer
    from phototag.testing.photos import FaceCrop, astronaut_face, paste_face, scene

    analyzer = FaceAnalyzer()
    canvas = scene(480, 480, random.Random(3))
    paste_face(canvas, FaceCrop(astronaut_face(), 30, True, "astronaut"), (240, 240), 220, angle=8)
    pixels = np.asarray(canvas)
    (found,) = analyzer.detect(pixels)
    unsure = replace(found, confidence=chain_module.SURE_DETECTION - 0.1)  # also weighed upside down

    def located(image, det, quarter, detect):  # the surroundings as they lie: nothing found
        return None if quarter == 0 else replace(det, confidence=det.confidence + 0.05)
    monkeypatch.setattr(chain_module, "located_upright", located)
    (face,) = analyzer.predict([(pixels, [unsure])])[0]
    assert abs(face.rotation - 8) < 10, face.rotation
    (turned,) = analyzer.predict([(pixels, [replace(unsure, turned_look=True)])])[0]
    assert abs(abs(turned.rotation) - 172) < 10, turned.rotation
