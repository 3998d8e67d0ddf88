"""The light install: the default scan (LiteRT + YuNet) runs without TensorFlow and Keras, and each
command that needs an extra names the ``pip install`` to run when it is missing.

Each check runs the CLI in a new Python process in which TensorFlow, Keras, SciPy and MTCNN cannot
be imported (``sys.modules[name] = None``), as after ``pip install phototag``: any import of them on
the way fails the command.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from phototag.testing.photos import face_crops, jpeg_bytes, paste_face, scene

WITHOUT_EXTRAS = """
import sys
for name in ("tensorflow", "keras", "scipy", "mtcnn"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
from phototag.cli import main
main()
"""


def run_without_extras(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    canvas = scene(640, 480, random.Random(2))
    paste_face(canvas, face_crops()[0], (320, 240), 220)
    (root / "one.jpg").write_bytes(jpeg_bytes(canvas))
    return root


def test_the_default_scan_and_the_queries_need_neither_tensorflow_nor_keras(library, tmp_path):
    db = ["--db", str(tmp_path / "index.db")]
    done = run_without_extras("scan", str(library), *db, "--no-exif", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["detector"], summary["engine"], summary["device"]) == ("yunet", "litert", "CPU")
    assert summary["scanned"] == 1 and summary["faces"] == 1
    found = run_without_extras("query", "--format", "paths", *db)
    assert found.stdout == f"{library / 'one.jpg'}\n"
    for done in (found, run_without_extras("stats", *db), run_without_extras("clean", "--dry-run", str(library))):
        assert done.returncode == 0, done.stderr


TRAIN = 'needs tensorflow, keras, scipy: pip install "phototag[train]"'


@pytest.mark.parametrize("args, message", [
    (["train", "age", "--data", "."], f"error: training and evaluation {TRAIN}"),
    (["eval", "--data", "."], f"error: training and evaluation {TRAIN}"),
    (["export", "."], f"error: phototag export {TRAIN}"),
    (["scan", "--detector", "mtcnn"], 'error: the MTCNN detector needs mtcnn, tensorflow: pip install "phototag[mtcnn]"'),
    (["scan", "--engine", "keras"], 'error: the Keras engine needs tensorflow, keras: pip install "phototag[gpu]"'),
], ids=["train", "eval", "export", "mtcnn", "keras"])
def test_a_command_without_its_extra_says_what_to_install(args, message, library, tmp_path):
    if args[0] == "scan":
        args = [*args, str(library), "--db", str(tmp_path / "index.db"), "--no-exif"]
    done = run_without_extras(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [message]


def test_without_the_gpu_extra_auto_runs_litert_on_a_machine_with_a_gpu(monkeypatch, tmp_path):
    from phototag import runtime
    from phototag.models import load_models

    (tmp_path / "version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n")
    monkeypatch.setattr(runtime, "NVIDIA_DRIVER", tmp_path / "version")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # not installed
    assert runtime.tensorflow_gpus() == []
    models = load_models(engine="auto")
    assert (models.engine, models.device) == ("litert", "CPU")
