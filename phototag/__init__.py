"""phototag: find the faces in a photo library and tag each with its rotation, gender and age."""

__version__ = "0.1.0"
