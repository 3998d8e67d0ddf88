"""The identity embedding: dlib's network as shipped, the chain's embeddings, the index's column."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phototag import index
from phototag.analyzer import FaceAnalyzer
from phototag.identity import (CHIP_SIZE, DIMENSIONS, KEY, SAME_PERSON, TEMPLATE, chip_transform, face_chip,
                               from_blob, to_blob)
from phototag.models import load_identity_runner, load_models, model_version, shipped_model_dir, write_manifest
from phototag.records import Detection, Face, PhotoInfo
from phototag.runtime import KerasRunner, LiteRunner
from phototag.testing.photos import face_crops

HOPPER = Path(__file__).parent / "real_files" / "hopper_orientation_2.jpg"  # Grace Hopper, Pillow's test image


def template_landmarks(scale: float = 1.0, angle: float = 0.0, shift=(0.0, 0.0)) -> dict:
    """dlib's chip positions of the five landmarks, scaled, turned (counter-clockwise as displayed) and shifted."""
    t = np.radians(angle)
    out = {}
    for name, (x, y) in TEMPLATE.items():
        u, v = (0.25 + x) / 1.5 * CHIP_SIZE, (0.25 + y) / 1.5 * CHIP_SIZE
        out[name] = (scale * (np.cos(t) * u + np.sin(t) * v) + shift[0],
                     scale * (-np.sin(t) * u + np.cos(t) * v) + shift[1])
    return out


def test_the_chip_transform_is_the_similarity_that_placed_the_landmarks():
    a, b = chip_transform(template_landmarks())
    assert abs(a - 1) < 1e-9 and abs(b) < 1e-9
    a, b = chip_transform(template_landmarks(3.0, 30.0, (40.0, -7.0)))
    assert abs(a - 3.0 * np.exp(-1j * np.radians(30))) < 1e-9 and abs(b - complex(40, -7)) < 1e-9
    assert chip_transform({"left_eye": (1, 2)}) is None  # not five landmarks


def test_a_face_chip_cuts_out_the_aligned_face():
    rng = np.random.default_rng(1)
    pattern = np.kron(rng.integers(0, 255, (15, 15, 3)), np.ones((10, 10, 1))).astype(np.uint8)  # 150 px
    det = Detection(box=(0, 0, 150, 150), landmarks=template_landmarks(), confidence=1.0)
    same = face_chip(Image.fromarray(pattern), det).astype(int) - pattern
    assert np.abs(same).max() <= 1  # the identity, pixel for pixel (but rounding)
    big = Image.fromarray(pattern).resize((600, 600), Image.Resampling.NEAREST)  # reduced by 4 first
    # chip pixel u's centre lies at 4u + 1.5 in the image (pixel centres at integers, as in dlib)
    det = Detection(box=(0, 0, 600, 600), landmarks=template_landmarks(4.0, shift=(1.5, 1.5)), confidence=1.0)
    assert np.abs(face_chip(big, det).astype(int) - pattern).max() <= 1
    no_landmarks = Detection(box=(0, 0, 10, 10), landmarks={}, confidence=1.0)
    assert face_chip(Image.fromarray(pattern), no_landmarks) is None


@pytest.fixture(scope="module")
def shipped_identity():
    return LiteRunner(shipped_model_dir() / "identity.tflite")


def test_the_shipped_file_is_dlibs_network(shipped_identity):
    import dlib

    from phototag.training import dlib_resnet

    faces = np.stack([np.asarray(c.image.resize((CHIP_SIZE, CHIP_SIZE), Image.Resampling.BILINEAR))
                      for c in face_crops()[:3]] + [np.asarray(Image.open(HOPPER).convert("RGB").resize((150, 150)))])
    ours = shipped_identity(faces.astype(np.float32))
    reference = dlib.face_recognition_model_v1(str(dlib_resnet.installed_weights()))
    theirs = np.stack([np.asarray(reference.compute_face_descriptor(f)) for f in faces])
    assert ours.shape == (4, DIMENSIONS)
    # int8 weights: 0.028 on average and 0.034 at most from dlib's own measured on 49 faces (the float16
    # file: 7e-4); the same person's faces lie about 0.45 apart
    assert np.linalg.norm(ours - theirs, axis=1).max() < 0.06
    manifest = json.loads((shipped_model_dir() / "manifest.json").read_text())
    weights = dlib_resnet.installed_weights().read_bytes()
    assert manifest["models"][KEY]["weights_sha256"] == hashlib.sha256(weights).hexdigest()


def test_on_keras_the_network_is_rebuilt_from_dlibs_weights(tmp_path, shipped_identity):
    manifest = json.loads((shipped_model_dir() / "manifest.json").read_text())
    keras_runner = load_identity_runner(shipped_model_dir(), manifest, "keras")
    assert isinstance(keras_runner, KerasRunner)
    faces = np.stack([np.asarray(c.image.resize((CHIP_SIZE, CHIP_SIZE))) for c in face_crops()[:2]]).astype(np.float32)
    assert np.abs(keras_runner(faces) - shipped_identity(faces)).max() < 0.02  # int8 weights: 0.01 measured
    manifest["models"][KEY]["weights_sha256"] = "0" * 64  # another network: the exported file serves
    shutil.copy(shipped_model_dir() / "identity.tflite", tmp_path)
    assert isinstance(load_identity_runner(tmp_path, manifest, "keras"), LiteRunner)


