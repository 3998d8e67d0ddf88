"""Shared fixtures: tiny untrained models built by the real recipe code, and the shared data paths."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
UTKFACE = SHARED / "data" / "utkface"
CELEBA = SHARED / "data" / "celeba_gender"
NPZ_WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet.npz"

needs_shared_data = pytest.mark.skipif(not UTKFACE.is_dir(), reason=f"needs labelled faces: UTKFace in {UTKFACE}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A model folder with randomly initialised 32 px rotation and age models, their LiteRT files
    (so that scans run them as the default scan does, in a fraction of Keras' start-up time) and a
    manifest.

    For plumbing tests only: its predictions are meaningless, and it is never shipped.
    """
    from phototag.export import export_models
    from phototag.models import write_manifest
    from phototag.training import backbones, recipe

    out = tmp_path_factory.mktemp("tiny_models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recipe.build_rotation_model(backbones.build("mobilenet_v2", 32)).save(out / "rotation.keras")
        gender = recipe.build_gender_model(backbones.build("mobilenet_v2", 32))
        recipe.build_age_model(gender).save(out / "age.keras")
    write_manifest(out, "tiny-untrained")
    export_models(out)
    return out


@pytest.fixture(scope="session")
def tiny_analyzer(tiny_model_dir):
    """YuNet and the tiny models, built once and handed to the scans of the tests."""
    from phototag.analyzer import FaceAnalyzer

    return FaceAnalyzer(models=tiny_model_dir)
