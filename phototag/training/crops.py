"""Training crops made the way the scan makes them: each file decoded as the scan decodes it, faces
found by the scan's detector with its settings, the face nearest the image centre cut with the
chain's own crop (:func:`phototag.chain.face_square`, :func:`phototag.chain.crop`).

The crops of a source folder are written to ``OUT/<source name>/`` in the source's layout under the
same file names, so they are a data set like the source (``phototag train --data OUT/aaf ...``)
with the same train and validation sides (splits go by file name, or by the source's own
``train/``/``val/`` folders): UTKFace names carry the labels (``duplicate_groups.csv`` keeps the
rows of the written files), gender folders keep ``male/``/``female/``, a labelled folder's
``labels.csv`` keeps the rows of the written crops. The test side is never read. A file in which
the detector finds no face gets no crop (the scan would not see that face either); each source's
``CROPS.json`` counts them and lists them. Building is resumable: files already done (listed in
``CROPS.csv``; each crop is written to a temporary name and renamed) are skipped, as long as the
settings are the same.

    python -m phototag.training.crops --data ../shared/data/aaf --data ../shared/data/utkface \\
        --data ../shared/data/celeba_gender --out .cache/crops
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from phototag import chain, detectors
from phototag.images import DEFAULT_DECODE_SIZE, DecodeError, decode

from . import data
from .evaluate import central_face

REPORT = "CROPS.json"
INDEX = "CROPS.csv"
DEFAULT_SIZE = 200  # px: UTKFace's chip size, above every model input size
DEFAULT_QUALITY = 95
OUTSIDE = ("black", "reflect")  # what fills the part of a crop beyond the image


def settings(detector: detectors.Detector, size: int, quality: int, outside: str) -> dict:
    """What makes a crop: the detector and its limits, the decode size, the crop geometry and encoding."""
    return {"detector": detector.name, "min_confidence": detector.min_confidence, "detect_size": detector.detect_size,
            "decode_size": DEFAULT_DECODE_SIZE, "eye_mouth_share": chain.EYE_MOUTH_SHARE,
            "eye_height": chain.EYE_HEIGHT, "box_height_share": chain.BOX_HEIGHT_SHARE, "size": size, "quality": quality,
            "outside": outside}


def face_crop(path: str | Path, detector: detectors.Detector, size: int, outside: str = "black"
              ) -> tuple[np.ndarray, float] | None:
    """The chain's crop (``size`` px) of the face nearest the centre of an image file, and the share
    of the crop that lies beyond the image; None when no face is found. ``outside``: ``black`` (as
    the scan crops) or ``reflect`` (the image mirrored at its edges, for tightly cropped sources
    such as CelebA's, whose black margins no photo has)."""
    with open(path, "rb") as fh:
        pixels, info = decode(fh.read(), DEFAULT_DECODE_SIZE)
    face = central_face(detector.detect(pixels, info.scale), pixels.shape)
    if face is None:
        return None
    cx, cy, side = chain.face_square(face)
    height, width = pixels.shape[:2]
    inside_x = max(0.0, min(cx + side / 2, width) - max(cx - side / 2, 0))
    inside_y = max(0.0, min(cy + side / 2, height) - max(cy - side / 2, 0))
    beyond = max(0.0, 1 - inside_x * inside_y / side**2)
    if outside == "reflect" and beyond > 0:
        pad = int(np.ceil(side))
        pixels = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        cx, cy = cx + pad, cy + pad
    return chain.crop(pixels, cx, cy, side, size), beyond


def _write_image(pixels: np.ndarray, target: Path, quality: int) -> None:
    tmp = target.with_name(f".{target.name}.tmp{target.suffix}")
    Image.fromarray(pixels).save(tmp, quality=quality)
    os.replace(tmp, target)


def _read_index(path: Path) -> dict[str, tuple[bool, float]]:
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {r["file"]: (r["face"] == "1", float(r["outside"] or 0)) for r in csv.DictReader(fh)}


def build(source: str | Path, out: str | Path, seed: int = 1337, val: float = 0.1, test: float = 0.1,
          size: int = DEFAULT_SIZE, quality: int = DEFAULT_QUALITY, detector: detectors.Detector | None = None,
          outside: str = "black", progress=None) -> dict:
    """Write the crops of the train and validation sides of the folder ``source`` to
    ``out/<source name>/``; returns (and writes as ``CROPS.json`` there) the counts and the misses.
    ``CROPS.csv`` there lists every file done (face found or not, share of the crop outside the
    image), which is what a resumed run skips. ``progress(done, total)`` is called every 500 files."""
    source = Path(source)
    if not source.is_dir():
        raise data.DataError(f"{source}: only folders can be cropped")
    detector = detector or detectors.create(detectors.DEFAULT)
    target = Path(out) / source.name
    made_with = settings(detector, size, quality, outside)
    report_file = target / REPORT
    if report_file.exists() and json.loads(report_file.read_text())["settings"] != made_with:
        raise data.DataError(f"{target}: crops made with other settings; build into another folder")
    target.mkdir(parents=True, exist_ok=True)
    report_file.write_text(json.dumps({"source": str(source), "settings": made_with}, indent=2) + "\n")
    train, val_side, _ = data.splits(source, seed, val, test)
    samples = data.Samples.concat([train, val_side])
    done_before = _read_index(target / INDEX)
    unreadable = []
    new_index = not (target / INDEX).exists() or not (target / INDEX).stat().st_size
    with open(target / INDEX, "a", newline="") as fh:
        index = csv.writer(fh)
        if new_index:
            index.writerow(["file", "face", "outside"])
        for done, path in enumerate(samples.paths, start=1):
            relative = Path(path).relative_to(source).as_posix()
            if relative not in done_before:
                try:
                    found = face_crop(path, detector, size, outside)
                except (OSError, DecodeError) as exc:
                    unreadable.append(f"{path} ({exc})")
                    continue
                if found is not None:
                    (target / relative).parent.mkdir(parents=True, exist_ok=True)
                    _write_image(found[0], target / relative, quality)
                index.writerow([relative, int(found is not None), f"{found[1]:.4f}" if found else ""])
                fh.flush()
            if progress and done % 500 == 0:
                progress(done, len(samples))
    if unreadable:
        raise data.DataError(data.problems("unreadable images", unreadable))
    done_now = _read_index(target / INDEX)
    files = [Path(p).relative_to(source).as_posix() for p in samples.paths]
    written = {f for f in files if done_now[f][0]}
    missed = sorted(f for f in files if not done_now[f][0])
    data.copy_label_files(source, target, written)
    by_folder: dict[str, list[int]] = {}
    for f in files:
        by_folder.setdefault(f.split("/")[0] if "/" in f else ".", [0, 0])[f not in written] += 1
    beyond = np.array([done_now[f][1] for f in written])
    report = {"source": str(source), "settings": made_with, "seed": seed, "files": len(files),
              "crops": len(written), "misses": len(missed),
              "by_folder": {k: {"crops": v[0], "misses": v[1]} for k, v in sorted(by_folder.items())},
              "outside_image": {"mean_share": round(float(beyond.mean()), 4) if len(beyond) else None,
                                "crops_over_10_percent": int((beyond > 0.1).sum())},
              "missed": missed}
    report_file.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a source folder (repeatable)")
    parser.add_argument("--out", default=".cache/crops", help="git-ignored output folder (default .cache/crops)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="crop side in pixels")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY, help="JPEG quality")
    parser.add_argument("--seed", type=int, default=1337, help="split seed (as phototag train): the test side is skipped")
    parser.add_argument("--outside", choices=OUTSIDE, default="black",
                        help="fill of a crop beyond the image: black (as the scan) or reflect")
    args = parser.parse_args()
    detector = detectors.create(detectors.DEFAULT)
    for source in args.data:
        name = Path(source).name
        try:
            report = build(source, args.out, args.seed, size=args.size, quality=args.quality, detector=detector,
                           outside=args.outside,
                           progress=lambda done, total: print(f"{name}: {done}/{total}", flush=True))
        except data.DataError as exc:
            raise SystemExit(f"error: {exc}") from None
        folders = ", ".join(f"{k} {v['misses']} of {v['crops'] + v['misses']}" for k, v in report["by_folder"].items())
        print(f"{name}: {report['crops']} crops, {report['misses']} files without a face ({folders})", flush=True)


if __name__ == "__main__":
    main()
