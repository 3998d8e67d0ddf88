"""The light install: the default scan (LiteRT + YuNet) runs without TensorFlow and Keras, and each
command that needs an extra names the ``pip install`` to run when it is missing.

Each check runs in a new Python process in which TensorFlow, Keras, SciPy and MTCNN cannot be
imported (``sys.modules[name] = None``), as after ``pip install phototag``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from photos import face_crops, jpeg_bytes, paste_face, scene

WITHOUT_EXTRAS = """
import sys
for name in ("tensorflow", "keras", "scipy", "mtcnn"):
    sys.modules[name] = None  # not installed: importing it raises ImportError
from phototag.cli import main
try:
    main()
finally:
    print("imported:", sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "scipy",
                                                                          "mtcnn") and sys.modules[m]),
          file=sys.stderr)
"""


def run_without_extras(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import random

    root = tmp_path_factory.mktemp("photos")
    canvas = scene(640, 480, random.Random(2))
    paste_face(canvas, face_crops()[0], (320, 240), 220)
    (root / "one.jpg").write_bytes(jpeg_bytes(canvas))
    return root


def test_the_default_scan_needs_neither_tensorflow_nor_keras(photos, tmp_path):
    done = run_without_extras("scan", str(photos), "--db", str(tmp_path / "index.db"), "--no-exif", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["detector"], summary["engine"], summary["device"]) == ("yunet", "litert", "CPU")
    assert summary["scanned"] == 1 and summary["faces"] == 1
    assert done.stderr.splitlines()[-1] == "imported: []"


TRAIN = 'needs tensorflow, keras, scipy: pip install "phototag[train]"'


@pytest.mark.parametrize("args, message", [
    (["train", "age", "--data", "."], f"error: training and evaluation {TRAIN}"),
    (["eval", "--data", "."], f"error: training and evaluation {TRAIN}"),
    (["export", "."], f"error: phototag export {TRAIN}"),
    (["scan", "--detector", "mtcnn"], 'error: the MTCNN detector needs mtcnn, tensorflow: pip install "phototag[mtcnn]"'),
    (["scan", "--engine", "keras"], 'error: the Keras engine needs tensorflow, keras: pip install "phototag[gpu]"'),
])
def test_a_command_without_its_extra_says_what_to_install(args, message, photos, tmp_path):
    if args[0] == "scan":
        args = [*args, str(photos), "--db", str(tmp_path / "index.db"), "--no-exif"]
    done = run_without_extras(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [message, "imported: []"]
