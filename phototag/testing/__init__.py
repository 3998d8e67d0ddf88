"""Generators and harnesses shared by the tests and the benchmarks (not used by phototag itself).

``photos``: synthetic photos from real face crops pasted into generated scenes; ``formats``: HEIC,
DNG and RAW-style files and decompression bombs; ``hostile``: files that are awkward to write into
(issue 16); ``fault_harness``: kill -9 experiments on scans.
They need nothing beyond phototag's own dependencies to import; the astronaut's face of
``photos.face_crops`` needs scikit-image (the ``test`` extra) when it is first made.
"""
