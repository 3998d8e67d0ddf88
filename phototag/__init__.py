"""phototag: find the faces in a photo library and tag each with its rotation, gender and age."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``phototag.FaceAnalyzer`` without importing the pipeline (or TensorFlow) with the package."""
    if name == "FaceAnalyzer":
        from .analyzer import FaceAnalyzer

        return FaceAnalyzer
    raise AttributeError(f"module 'phototag' has no attribute {name!r}")
