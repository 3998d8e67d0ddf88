"""The optional parts of phototag and the extras that install them.

``pip install phototag`` installs what the default scan uses (LiteRT, OpenCV's YuNet, the image
libraries). TensorFlow and Keras come with the extras that need them; a feature whose extra is
missing raises :class:`MissingExtra`, which names the ``pip install`` to run (the CLI prints it in
one line, exit code 2). Packages are looked up without being imported.
"""

from __future__ import annotations

from importlib.util import find_spec

MODULES = {  # extra -> the modules it provides that phototag imports
    "train": ("tensorflow", "keras", "scipy"),  # training, `phototag eval`, `phototag export`
    "gpu": ("tensorflow", "keras"),  # the Keras/TensorFlow engine (CUDA on Linux)
    "mtcnn": ("mtcnn", "tensorflow"),  # the MTCNN detector
    "ray": ("ray",),  # `phototag scan --ray` (phototag/ray_scan.py)
}


class MissingExtra(ImportError):
    """A feature needs packages of an extra that is not installed."""

    def __init__(self, feature: str, extra: str, missing: list[str]):
        super().__init__(f"{feature} needs {', '.join(missing)}: pip install \"phototag[{extra}]\"")


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed."""
    return [name for name in MODULES[extra] if find_spec(name) is None]


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` naming ``feature`` unless every module of ``extra`` is installed."""
    if absent := missing(extra):
        raise MissingExtra(feature, extra, absent)
