"""LiteRT speed of the age model on the dlib_resnet backbone against the same model on MobileNetV2.

Builds the recipe's gender → age model (distribution head, as shipped) on ``dlib_resnet`` at 150 px
and on ``mobilenet_v2`` at 128 px (the previous release's backbone), with untrained heads and
random MobileNetV2 weights (neither changes the speed), exports each with
:func:`phototag.export.export_model` as ``phototag train`` does, and times them with the scan's
LiteRT runner on the same real faces, batch 32, median of the repeats.

    python benchmarks/bench_dlib_resnet.py [--batch 32] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UTKFACE = ROOT.parent / "shared" / "data" / "utkface" / "crop_part1"


def ms_per_face(path: Path, faces: np.ndarray, repeats: int) -> float:
    from phototag.runtime import LiteRunner

    runner = LiteRunner(path)
    batch = np.stack([np.asarray(Image.fromarray(f).resize((runner.input_size,) * 2, Image.Resampling.BILINEAR))
                      for f in faces]).astype(np.float32)
    runner(batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(batch)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / len(faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import warnings

    import keras

    from phototag.export import export_model
    from phototag.training import backbones, recipe

    def counts(model) -> str:
        inner = next(layer for layer in model.layers if isinstance(layer, keras.Model))
        return f"backbone {inner.count_params():,} / model {model.count_params():,} parameters"

    faces = np.stack([np.asarray(Image.open(f).convert("RGB"))
                      for f in sorted(UTKFACE.glob("*.jpg"))[::97][:args.batch]])
    rows = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mobilenet_v2's random initialisation
        for name, size in (("dlib_resnet", 150), ("mobilenet_v2", 128)):
            model = recipe.build_age_model(recipe.build_gender_model(backbones.build(name, size)), head="distribution")
            path = export_model(model, Path(tmp) / f"{name}.tflite")
            rows.append((f"{name}@{size} age", counts(model), ms_per_face(path, faces, args.repeats)))
    print(f"LiteRT, batch {args.batch}, {os.cpu_count()} CPU threads, median of {args.repeats}")
    for name, params, ms in rows:
        print(f"{name:36s} {ms:6.2f} ms/face  {params}")

if __name__ == "__main__":
    main()
