"""Where a photo's XMP sidecar lives.

Two conventions exist: ``photo.jpg.xmp`` (the full file name plus ``.xmp``; digiKam, Immich's first
choice, phototag's default) and ``photo.xmp`` (the extension replaced; Lightroom, darktable's RAW
habit, Immich's second choice). The document itself is an ``xmp.Packet``.
"""

from __future__ import annotations

from pathlib import Path

NAMES = ("photo.jpg.xmp", "photo.xmp")


def sidecar_path(photo: str | Path, name: str = NAMES[0]) -> Path:
    """The sidecar's path for ``photo`` under the naming convention ``name`` (one of ``NAMES``)."""
    photo = Path(photo)
    if name not in NAMES:
        raise ValueError(f"unknown sidecar name {name!r}; use one of {', '.join(NAMES)}")
    return photo.with_name(photo.name + ".xmp") if name == NAMES[0] else photo.with_suffix(".xmp")