def test_the_identity_model_is_not_part_of_the_model_version(tiny_model_dir, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(tiny_model_dir, folder)
    before = model_version(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"][KEY] = {"file": "identity.tflite", "crop": "upright"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(shipped_model_dir() / "identity.tflite", folder)
    assert model_version(folder) == before
    assert model_version(shipped_model_dir()) == "dlib_resnet-150-33bd7ca239"  # the models, not the identity model
    write_manifest(folder, "tiny-retrained")  # retraining keeps the identity model listed
    assert json.loads((folder / "manifest.json").read_text())["models"][KEY]["file"] == "identity.tflite"
    assert load_models(folder, engine="litert").identity is not None
    assert load_models(tiny_model_dir, engine="litert").identity is None


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer(engine="litert")


def photos() -> dict[str, np.ndarray]:
    from skimage.data import astronaut

    portrait = Image.fromarray(astronaut())
    return {"astronaut": np.asarray(portrait),
            "astronaut turned": np.asarray(portrait.rotate(25, resample=Image.Resampling.BILINEAR, expand=True)),
            "astronaut smaller": np.asarray(portrait.resize((300, 300), Image.Resampling.LANCZOS)),
            "hopper": np.asarray(Image.open(HOPPER).convert("RGB"))}


def test_the_chain_gives_every_face_an_embedding_that_tells_people_apart(analyzer):
    items = {name: (pixels, analyzer.detect(pixels)) for name, pixels in photos().items()}
    faces = analyzer.predict(list(items.values()))  # one batch
    vectors = {}
    for name, found in zip(items, faces):
        assert len(found) == 1, name
        assert found[0].embedding is not None and len(found[0].embedding) == 4 * DIMENSIONS
        vectors[name] = from_blob(found[0].embedding)
    same = [np.linalg.norm(vectors["astronaut"] - vectors[n]) for n in ("astronaut turned", "astronaut smaller")]
    assert max(same) < SAME_PERSON / 2, same  # 0.13 and 0.06 measured
    assert np.linalg.norm(vectors["astronaut"] - vectors["hopper"]) > SAME_PERSON  # 0.9 measured
    alone = analyzer.predict([items["astronaut turned"]])[0][0]  # batch-independent
    assert np.abs(from_blob(alone.embedding) - vectors["astronaut turned"]).max() < 1e-4


def test_models_without_an_identity_model_give_no_embedding(tiny_analyzer):
    pixels = photos()["astronaut"]
    (face,) = tiny_analyzer.analyze(pixels)
    assert face.embedding is None


def test_a_face_keeps_its_embedding_out_of_its_dict_unless_asked():
    vector = np.linspace(-0.3, 0.3, DIMENSIONS, dtype=np.float32)
    face = Face(box=(1, 2, 3, 4), landmarks={}, confidence=0.9, embedding=to_blob(vector))
    assert "embedding" not in face.to_dict() and "embedding" not in repr(face)
    assert face.to_dict(embedding=True)["embedding"] == pytest.approx(vector.tolist())
    assert pickle.loads(pickle.dumps(face)) == face
    assert "embedding" not in Face(box=(1, 2, 3, 4), landmarks={}, confidence=0.9).to_dict(embedding=True)


def test_the_index_stores_embeddings_as_float32_blobs(tmp_path):
    db = index.open_index(tmp_path / "index.db")
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    vector = np.random.default_rng(0).normal(0, 0.1, DIMENSIONS).astype(np.float32)
    faces = [Face(box=(1, 2, 3, 4), landmarks={"nose": (2, 3)}, confidence=0.9, embedding=to_blob(vector)),
             Face(box=(5, 6, 7, 8), landmarks={}, confidence=0.8)]  # a model set without an identity model
    index.record_photo(db, photo, os.stat(photo), "0" * 64, PhotoInfo(10, 10, 10, 10), faces, "v1")
    rows = index.faces_of(db, index.get_photo(db, photo)["id"])
    assert np.array_equal(np.frombuffer(rows[0]["embedding"], "<f4"), vector) and rows[1]["embedding"] is None
    column = db.execute("select typeof(embedding), length(embedding) from faces where face_index = 0").fetchone()
    assert column == ("blob", 512)
    _, again, _ = index.scanned_photo(db, photo)  # faces read back (tags rewritten from the index) keep it
    assert again[0].embedding == to_blob(vector) and again[1].embedding is None


def test_an_older_index_gets_the_embedding_column(tmp_path):
    path = tmp_path / "old.db"
    db = index.open_index(path)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    index.record_photo(db, photo, os.stat(photo), "0" * 64, PhotoInfo(10, 10, 10, 10),
                       [Face(box=(1, 2, 3, 4), landmarks={}, confidence=0.9)], "v1")
    db.close()
    raw = sqlite3.connect(path)
    raw.execute("drop index faces_ungrouped")  # as an index from before the column (and the people)
    raw.execute("alter table faces drop column embedding")
    raw.commit()
    raw.close()
    db = index.open_index(path)
    assert "embedding" in db["faces"].columns_dict
    assert index.faces_of(db, index.get_photo(db, photo)["id"])[0]["embedding"] is None
